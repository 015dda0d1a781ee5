"""What the carrier simulator remembers: accepted messages, kept column-wise, and its counters.

A million accepted messages must fit in well under 300 MB, so a message is not an object: it
is one slot in a few typed arrays (number as an integer, sender as an index, status as a byte,
time in milliseconds) plus its externalId string, which the look-up index shares. The gateway
id is computed from the slot, never stored. Measured: about 200 bytes a message (each sender's
list of acceptance times adds 8).
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

#: Status words a stored message can hold; the byte in the status column is the index.
STATUSES = (
    "QUEUE",
    "ENROUTE",
    "ACCEPTD",
    "DELIVRD",
    "UNDELIV",
    "EXPIRED",
    "REJECTD",
    "DELETED",
    "UNKNOWN",
    "ERROR",
)
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}


def iso_ms(epoch_ms: int) -> str:
    """``2021-08-17T04:25:38.117Z``, the gateway's date format."""
    seconds, ms = divmod(epoch_ms, 1000)
    return f"{_iso_second(seconds)}.{ms:03d}Z"


@lru_cache(maxsize=256)
def _iso_second(epoch_s: int) -> str:
    """Formatting a datetime per answer was a sixth of the simulator's own CPU per request."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class MessageStore:
    """Accepted messages by slot; look-up by externalId; per-sender counts and times."""

    def __init__(self) -> None:
        self.generation = 0
        self.clear()

    def clear(self) -> None:
        """Forget everything. Ids of a new generation never repeat an old one's."""
        self.generation += 1
        self._ext: list[str] = []
        self._to = array("Q")
        self._sender = array("I")
        self._status = bytearray()
        self._date_ms = array("Q")
        #: externalId -> first slot; ``_more`` holds the slots of repeats (the duplicates).
        self._first: dict[str, int] = {}
        self._more: dict[str, list[int]] = {}
        self._senders: list[str] = []
        self._sender_slot: dict[str, int] = {}
        #: per sender slot: epoch second -> accepted count
        self._per_second: list[Counter[int]] = []
        #: per sender slot: every acceptance's time, epoch ms, in order (8 bytes a message): a
        #: rate measured at the gateway to ±2 % needs more than whole seconds
        self._accepted_ms: list[array[int]] = []

    def __len__(self) -> int:
        return len(self._status)

    def add(self, external_id: str, sender: str, to_digits: int, now_ms: int) -> int:
        """Store one accepted message; returns its slot."""
        slot = len(self._status)
        s = self._sender_slot.get(sender)
        if s is None:
            s = self._sender_slot[sender] = len(self._senders)
            self._senders.append(sender)
            self._per_second.append(Counter())
            self._accepted_ms.append(array("Q"))
        self._ext.append(external_id)
        self._to.append(to_digits)
        self._sender.append(s)
        self._status.append(0)
        self._date_ms.append(now_ms)
        self._per_second[s][now_ms // 1000] += 1
        self._accepted_ms[s].append(now_ms)
        if external_id:
            if external_id in self._first:
                self._more.setdefault(external_id, []).append(slot)
            else:
                self._first[external_id] = slot
        return slot

    # -- ids and rows ----------------------------------------------------------------------------

    def gateway_id(self, slot: int) -> str:
        """24 hex digits, like the real gateway's ids: generation, then slot."""
        return f"{self.generation:08x}{slot:016x}"

    def slot_of(self, gateway_id: str) -> int | None:
        try:
            generation, slot = int(gateway_id[:8], 16), int(gateway_id[8:], 16)
        except ValueError:
            return None
        if len(gateway_id) != 24 or generation != self.generation or slot >= len(self):
            return None
        return slot

    def find(self, external_id: str) -> list[int]:
        """Slots holding ``external_id``, oldest first."""
        first = self._first.get(external_id)
        if first is None:
            return []
        return [first, *self._more.get(external_id, ())]

    def row(self, slot: int) -> dict[str, Any]:
        """One message as the public API shows it."""
        return {
            "id": self.gateway_id(slot),
            "externalId": self._ext[slot] or None,
            "status": STATUSES[self._status[slot]],
            "from": self._senders[self._sender[slot]],
            "to": f"+{self._to[slot]}",
            "date": iso_ms(self._date_ms[slot]),
        }

    def set_status(self, slot: int, status: str, now_ms: int) -> None:
        self._status[slot] = STATUS_CODE[status]
        self._date_ms[slot] = now_ms

    def last_slots(self, limit: int) -> range:
        return range(max(len(self) - limit, 0), len(self))

    # -- stats -----------------------------------------------------------------------------------

    def count(self, external_id: str) -> int:
        """How many times ``external_id`` was accepted."""
        return len(self.find(external_id))

    def duplicates(self) -> list[str]:
        """externalIds accepted more than once."""
        return sorted(self._more)

    def accepted_by_sender(self) -> dict[str, int]:
        return {name: sum(self._per_second[i].values()) for i, name in enumerate(self._senders)}

    def rate(self, sender: str) -> list[list[int]]:
        """``[[epoch_second, accepted], …]`` for one sender, oldest first; [] if never seen."""
        s = self._sender_slot.get(sender)
        if s is None:
            return []
        return [[sec, n] for sec, n in sorted(self._per_second[s].items())]

    def accepted_times(self, sender: str) -> list[int]:
        """Every acceptance of one sender, epoch ms, oldest first; [] if never seen."""
        s = self._sender_slot.get(sender)
        return [] if s is None else self._accepted_ms[s].tolist()


@dataclass
class Counters:
    """Request and receipt counters behind ``GET /_sim/stats``."""

    posts_total: int = 0
    lookups_total: int = 0
    by_status_code: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    receipts_sent: int = 0
    receipts_failed: int = 0
