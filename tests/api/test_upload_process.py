"""Hostile uploads against a real ``broadcaster api`` process: it answers, and it stays up.

A workbook that made python-calamine abort used to take the whole API process with it; a body
declaring 10 GB was read until the file cap before the 413; a killed upload left its copy of the
numbers in /tmp. Each test here runs the API as its own process and checks, afterwards, that the
same process still serves and that nothing of the refused upload was stored.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import openpyxl
import pytest
from sqlalchemy import text

from broadcaster.api.uploads import UploadSpace
from broadcaster.config import Settings
from broadcaster.services.apikeys import create_key
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade
from tests.support import hostile_files
from tests.support.services import free_port

MAX_FILE_BYTES = 1024 * 1024
#: The multipart cap: the file cap plus 16 form fields of 64 KiB (ApiLimits.multipart_max_bytes).
MAX_BODY_BYTES = MAX_FILE_BYTES + 16 * 64 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
START_TIMEOUT_S = 30.0


@dataclass
class ApiProcess:
    """One ``broadcaster api`` process on a fresh SQLite database, with a key of "acme"."""

    tmp: Path
    database_url: str
    key: str
    upload_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "BROADCASTER_DATABASE_URL": self.database_url,
            "BROADCASTER_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
            "BROADCASTER_API_UPLOAD_DIR": str(self.upload_dir),
        }
        env.pop("BROADCASTER_REDIS_URL", None)
        log = (self.tmp / "api.log").open("ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "broadcaster"), "api", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the API did not start: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def log(self) -> str:
        return (self.tmp / "api.log").read_text(errors="replace")[-3000:]

    def stored(self) -> tuple[int, int]:
        """(broadcasts, messages) in the database."""
        with engine_for(self.database_url).connect() as conn:
            b = conn.execute(text("SELECT count(*) FROM broadcasts")).scalar_one()
            m = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        return b, m

    def uploads_on_disk(self) -> list[Path]:
        return [p for p in self.upload_dir.rglob("*") if p.is_file() and p.name != ".lock"]


@pytest.fixture
def api_process(tmp_path: Path) -> Iterator[ApiProcess]:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    engine = engine_for(url)
    settings = Settings(database_url=url, redis_url=None, default_region=None)
    key = create_key(engine, "acme").key
    add_code(engine, settings, "55501", "short", workspace="acme")
    api = ApiProcess(tmp_path, url, key, tmp_path / "uploads")
    api.start()
    yield api
    api.stop()


def _form(data: bytes, filename: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("from", "55501")
    form.add_field("text", "Hi")
    form.add_field("startDate", "2031-01-02T08:00")
    form.add_field("file", data, filename=filename, content_type=XLSX)
    return form


def _good_workbook() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.append(["phone", "name"])
    wb.active.append(["+525500000001", "Ana"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def _upload(api: ApiProcess, data: bytes, filename: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            f"{api.url}/v1/broadcasts",
            data=_form(data, filename),
            headers={"Authorization": f"Bearer {api.key}"},
        )
        return resp.status, await resp.json(content_type=None)


async def _assert_serving(api: ApiProcess) -> None:
    assert api.proc is not None and api.proc.poll() is None, api.log()
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"{api.url}/healthz")
        assert resp.status == 200


HOSTILE_WORKBOOKS = {
    "single_quoted.xlsx": (hostile_files.single_quoted_bomb, "cells, over 20,000,000"),
    "odd_part.xlsx": (
        lambda: hostile_files._odd_part_name(hostile_files._sparse_bomb_sheet()),
        "cells, over 20,000,000",
    ),
    "prefixed.xlsx": (hostile_files._prefixed_bomb, "cells, over 20,000,000"),
    "entities.xlsx": (hostile_files._entity_bomb_sheet, "document type declaration"),
}


async def test_a_crashing_workbook_is_a_422_and_the_server_keeps_serving(
    api_process: ApiProcess,
) -> None:
    # Given the 1.6 KB workbook of issue 11 (and its cousins)
    assert len(hostile_files.single_quoted_bomb()) < 1700
    for filename, (build, reason) in HOSTILE_WORKBOOKS.items():
        # When it is uploaded, Then the answer is a 422 naming the file and the reason
        status, body = await _upload(api_process, build(), filename)
        assert status == 422, (filename, body, api_process.log())
        assert body["detail"].startswith(f"{filename}: ") and reason in body["detail"], body
        # And the same process still serves, with nothing stored and no copy left on disk
        await _assert_serving(api_process)
        assert api_process.stored() == (0, 0)
        assert api_process.uploads_on_disk() == []
    # And a normal upload right after is created in full
    status, body = await _upload(api_process, _good_workbook(), "good.xlsx")
    assert status == 201, body
    assert api_process.stored() == (1, 1)


def _raw_request(api: ApiProcess, headers: str, body: bytes, wait_s: float) -> bytes:
    """Send the head and the first body bytes only, and read what comes back within wait_s."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=wait_s) as sock:
        sock.sendall(headers.encode() + body)
        answer = b""
        deadline = time.monotonic() + wait_s
        while b"\r\n\r\n" not in answer or b"}" not in answer.split(b"\r\n\r\n", 1)[1]:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def _head(api: ApiProcess, length: int, boundary: str = "b0undary") -> str:
    return (
        "POST /v1/broadcasts HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{api.port}\r\n"
        f"Authorization: Bearer {api.key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )


def _file_part_head(boundary: str = "b0undary") -> bytes:
    return (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="numbers.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nphone\r\n"
    ).encode()


async def test_a_body_declared_over_the_limit_is_refused_from_its_header(
    api_process: ApiProcess,
) -> None:
    # Given a client that declares 10 GB and sends a few bytes of them
    started = time.monotonic()
    answer = _raw_request(api_process, _head(api_process, 10 * 1000**3), _file_part_head(), 10.0)
    # Then the 413 comes at once, naming the limit, and nothing was written
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    detail = json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]
    assert "10,000,000,000 bytes" in detail and f"{MAX_BODY_BYTES:,}" in detail, detail
    assert time.monotonic() - started < 5.0
    assert api_process.uploads_on_disk() == []
    await _assert_serving(api_process)
    assert api_process.stored() == (0, 0)


