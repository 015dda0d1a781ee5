"""The HTTP API's limits and knobs, in one typed object passed to ``create_app``.

Defaults suit one API process on a small machine. Each field is also an ``api_<name>`` field
of :class:`~broadcaster.config.Settings` with the same default, so a deployment sets it as
``BROADCASTER_API_<NAME>`` (e.g. ``BROADCASTER_API_RATE_PER_S``); ``ApiLimits.from_settings``
reads them all (tests/api/test_settings_limits.py keeps the two lists and defaults equal).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from broadcaster.config import Settings

MIB = 1024 * 1024
#: Text parts a multipart body may carry on top of its file (form fields, boundaries, headers),
#: counted in ``form_field_max_bytes``: the body cap is the file cap plus this many fields.
MULTIPART_FIELD_ALLOWANCE = 16


@dataclass(frozen=True, slots=True)
class ApiLimits:
    #: Largest JSON request body, bytes (bigger recipient lists: upload a file).
    json_max_bytes: int = 16 * MIB
    #: Request bodies of 1 MiB or more one API process holds at once (the others wait
    #: ``big_body_wait_s``, then 503), and how many of them one workspace may hold (one more:
    #: 429). 16 MiB bodies, parsed within ``json_max_memory_bytes`` each: ~0.5 GB at most.
    big_bodies: int = 4
    big_bodies_per_workspace: int = 2
    big_body_wait_s: float = 10.0
    #: Most memory the parsed values of one JSON body of 1 MiB or more may take, bytes (each
    #: value's size as Python holds it, counted while it is parsed: a 16 MB body of tiny items
    #: such as ``[]`` would make ~400 MB of objects). A body of 16 MB of phone numbers takes
    #: ~75 MB; one of recipient objects with parameters ~10 times its size.
    json_max_memory_bytes: int = 96 * MIB
    #: Largest uploaded recipient file, bytes (0: the settings' ``max_file_bytes``).
    upload_max_bytes: int = 0
    #: Largest text field of a multipart upload, bytes.
    form_field_max_bytes: int = 64 * 1024
    #: Where uploaded files are kept while they are read: a private (0700) directory of this
    #: user, created if missing; "" = ``broadcaster-uploads-<uid>`` in the system temp dir. What a
    #: killed API process left there is removed when the next one starts.
    upload_dir: str = ""
    #: Most recipients in one ``POST /v1/messages/batch``.
    batch_max_recipients: int = 10_000
    #: Most bytes (UTF-8) of rendered message text one batch send may store (10,000 messages of
    #: one segment are ~1.6 MB; 10,000 of ten segments ~15 MB).
    batch_max_text_bytes: int = 16 * MIB
    #: Requests per second each API key may make on average (token bucket refill rate).
    rate_per_s: float = 50.0
    #: Requests a key may make in a burst (token bucket size).
    rate_burst: int = 100
    #: All keys of one workspace together may make this many times a key's rate and burst, so
    #: a tenant does not get more of the API by making more keys.
    workspace_rate_factor: float = 4.0
    #: Live (unrevoked) keys a workspace may make through ``POST /v1/apikeys``; an operator's
    #: ``broadcaster apikey create`` is not counted against it.
    keys_per_workspace: int = 20
    #: A signed request's X-Timestamp may be this far from the server's clock, seconds.
    signature_window_s: int = 300
    #: Default and largest page size of list endpoints.
    page_default: int = 50
    page_max: int = 1_000
    #: Keys of this workspace may read ``GET /metrics`` (it spans every workspace).
    metrics_workspace: str = "ops"
    #: Threads for database calls (handlers never block the event loop on SQL).
    db_threads: int = 8
    #: Threads that make report pieces; reports take turns on them piece by piece, and a client
    #: that does not read holds none.
    report_threads: int = 2
    #: Reports one workspace may stream at once (per API process); one more is a 429.
    report_per_workspace: int = 2
    #: A report download whose client reads nothing for this long is dropped, seconds.
    report_write_timeout_s: float = 30.0

    @property
    def workspace_rate_per_s(self) -> float:
        return self.rate_per_s * self.workspace_rate_factor

    @property
    def workspace_rate_burst(self) -> int:
        return max(1, round(self.rate_burst * self.workspace_rate_factor))

    @property
    def multipart_max_bytes(self) -> int:
        """Largest multipart body: the file plus its form fields (a bigger Content-Length: 413)."""
        return self.upload_max_bytes + self.form_field_max_bytes * MULTIPART_FIELD_ALLOWANCE

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ApiLimits:
        values = {
            f.name: getattr(settings, f"api_{f.name}")
            for f in fields(cls)
            if hasattr(settings, f"api_{f.name}")
        }
        limits = cls(**{**values, **overrides})
        if not limits.upload_max_bytes:
            limits = replace(limits, upload_max_bytes=settings.max_file_bytes)
        return limits
