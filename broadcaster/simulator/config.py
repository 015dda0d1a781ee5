"""The carrier simulator's knobs, and the dice that turn fault shares into faults.

Every knob can be set at startup (``--share-429 0.05``, ``--config-json '{...}'``) and changed
while running (``POST /_sim/config`` with a JSON object of the fields to change).
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: Faults a ``POST /messages`` can meet. 429/500/drop_before do not store the message;
#: slow and drop_after do (the client just never hears so, in time or at all).
SEND_FAULTS = ("429", "500", "drop_before", "drop_after", "slow")
#: Faults a look-up can meet.
LOOKUP_FAULTS = ("500", "drop")
#: A script entry meaning "no fault this time".
NO_FAULT = "ok"
#: Final receipt statuses the mix may name.
FINAL_RECEIPTS = frozenset(
    {"DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "DELETED", "UNKNOWN"}
)
#: Knobs read only when the app starts.
STARTUP_ONLY = frozenset({"callback_workers"})


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated gateway behaves. Shares are probabilities per request (0..1)."""

    #: The Bearer token clients must send; anything else is 401.
    api_key: str = "simulator-key"
    #: Added to every public API request.
    latency_ms: float = 0.0
    #: Answer 429 with ``Retry-After: retry_after_s`` (not stored).
    share_429: float = 0.0
    retry_after_s: float = 1.0
    #: Answer 500 (not stored).
    share_500: float = 0.0
    #: Store, then answer only after ``slow_s`` (meant to exceed the client's timeout).
    share_slow: float = 0.0
    slow_s: float = 15.0
    #: Close the connection without storing or answering.
    share_drop_before: float = 0.0
    #: Store, then close the connection without answering.
    share_drop_after: float = 0.0
    #: Answer look-ups (``GET /messages?externalId=``) with 500.
    share_lookup_500: float = 0.0
    #: Faults for the next sends, in order, before the shares apply (``"ok"`` = none).
    fault_script: tuple[str, ...] = ()
    #: The same for look-ups: ``"500"``, ``"drop"`` or ``"ok"``.
    lookup_script: tuple[str, ...] = ()
    #: Seed of the dice; None draws a random one.
    seed: int | None = None
    #: Seconds from acceptance to the final receipt (ENROUTE, if on, comes at half of it).
    dlr_delay_s: float = 1.0
    #: Final receipt statuses and their weights.
    dlr_mix: Mapping[str, float] = field(default_factory=lambda: {"DELIVRD": 0.95, "UNDELIV": 0.05})
    #: Send an ENROUTE receipt before the final one.
    dlr_enroute: bool = False
    #: Where receipts go for ``requestDR: true`` messages that name no ``callbacks``.
    default_callback_url: str | None = None
    #: Receipt senders working at once (startup only).
    callback_workers: int = 16
    #: Tries per receipt before it counts as failed, the first retry after ``callback_retry_s``
    #: (doubling each time), each POST bounded by ``callback_timeout_s``.
    callback_max_attempts: int = 5
    callback_retry_s: float = 0.5
    callback_timeout_s: float = 5.0
    #: Texts longer than this are answered with status ERROR (the gateway's segment limit).
    max_text_chars: int = 1600

    def __post_init__(self) -> None:
        shares = [
            self.share_429,
            self.share_500,
            self.share_slow,
            self.share_drop_before,
            self.share_drop_after,
            self.share_lookup_500,
        ]
        if any(not 0.0 <= s <= 1.0 for s in shares):
            raise ValueError("every share_* must be within 0..1")
        send_total = sum(shares[:5])
        if send_total > 1.0 + 1e-9:
            raise ValueError(f"send fault shares add up to {send_total} > 1")
        bad = [f for f in self.fault_script if f not in (*SEND_FAULTS, NO_FAULT)]
        bad += [f for f in self.lookup_script if f not in (*LOOKUP_FAULTS, NO_FAULT)]
        if bad:
            raise ValueError(f"unknown scripted faults: {bad}")
        if not self.dlr_mix or any(
            k not in FINAL_RECEIPTS or w < 0 for k, w in self.dlr_mix.items()
        ):
            raise ValueError(
                f"dlr_mix needs final statuses {sorted(FINAL_RECEIPTS)} with weights ≥ 0"
            )
        if sum(self.dlr_mix.values()) <= 0:
            raise ValueError("dlr_mix weights add up to 0")
        if self.callback_workers < 1 or self.callback_max_attempts < 1:
            raise ValueError("callback_workers and callback_max_attempts must be at least 1")

    def updated(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """A copy with ``changes`` applied; unknown fields and bad values raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown simulator settings: {unknown}")
        clean = dict(changes)
        for name in ("fault_script", "lookup_script"):
            if name in clean:
                clean[name] = tuple(clean[name])
        if "dlr_mix" in clean:
            clean["dlr_mix"] = {str(k): float(v) for k, v in dict(clean["dlr_mix"]).items()}
        return replace(self, **clean)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dlr_mix"] = dict(self.dlr_mix)
        out["fault_script"], out["lookup_script"] = (
            list(self.fault_script),
            list(self.lookup_script),
        )
        return out


class Dice:
    """Draws faults and receipt statuses; one random number per request, so a seed replays."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.reset(config)

    def reset(self, config: SimulatorConfig) -> None:
        self.config = config
        seed = config.seed if config.seed is not None else random.randrange(2**32)
        self._faults = random.Random(seed)
        self._receipts = random.Random(seed + 1)
        self._ids = random.Random(seed + 2)
        self._send_script = deque(config.fault_script)
        self._lookup_script = deque(config.lookup_script)
        self._set_mix(config)

    def apply(self, config: SimulatorConfig, changed: set[str]) -> None:
        """Take a runtime config change: scripts and seed restart only if they were given."""
        if "seed" in changed:
            self.reset(config)
            return
        self.config = config
        self._set_mix(config)
        if "fault_script" in changed:
            self._send_script = deque(config.fault_script)
        if "lookup_script" in changed:
            self._lookup_script = deque(config.lookup_script)

    def send_fault(self) -> str | None:
        """The fault this send meets, or None."""
        c = self.config
        roll = self._faults.random()
        if self._send_script:
            fault = self._send_script.popleft()
            return None if fault == NO_FAULT else fault
        for name, share in (
            ("429", c.share_429),
            ("500", c.share_500),
            ("drop_before", c.share_drop_before),
            ("drop_after", c.share_drop_after),
            ("slow", c.share_slow),
        ):
            if roll < share:
                return name
            roll -= share
        return None

    def lookup_fault(self) -> str | None:
        roll = self._faults.random()
        if self._lookup_script:
            fault = self._lookup_script.popleft()
            return None if fault == NO_FAULT else fault
        return "500" if roll < self.config.share_lookup_500 else None

    def _set_mix(self, config: SimulatorConfig) -> None:
        # Cumulative weights once per config, not per message: same draws as ``weights=``.
        self._statuses = list(config.dlr_mix)
        self._cum_weights = list(itertools.accumulate(config.dlr_mix.values()))

    def transaction_bits(self) -> int:
        """128 random bits for a transactionId (``uuid4`` reads the OS entropy pool per call)."""
        return self._ids.getrandbits(128)

    def final_status(self) -> str:
        return self._receipts.choices(self._statuses, cum_weights=self._cum_weights)[0]
