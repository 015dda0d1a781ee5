"""Every error broadcaster raises on purpose.

::

    BroadcasterError
    ├── InputError                  bad input from a user; message names what and where
    │   ├── FileRejected            a recipient file that cannot be read at all (nothing stored)
    │   └── TemplateError           a template that cannot be parsed
    ├── NotFound                    no such broadcast, message or sender code
    ├── InvalidTransition           a state change the state machine forbids (HTTP 409)
    ├── Conflict                    taken by someone else: a sender code another workspace owns (409)
    ├── ImportAbandoned             a stalled import's staged rows were swept: import it again
    └── GatewayError                a provider call failed
        ├── RetryableGatewayError   429, 5xx, timeouts, resets: try again (``retry_after_s``)
        ├── PermanentGatewayError   400/401/403 and refusals: never retried
        └── OutcomeUnknown          the request may have reached the gateway: look it up first
"""

from __future__ import annotations


class BroadcasterError(Exception):
    """Base of every error raised on purpose."""


class InputError(BroadcasterError):
    """Bad input from a user."""


class FileRejected(InputError):
    """A recipient file that cannot be read at all; nothing of it is stored."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path, self.reason, self.line = path, reason, line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class TemplateError(InputError):
    """A message template that cannot be parsed."""


class StackUnavailable(BroadcasterError):
    """What a command needs running is not: no Redis (broker) to reach, or no worker taking work."""


class NotFound(BroadcasterError):
    """No such broadcast, message or sender code."""


class InvalidTransition(BroadcasterError):
    """A state change the transition table forbids, or that lost a compare-and-set race."""

    def __init__(self, entity: str, current: str, action: str) -> None:
        self.entity, self.current, self.action = entity, current, action
        super().__init__(f"cannot {action} {entity}: it is {current}")


class Conflict(BroadcasterError):
    """The thing asked for belongs to someone else (a sender code another workspace owns)."""


class ImportAbandoned(BroadcasterError):
    """A staged import was swept as abandoned while it still ran; nothing of it was kept."""


class GatewayError(BroadcasterError):
    """A provider call failed."""


class RetryableGatewayError(GatewayError):
    """Worth another try: 429, 5xx, timeouts and connection errors."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        self.reason, self.retry_after_s = reason, retry_after_s
        super().__init__(reason)


class PermanentGatewayError(GatewayError):
    """Never retried: authentication failures and refusals (400/401/403)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.reason, self.status = reason, status
        super().__init__(reason)


class OutcomeUnknown(RetryableGatewayError):
    """The request may have reached the gateway; ask it before any resend."""
