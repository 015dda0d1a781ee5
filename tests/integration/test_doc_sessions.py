"""The shell sessions of docs/seed-api.md and docs/contacts.md, run as written (only the API's
address is the test stack's) against the real stack on a fresh database, with their answers
checked: what the docs promise a user who copies them (issues 14 and 15)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _block(doc: str, heading: str) -> str:
    """The first ```sh block after ``heading`` in ``doc``."""
    text = (DOCS / doc).read_text()
    after = text[text.index(heading) :]
    found = re.search(r"```sh\n(.*?)```", after, re.S)
    assert found, f"no sh block after {heading!r} in {doc}"
    return found.group(1)


def _run(stack: Any, script: str, tmp_path: Path, api_line: str) -> str:
    if shutil.which("curl") is None or shutil.which("sha256sum") is None:
        pytest.skip("curl and sha256sum are needed to run the docs' sessions")
    assert script.count(api_line) == 1, f"the session sets {api_line!r} once"
    base = f"http://127.0.0.1:{stack.dev.api_port}"
    script = script.replace(api_line, api_line.split("=")[0] + "=" + base)
    env = stack.dev.env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_the_seed_api_curl_session_runs_as_written(make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack()
    out = _run(
        stack, _block("seed-api.md", "### A curl session"), tmp_path, "BASE=http://127.0.0.1:8080"
    )
    answers = re.findall(r"<input>(\w+)</input><status>(\w+)</status>", out)
    assert answers == [
        ("getShortcodes", "OK"),
        ("sendSMS", "OK"),
        ("createBroadcastFromJson", "OK"),
        ("getBroadcast", "OK"),
        ("suspendBroadcast", "OK"),
        ("getBroadcast", "OK"),
        ("resumeBroadcast", "OK"),
        ("stopBroadcast", "OK"),
        ("getBroadcast", "OK"),
        ("resumeBroadcast", "ERROR"),
        ("deleteBroadcast", "OK"),
        ("getBroadcast", "ERROR"),
        ("getBroadcast", "ERROR"),
    ], out
    assert "<sc>55501</sc>" in out
    assert re.findall(r"<status>(\d)</status>", out) == ["0", "3", "4"]
    assert "</response> 409" in out and "does not exist</description></response> 404" in out
    assert "</response> 401" in out


def test_the_contacts_session_runs_as_written(make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack()
    out = _run(stack, _block("contacts.md", "## A session"), tmp_path, "API=http://127.0.0.1:8080")
    assert "line 4: MOBILE: '12' is not a valid mobile number" in out
    assert '"created": 0, "updated": 2, "invalidRows": 1, "members": 2' in out  # the body import
    assert '"contactID": 1' in out
    # contact/get of an unknown number, then sendSingle
    assert re.search(r"^400$", out, re.M) and re.search(r"^204$", out, re.M), out
    # the list broadcast went to both members once; the erased one's number is masked after
    statuses = stack.statuses(1)
    assert sorted(statuses) == ["+48505606708", "~" + min(_ids(stack, 1))]
    single = stack.statuses(2)
    assert list(single.values()) != [] and all(r.startswith("~") for r in single)


def _ids(stack: Any, broadcast_id: int) -> list[str]:
    import sqlalchemy as sa

    from broadcaster.store.models import messages

    with stack.engine.connect() as conn:
        rows = conn.execute(sa.select(messages.c.id).where(messages.c.broadcast_id == broadcast_id))
        return sorted(str(r[0]) for r in rows)