async def test_a_killed_upload_leaves_nothing_once_the_api_restarts(
    api_process: ApiProcess,
) -> None:
    # Given an upload under way (the head and 300 KB of a 900 KB file part)
    numbers = b"".join(b"+5255%08d\r\n" % i for i in range(60_000))[: 300 * 1024]
    with socket.create_connection(("127.0.0.1", api_process.port), timeout=10) as sock:
        sock.sendall(_head(api_process, 900 * 1024).encode() + _file_part_head() + numbers)
        deadline = time.monotonic() + 10
        while not any(p.stat().st_size for p in api_process.uploads_on_disk()):
            assert time.monotonic() < deadline, "the upload never reached the upload dir"
            time.sleep(0.05)
        # Then its copy is in the private upload dir, nowhere public
        assert stat.S_IMODE(api_process.upload_dir.stat().st_mode) == 0o700
        (copy,) = api_process.uploads_on_disk()
        assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
        # When the API process is killed mid-upload
        api_process.stop(signal.SIGKILL)
    assert copy.exists()  # a killed process cannot clean up after itself...
    # ...so the next one does, as it starts
    api_process.start()
    await _assert_serving(api_process)
    assert api_process.uploads_on_disk() == []
    assert not copy.exists()
    status, body = await _upload(api_process, _good_workbook(), "good.xlsx")
    assert status == 201, body


def test_the_upload_root_is_made_private_and_a_symlink_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    root.mkdir(mode=0o755)
    space = UploadSpace(root)
    try:
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert stat.S_IMODE(space.new_dir().stat().st_mode) == 0o700
    finally:
        space.close()
    link = tmp_path / "link"
    link.symlink_to(root)
    with pytest.raises(RuntimeError, match="not a directory of this user"):
        UploadSpace(link)


def test_a_live_process_dir_is_kept_and_a_dead_one_removed(tmp_path: Path) -> None:
    live = UploadSpace(tmp_path)
    dead = tmp_path / "api-999999-x"
    dead.mkdir()
    (dead / ".lock").touch()  # nobody holds it: its owner is gone
    (dead / "numbers.csv").write_text("+525500000001\n")
    try:
        other = UploadSpace(tmp_path)
        assert other.removed == ["api-999999-x"] and live.dir.exists()
        other.close()
    finally:
        live.close()
