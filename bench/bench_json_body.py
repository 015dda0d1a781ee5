"""Peak RSS of a ``broadcaster api`` process while it takes one big JSON body, by body shape.

    python bench/bench_json_body.py               # every shape, 16 MB bodies
    python bench/bench_json_body.py --mb 8 --shape lists

Each shape runs in a fresh API process on a fresh SQLite database; printed per shape: the body's
size, the answer's status, and the process's peak RSS (VmHWM) before the request and after it.
Shapes: tiny containers and numbers (attacks: many Python objects per byte of JSON), and the
legitimate bulk bodies (a list of phone strings, a list of recipient objects with parameters).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MB = 1024 * 1024


def _fill(item: bytes, size: int, head: bytes, tail: bytes) -> bytes:
    n = max(1, (size - len(head) - len(tail)) // (len(item) + 1))
    return head + b",".join([item] * n) + tail


def _shapes(size: int) -> dict[str, Callable[[], bytes]]:
    head = b'{"from":"55501","text":"Hi {0}","recipients":['
    tail = b"]}"

    def phones() -> bytes:
        n = (size - len(head)) // 16
        return head + b",".join(b'"+52550%07d"' % (i % 10_000_000) for i in range(n)) + tail

    def objects() -> bytes:
        item = b'{"to":"+525500000001","params":["Ana","10.65"]}'
        return _fill(item, size, head, tail)

    return {
        "lists": lambda: _fill(b"[]", size, head, tail),
        "objects_empty": lambda: _fill(b"{}", size, head, tail),
        "nested": lambda: _fill(b'{"":[]}', size, head, tail),
        "decimals": lambda: _fill(b"1.5", size, head, tail),
        "short_strings": lambda: _fill(b'"ab"', size, head, tail),
        "many_keys": lambda: (
            b'{"from":"55501","text":"x","k":{'
            + b",".join(b'"k%07d":0' % i for i in range(size // 12))
            + b"}}"
        ),
        "legit_phones": phones,
        "legit_objects": objects,
    }


def _hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(shape: str, body: bytes) -> tuple[int, int, int, str]:
    from broadcaster.config import Settings
    from broadcaster.services.apikeys import create_key
    from broadcaster.services.codes import add_code
    from broadcaster.store.db import engine_for, upgrade

    tmp = Path(tempfile.mkdtemp(prefix="bc-bench-json-"))
    url = f"sqlite:///{tmp / 'b.db'}"
    upgrade(url)
    engine = engine_for(url)
    key = create_key(engine, "acme").key
    add_code(engine, Settings(database_url=url), "55501", "short", workspace="acme")
    port = _free_port()
    env = {**os.environ, "BROADCASTER_DATABASE_URL": url, "BROADCASTER_API_RATE_PER_S": "1000"}
    env.pop("BROADCASTER_REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(base + "/healthz", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        before = _hwm(proc.pid)
        resp = requests.post(
            base + "/v1/broadcasts",
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=600,
        )
        after = _hwm(proc.pid)
        detail = "" if resp.ok else str(resp.json().get("detail", ""))[:90]
        return resp.status_code, before, after, detail
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=15.9)
    parser.add_argument("--shape", action="append")
    args = parser.parse_args()
    shapes = _shapes(int(args.mb * MB))
    print(f"load average: {os.getloadavg()}", flush=True)
    for name in args.shape or list(shapes):
        body = shapes[name]()
        status, before, after, detail = run(name, body)
        print(
            json.dumps(
                {
                    "shape": name,
                    "body_mb": round(len(body) / MB, 1),
                    "status": status,
                    "peak_rss_before_mb": round(before / MB),
                    "peak_rss_after_mb": round(after / MB),
                    "detail": detail,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
