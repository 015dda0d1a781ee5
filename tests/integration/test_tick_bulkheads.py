"""Each step of the beat tick is a bulkhead: a step that fails for one broadcast is logged with
its traceback and counted, and the tick goes on with the others (real database, both backends).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from broadcaster import metrics
from broadcaster.config import Settings
from broadcaster.providers.registry import build_named_provider
from broadcaster.services import poller
from broadcaster.services.broadcasts import NewBroadcast, create_from_file, get_broadcast
from broadcaster.services.codes import add_code
from broadcaster.store.db import engine_for, upgrade, utcnow
from tests.support.recipients import write_recipients


@dataclass
class BrokenForOne:
    """A task queue that fails (as Redis would mid-restart) for one broadcast's chunks only."""

    broken: int
    chunks: list[int] = field(default_factory=list)

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        if broadcast_id == self.broken:
            raise ConnectionError(f"queue refused broadcast {broadcast_id}")
        self.chunks.append(broadcast_id)


def _failures(step: str) -> float:
    return metrics.TICK_FAILURES.labels(step)._value.get()


def test_one_failing_start_does_not_stop_the_others(database_url, tmp_path, caplog):
    upgrade(database_url)
    engine = engine_for(database_url)
    settings = Settings(database_url=database_url)
    add_code(engine, settings, "55508", "short", mps=100)
    write_recipients(tmp_path / "list.csv", 5, seed=14)
    soon = (utcnow() + timedelta(seconds=30)).isoformat(timespec="seconds")
    ids = [
        create_from_file(
            engine,
            settings,
            tmp_path / "list.csv",
            NewBroadcast(sender="55508", text="Hi", name=f"b{i}", at=soon),
        ).id
        for i in range(3)
    ]
    queue = BrokenForOne(broken=ids[0])
    before = _failures("start")

    # When the tick finds all three due and the first one's fan-out fails...
    with caplog.at_level(logging.ERROR, logger="broadcaster.services.poller"):
        report = asyncio.run(
            poller.tick(
                engine,
                settings,
                queue,
                lambda name: build_named_provider(settings, name),
                now=utcnow() + timedelta(seconds=60),
            )
        )

    # ...the other two still start and are fanned out, and the failure is logged and counted.
    assert report.started[-2:] == ids[1:] and set(queue.chunks) == set(ids[1:]), report
    assert f"start:{ids[0]}" in report.failed_steps
    assert _failures("start") == before + 1
    logged = [r for r in caplog.records if f"start:{ids[0]}" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # with its traceback
    for bid in ids[1:]:
        assert get_broadcast(engine, bid).status == "RUNNING"
