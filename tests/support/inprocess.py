"""Stand-ins for the in-process send context: the task queue, closing its providers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ListQueue:
    """The TaskQueue of the tests: remembers the chunks it was given."""

    chunks: list[tuple[int, list[int], float]] = field(default_factory=list)

    def send_chunk(self, broadcast_id: int, ids: list[int], countdown_s: float = 0.0) -> None:
        self.chunks.append((broadcast_id, list(ids), countdown_s))
