"""The admin task API with the real stack: tasks called by name from a bare Celery client, answers
read from the Redis result backend, and the example script run as a user runs it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa

from broadcaster.services.broadcasts import get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import broadcasts

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "admin_script.py"
CODE = "55501"


def admin() -> ModuleType:
    """The example script as a module: its ``connect`` and ``call`` are what a user's script uses."""
    spec = importlib.util.spec_from_file_location("admin_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_recipients(path: Path, n: int) -> Path:
    with path.open("w") as f:
        f.write("msisdn,name\n")
        for i in range(n):
            f.write(f"+5255{30_000_000 + i},Client {i}\n")
    return path


def test_admin_script_creates_polls_suspends_resumes_and_stops(make_stack, tmp_path):
    # Given the stack, a sender code slow enough that the broadcast is still running, and a file
    stack = make_stack()
    add_code(stack.engine, stack.settings, CODE, "short", mps=20)
    path = write_recipients(tmp_path / "march.csv", 400)
    # When the example script runs against the stack's Redis
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(path),
            "--from",
            CODE,
            "--text",
            "Hi {name}",
            "--name",
            "march",
            "--pause-s",
            "0.5",
            "--redis-url",
            stack.dev.redis_url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert out.returncode == 0, (out.stdout, out.stderr)
    steps = [json.loads(line) for line in out.stdout.splitlines()]
    # Then every step answered, in order, with the worker's result
    assert [s["step"] for s in steps] == [
        "create_broadcast_from_file",
        "get_broadcast",
        "suspend_broadcast",
        "get_broadcast",
        "resume_broadcast",
        "stop_broadcast",
        "get_broadcast",
    ]
    created = steps[0]["answer"]
    bid = created["id"]
    assert (created["status"], created["expectedMessages"], created["name"]) == (
        "SCHEDULED",
        400,
        "march",
    )
    assert steps[1]["answer"]["status"] == "RUNNING"
    assert steps[2]["answer"] == "SUSPENDED" and steps[3]["answer"]["status"] == "SUSPENDED"
    assert steps[4]["answer"] == "RUNNING"
    assert steps[5]["answer"]["status"] == "STOPPED"
    final = steps[6]["answer"]
    assert final["id"] == bid and final["status"] == "STOPPED"
    # … and the database agrees: every message counted once, the unsent ones CANCELLED
    stack.wait(
        lambda: "DEQUEUED" not in get_broadcast(stack.engine, bid).counts,
        30,
        "in-flight settled",
    )
    view = get_broadcast(stack.engine, bid)
    assert view.status == "STOPPED"
    assert sum(view.counts.values()) == 400
    assert view.counts.get("CANCELLED", 0) > 0


def test_create_from_json_get_and_refusals(make_stack, tmp_path):
    stack = make_stack()
    add_code(stack.engine, stack.settings, CODE, "short", mps=50)
    mod = admin()
    app = mod.connect(stack.dev.redis_url)
    # A seed-004 payload: Messangi date format, a zone, recipients with positional params
    payload = {
        "from": CODE,
        "text": "Hola {0}, saldo {1}",
        "name": "json batch",
        "startDate": "01-12-2030 09:30",
        "timezone": "America/Mexico_City",
        "type": "SMS",
        "to": [
            {"to": "+525540000001", "params": ["Ana", "10.50"]},
            {"to": "+525540000002", "params": ["Luis", "3"]},
            {"to": "12", "params": ["Bad", "0"]},
        ],
    }
    view = mod.call(app, "create_broadcast_from_json", payload)
    assert (view["status"], view["expectedMessages"], view["invalidRows"]) == ("SCHEDULED", 2, 1)
    assert view["startDate"] == "2030-12-01T09:30:00-06:00" and view["name"] == "json batch"
    got = mod.call(app, "get_broadcast", view["id"])
    assert got["id"] == view["id"] and got["counts"] == {"QUEUE": 2}
    # Refusals come back as exceptions whose message names what is wrong
    with pytest.raises(Exception, match="no such file"):
        mod.call(app, "create_broadcast_from_file", str(tmp_path / "missing.csv"), CODE, "Hi")
    with pytest.raises(Exception, match="CODE_NOT_ALLOWED"):
        mod.call(
            app,
            "create_broadcast_from_file",
            str(write_recipients(tmp_path / "a.csv", 2)),
            "999",
            "Hi",
        )
    with pytest.raises(Exception, match="unknown field 'txet'"):
        mod.call(
            app, "create_broadcast_from_json", {"from": CODE, "txet": "Hi", "to": ["+525540000003"]}
        )
    with pytest.raises(Exception, match="does not exist"):
        mod.call(app, "get_broadcast", 999_999)
    with pytest.raises(Exception, match="cannot resume"):
        mod.call(app, "resume_broadcast", view["id"])
    with stack.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one() == 1


def test_a_create_delivered_twice_makes_one_broadcast(make_stack, tmp_path):
    # Given the same create sent twice under one task id (a redelivery, or a script's retry
    # with its own idempotency key)
    stack = make_stack()
    add_code(stack.engine, stack.settings, CODE, "short", mps=50)
    mod = admin()
    app = mod.connect(stack.dev.redis_url)
    path = write_recipients(tmp_path / "list.csv", 10)
    key = str(uuid.uuid4())
    answers = []
    for _ in range(2):
        result = app.send_task(
            "workers.tasks.create_broadcast_from_file",
            args=[str(path), CODE, "Hi {name}"],
            queue="ingest",
            task_id=key,
            ignore_result=False,
        )
        answers.append(result.get(timeout=60))
        result.forget()  # so the second .get() waits for the second run, not the first answer
    # Then the task ran twice, both answers name one broadcast, and only one exists
    stack.wait(
        lambda: stack.logs("worker-control").count(f"[{key}] succeeded") == 2, 10, "two runs logged"
    )
    assert answers[0]["id"] == answers[1]["id"]
    with stack.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(broadcasts)).scalar_one() == 1
