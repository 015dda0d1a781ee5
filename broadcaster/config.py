"""Typed settings: the only module that reads the environment.

Everything else receives a ``Settings`` object, so tests can build one per case instead of
patching ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from broadcaster.constants import MAX_MPS, MIN_MPS
from broadcaster.domain.retry import RETRY_BASE_S, RETRY_CAP_S, RETRY_WINDOW_S

#: A rate in messages (segments) per second: a rate far below MIN_MPS makes waits that overflow
#: dates and timers (``1e-300`` made every re-dispatch raise OverflowError).
Rate = Annotated[float, Field(ge=MIN_MPS, le=MAX_MPS)]
#: A count or size that must be at least 1.
Positive = Annotated[int, Field(gt=0)]
MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of broadcaster, read from ``BROADCASTER_*`` variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="BROADCASTER_", env_file=".env", extra="ignore")

    #: SQLAlchemy URL; SQLite runs in WAL mode. PostgreSQL: ``postgresql+psycopg://…``.
    database_url: str = "sqlite:///broadcaster.db"
    #: Redis for Celery and the token buckets. Unset: ``broadcaster dev`` starts a private one.
    redis_url: str | None = None
    #: ISO 3166 region used to read national numbers (``MX``, ``GB``…); none by default.
    default_region: str | None = None

    #: Which gateway sends: the built-in carrier simulator or a Messangi-compatible API.
    provider: Literal["simulator", "messangi", "kannel", "vonage", "opentext"] = "simulator"
    #: Gateway accounts as one JSON object, name -> fields (docs/gateways.md). Sender codes name
    #: an account with ``--account``; secrets in it are never logged.
    accounts: str | None = None
    messangi_base_url: str = "http://127.0.0.1:8025/v1"
    messangi_api_key: str = "simulator-key"
    #: Where gateways post delivery receipts (our HTTP API's base URL).
    public_url: str = "http://127.0.0.1:8080"
    #: Shared secret carried in the receipt callback URL so strangers cannot post receipts.
    dlr_secret: str = "change-me"

    #: Messages per chunk task. DESIGN.md suggests 100–500; 1,000 measured ~6 % more messages/s
    #: and ~6 % less CPU per message (half the chunk boundaries, where a chunk's sends drain to
    #: none in flight, and half the per-chunk reads and dispatch writes).
    chunk_size: int = 1000
    #: Chunk tasks in flight per broadcast; finished chunks refill it, the poller tops it up.
    dispatch_window: int = 4
    #: A QUEUE message carried by a chunk this long ago without a claim: its task was lost.
    redispatch_after_s: float = 60.0
    #: Consecutive gateway failures on one broadcast before it is suspended automatically.
    auto_suspend_failures: int = 100
    #: A message sent this long ago with no final receipt becomes EXPIRED.
    validity_s: float = 48 * 3600.0
    #: Seconds between beat ticks (scheduler and status poller).
    tick_s: float = 2.0
    #: Account-wide ceilings, messages (segments) per second: {"account-name": 50}.
    account_mps: dict[str, Rate] = {}
    #: Free send slots a chunk waits for before its next claim (small: a few slow answers
    #: must not stall a chunk)...
    send_group_size: int = 10
    #: ...and the most one claim takes when more slots are free: at full speed claims and token
    #: takes then come once per ~50 messages, not once per 10 (a third of a worker's CPU).
    send_claim_max: int = 50
    #: Concurrent gateway requests inside one chunk task.
    send_concurrency: int = 100
    #: A claimed message's lease; must exceed the worst-case send time (timeouts × retries).
    lease_s: float = 120.0
    #: Per-request gateway timeout.
    gateway_timeout_s: float = 10.0
    #: Attempts per message for retryable gateway errors before ERROR.
    gateway_max_attempts: int = 5
    #: A message still refused by a passing fault (429, 5xx, timeout, reset) after those attempts
    #: goes back to the queue and is sent again for this long after its first such failure
    #: (never longer than ``validity_s``); only then, or on a permanent refusal, is it ERROR.
    retry_window_s: float = RETRY_WINDOW_S
    #: Its first wait in the queue, doubling (with jitter) up to ``retry_cap_s``.
    retry_base_s: float = RETRY_BASE_S
    retry_cap_s: float = RETRY_CAP_S
    #: A chunk that would wait longer than this for tokens hands its remainder back to the queue.
    throttle_max_wait_s: float = 2.0
    #: Default messages (segments) per second by sender-code kind.
    long_code_mps: Rate = 1.0
    short_code_mps: Rate = 30.0
    alphanumeric_mps: Rate = 10.0

    #: HTTP API limits, ``BROADCASTER_API_<NAME>`` (each is documented on ``ApiLimits`` in
    #: broadcaster/api/limits.py, which reads every ``api_<name>`` field here).
    #: Request bodies of 1 MiB or more held at once per API process, per workspace, and how long
    #: one waits for a slot before a 503 (broadcaster/api/body_gate.py).
    api_big_bodies: Positive = 4
    api_big_bodies_per_workspace: Positive = 2
    api_big_body_wait_s: float = Field(default=10.0, gt=0)
    #: Largest JSON request body, bytes.
    api_json_max_bytes: Positive = 16 * MIB
    #: Most memory the parsed values of one big JSON body may take, bytes.
    api_json_max_memory_bytes: Positive = 96 * MIB
    #: Largest uploaded recipient file, bytes (0: ``max_file_bytes``).
    api_upload_max_bytes: int = Field(default=0, ge=0)
    #: Largest text field of a multipart upload, bytes.
    api_form_field_max_bytes: Positive = 64 * 1024
    #: Most recipients in one ``POST /v1/messages/batch``.
    api_batch_max_recipients: Positive = 10_000
    #: Most bytes of rendered message text one ``POST /v1/messages/batch`` may store.
    api_batch_max_text_bytes: int = 16 * MIB
    #: Requests per second each API key may make on average, and its burst.
    api_rate_per_s: float = Field(default=50.0, gt=0)
    api_rate_burst: Positive = 100
    #: All keys of one workspace together: this many times a key's rate and burst.
    api_workspace_rate_factor: float = Field(default=4.0, ge=1)
    #: Live keys a workspace may make through ``POST /v1/apikeys``.
    api_keys_per_workspace: Positive = 20
    #: A signed request's X-Timestamp may be this far from the server's clock, seconds.
    api_signature_window_s: Positive = 300
    #: Default and largest page size of list endpoints.
    api_page_default: Positive = 50
    api_page_max: Positive = 1_000
    #: Keys of this workspace may read ``GET /metrics``.
    api_metrics_workspace: str = "ops"
    #: Threads for database calls, and threads that make report pieces.
    api_db_threads: Positive = 8
    api_report_threads: Positive = 2
    #: Reports one workspace may stream at once (per API process).
    api_report_per_workspace: Positive = 2
    #: A report download whose client reads nothing for this long is dropped, seconds.
    api_report_write_timeout_s: float = Field(default=30.0, gt=0)

    #: An import stores its rows in batches, hidden until published; one whose last batch is
    #: older than this was abandoned (its process died), and the poller removes what it stored.
    import_stale_s: float = 600.0

    #: Row limit for spreadsheets and the upload cap for files, refusing zip bombs early.
    max_rows: int = 2_000_000
    max_file_bytes: int = 500 * 1024 * 1024
    #: A CSV/TXT file of at least this many bytes is read, validated and rendered by a producer
    #: process on the second core while this one stores its rows (0: never; small files are
    #: not worth the child's start-up, ~0.3 s).
    ingest_child_min_bytes: int = Field(default=4 * MIB, ge=0)
    #: Private directory for uploads being read (``ApiLimits.upload_dir``; "": the temp dir's).
    api_upload_dir: str = ""

    #: HMAC-SHA256 key that signs every status callback POSTed to clients (docs/callbacks.md).
    callback_secret: str = "change-me"
    #: Allow callback URLs that resolve to loopback, private, link-local or other non-public
    #: addresses. Off in production: a client URL must never reach into our own network.
    callback_allow_private: bool = False
    #: Delivery attempts per callback (5xx, 408, 429, timeouts, resets) before it is failed.
    callback_max_attempts: int = 12
    #: Per-request timeout of a callback POST, connect to last byte.
    callback_timeout_s: float = 5.0

    #: Drop folder: a file is read only after this long without a change (docs/dropfolder.md).
    watch_stable_s: float = 2.0
    #: Drop folder: seconds between looks at the inbox.
    watch_interval_s: float = 1.0
    #: Drop folder: a sidecar with no data file for this long goes to failed/.
    watch_orphan_s: float = 3600.0

    #: ``broadcaster worker``'s supervisor pings its Celery node through Redis (the consumer that
    #: takes the tasks answers it) and restarts a worker that stays alive but silent
    #: (broadcaster/cli/supervise.py, docs/deploy.md). Off: only a worker that exits is restarted.
    liveness_probe: bool = True
    #: Seconds between pings, and how long each waits for the answer.
    liveness_interval_s: float = Field(default=15.0, gt=0)
    liveness_timeout_s: float = Field(default=5.0, gt=0)
    #: Unanswered pings in a row, each while Redis answered, that restart the worker.
    liveness_failures: Positive = 3
    #: No silence counts this long after the worker starts or after Redis was seen down (Celery
    #: starts, or reconnects with pauses of up to 30 s, meanwhile).
    liveness_grace_s: float = Field(default=60.0, ge=0)
    #: Between the SIGTERM of a worker found silent and its SIGKILL (with its pool).
    liveness_kill_grace_s: float = Field(default=30.0, ge=0)


#: The shipped value of the receipt and callback secrets: fine on one machine, never shared.
DEFAULT_SECRET = "change-me"


def default_secret_problem(settings: Settings) -> str | None:
    """Why a process must not start with these settings, or None.

    The default secrets are public (they are in this file): on a shared database (PostgreSQL),
    anyone could forge receipts or client callbacks. SQLite means one machine, so they may stay.
    """
    if settings.database_url.startswith("sqlite"):
        return None
    unset = [
        name
        for name, value in (
            ("BROADCASTER_DLR_SECRET", settings.dlr_secret),
            ("BROADCASTER_CALLBACK_SECRET", settings.callback_secret),
        )
        if value == DEFAULT_SECRET
    ]
    if not unset:
        return None
    return (
        f"{' and '.join(unset)} still {'have' if len(unset) > 1 else 'has'} the default value "
        f"{DEFAULT_SECRET!r}, refused with a shared database: set each to a long random string, "
        f"e.g. export {unset[0]}=$(openssl rand -hex 32)"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
