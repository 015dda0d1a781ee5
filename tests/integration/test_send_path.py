"""The send path end to end: real Celery workers, real Redis, the simulator on loopback."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.models import messages, receipts
from tests.support.recipients import write_recipients

pytestmark = pytest.mark.slow


def test_ten_thousand_recipients_exactly_once(make_stack, tmp_path):
    # Given a running stack and a 10,000-row file with placeholders, positional and named; the
    # lease outlasts the test's patience, so a result the workers lost cannot be hidden by the
    # poller's recovery (it would settle it correctly, but only after the lease)
    stack = make_stack(send_workers=2, env={"BROADCASTER_LEASE_S": "600"})
    rows = write_recipients(tmp_path / "list.csv", 10_000)
    add_code(stack.engine, stack.settings, "55501", "short", mps=5000)
    req = NewBroadcast(sender="55501", text="Hola {name}, tu saldo es <1> MXN", name="10k")
    # When the broadcast is created and the scheduler picks it up
    view = create_from_file(stack.engine, stack.settings, tmp_path / "list.csv", req)
    assert view.expected_messages == 10_000
    stack.wait(lambda: get_broadcast(stack.engine, view.id).status == "COMPLETED", 240, "COMPLETED")
    stack.wait(
        lambda: stack.sim("/_sim/stats")["receipts_sent"] >= 10_000, 120, "all receipts sent"
    )
    stack.wait(lambda: _receipts(stack) >= 10_000, 60, "receipts stored")
    # Then every externalId reached the gateway exactly once …
    stats = stack.sim("/_sim/stats")
    assert stats["accepted_total"] == 10_000
    assert stats["duplicates"] == []
    # … every text was rendered from its own row …
    with stack.engine.connect() as conn:
        stored = conn.execute(
            sa.select(messages.c.recipient, messages.c.text, messages.c.status)
        ).all()
    assert len(stored) == 10_000
    for recipient, text, _ in stored:
        name, balance = rows[recipient]
        assert text == f"Hola {name}, tu saldo es {balance} MXN"
    # … and the numbers add up with every message in a final receipt state.
    final = get_broadcast(stack.engine, view.id)
    counts = final.counts
    assert sum(counts.values()) == final.expected_messages == 10_000
    assert set(counts) <= {"DELIVRD", "UNDELIV"}
    assert final.sent_messages == 10_000
    assert final.delivered_messages == counts.get("DELIVRD", 0)
    # … and the workers' and API's metrics say the same (multi-process Prometheus files)
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(stack.dev.workdir / "metrics"))
    labels = {"code": "55501", "provider": "simulator", "workspace": "default"}
    assert registry.get_sample_value("broadcaster_messages_sent_total", labels) == 10_000
    assert registry.get_sample_value(
        "broadcaster_receipts_total", {"status": "DELIVRD", **labels}
    ) == counts.get("DELIVRD", 0)
    assert (
        registry.get_sample_value(
            "broadcaster_send_latency_seconds_count", {"provider": "simulator"}
        )
        == 10_000
    )


def _receipts(stack) -> int:
    with stack.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(receipts).where(receipts.c.applied)
        ).scalar_one()


class _Receiver:
    """A client's callback endpoint on loopback, recording what it was told."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.seen: list[tuple[dict, dict]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                import json

                outer.seen.append((dict(self.headers), {"raw": body, **json.loads(body)}))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_client_callbacks_get_every_status_change_signed(make_stack, tmp_path):
    from broadcaster.services.client_callbacks import verify

    receiver = _Receiver()
    stack = make_stack(
        env={"BROADCASTER_CALLBACK_ALLOW_PRIVATE": "true", "BROADCASTER_CALLBACK_SECRET": "s3"}
    )
    write_recipients(tmp_path / "list.csv", 20)
    add_code(stack.engine, stack.settings, "55501", "short", mps=500)
    view = create_from_file(
        stack.engine,
        stack.settings,
        tmp_path / "list.csv",
        NewBroadcast(sender="55501", text="Hola {name}", callbacks=(receiver.url,)),
    )
    stack.wait(lambda: len(receiver.seen) >= 40, 60, "SENT and a final status per message")
    time.sleep(1.5)  # not hiding a race: lets a wrongly repeated callback show up before we count
    by_message: dict[str, list[str]] = {}
    for headers, body in receiver.seen:
        assert verify(
            "s3",
            headers["X-Broadcaster-Timestamp"],
            body["raw"],
            headers["X-Broadcaster-Signature"],
        )
        by_message.setdefault(body["id"], []).append(body["status"])
    assert len(by_message) == 20
    for statuses in by_message.values():
        # SENT and one final receipt; a receipt may beat the send response, so order is free
        assert "SENT" in statuses
        assert len(set(statuses) & {"DELIVRD", "UNDELIV"}) == 1
        assert len(statuses) == len(set(statuses))  # each change told once
    assert get_broadcast(stack.engine, view.id).status == "COMPLETED"


def test_real_workers_on_each_database(make_stack, database_url, tmp_path):
    """The same path on SQLite and PostgreSQL: claims, batched results and receipts per backend."""
    stack = make_stack(database_url=database_url, env={"BROADCASTER_LEASE_S": "600"})
    write_recipients(tmp_path / "list.csv", 2_000, seed=5)
    add_code(stack.engine, stack.settings, "55501", "short", mps=5000)
    view = create_from_file(
        stack.engine,
        stack.settings,
        tmp_path / "list.csv",
        NewBroadcast(sender="55501", text="Hola {name}"),
    )

    def settled() -> bool:
        got = get_broadcast(stack.engine, view.id)
        return got.status == "COMPLETED" and set(got.counts) <= {"DELIVRD", "UNDELIV"}

    stack.wait(settled, 120, "COMPLETED with every receipt applied")
    stats = stack.sim("/_sim/stats")
    assert stats["accepted_total"] == 2_000 and stats["duplicates"] == []
    assert sum(get_broadcast(stack.engine, view.id).counts.values()) == 2_000
