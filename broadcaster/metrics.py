"""Prometheus metrics: one place that names them, a small function API the send path calls.

::

    metrics.record_sent(code, provider, n, ws)      messages the gateway accepted
    metrics.record_failed(code, provider, n, ws)    messages that ended ERROR on the send path
    metrics.record_receipt(status, code, provider, ws=…)  delivery receipts applied, by status
    metrics.observe_send_latency(provider, s)       one gateway request, in seconds
    metrics.record_throttle_wait(code, s, ws)       a chunk waited ``s`` seconds for tokens
    metrics.record_handback(code, ws)               a chunk handed its remainder back (throttled)
    metrics.set_queue_depth({code: n})              QUEUE messages per sender code, now
    metrics.render()                                the text exposition, for GET /metrics

Processes: Celery workers and the API are separate processes. With ``PROMETHEUS_MULTIPROC_DIR``
set (an empty directory shared by every process, cleared on deploy), prometheus_client writes each
process's values to files there and :func:`render` sums them, so the API's ``/metrics`` shows what
the workers counted. Without it each process reports only its own values.

Labels are bounded: sender codes are registered per workspace, providers are a short list, and
statuses come from :class:`~broadcaster.domain.states.MessageStatus`. Per-message counters carry
the ``workspace`` that sent: a code shared by two workspaces shows each one's traffic apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: The Content-Type of :func:`render`'s output.
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Environment variable prometheus_client reads for multi-process mode (set by the deployment).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Gateway request latency buckets, seconds: loopback simulator to a slow gateway's timeout.
SEND_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: HTTP API handler latency buckets, seconds.
HTTP_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)

SENT = Counter(
    "broadcaster_messages_sent_total",
    "Messages accepted by a gateway.",
    ["code", "provider", "workspace"],
)
FAILED = Counter(
    "broadcaster_messages_failed_total",
    "Messages that ended ERROR on the send path.",
    ["code", "provider", "workspace"],
)
RECEIPTS = Counter(
    "broadcaster_receipts_total",
    "Delivery receipts applied, by the status they carried.",
    ["status", "code", "provider", "workspace"],
)
SEND_LATENCY = Histogram(
    "broadcaster_send_latency_seconds",
    "Duration of one gateway send request.",
    ["provider"],
    buckets=SEND_LATENCY_BUCKETS_S,
)
THROTTLE_WAITS = Counter(
    "broadcaster_throttle_waits_total",
    "Times a chunk waited for rate-limit tokens of its sender code.",
    ["code", "workspace"],
)
THROTTLE_WAIT_SECONDS = Counter(
    "broadcaster_throttle_wait_seconds_total",
    "Seconds spent waiting for rate-limit tokens.",
    ["code", "workspace"],
)
HANDBACKS = Counter(
    "broadcaster_throttle_handbacks_total",
    "Chunks that handed their remainder back to the queue instead of waiting.",
    ["code", "workspace"],
)
QUEUE_DEPTH = Gauge(
    "broadcaster_queue_depth",
    "Messages in QUEUE (stored, not yet claimed) per sender code.",
    ["code"],
    multiprocess_mode="livemax",
)
TICK_FAILURES = Counter(
    "broadcaster_tick_step_failures_total",
    "Beat tick steps that failed (logged with their traceback); the other steps went on.",
    ["step"],
)
HTTP_REQUESTS = Counter(
    "broadcaster_http_requests_total",
    "HTTP API requests by route and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "broadcaster_http_request_seconds",
    "HTTP API handler duration.",
    ["method", "route"],
    buckets=HTTP_LATENCY_BUCKETS_S,
)

# Codes that had a depth last time, so a code whose queue emptied is set back to zero.
_depth_codes: set[str] = set()


def record_sent(code: str, provider: str, n: int = 1, workspace: str = "") -> None:
    if n > 0:
        SENT.labels(code, provider, workspace).inc(n)


def record_failed(code: str, provider: str, n: int = 1, workspace: str = "") -> None:
    if n > 0:
        FAILED.labels(code, provider, workspace).inc(n)


def record_receipt(
    status: str, code: str, provider: str, n: int = 1, *, workspace: str = ""
) -> None:
    if n > 0:
        RECEIPTS.labels(status, code, provider, workspace).inc(n)


def observe_send_latency(provider: str, seconds: float) -> None:
    SEND_LATENCY.labels(provider).observe(max(0.0, seconds))


def record_throttle_wait(code: str, seconds: float, workspace: str = "") -> None:
    THROTTLE_WAITS.labels(code, workspace).inc()
    THROTTLE_WAIT_SECONDS.labels(code, workspace).inc(max(0.0, seconds))


def record_handback(code: str, workspace: str = "") -> None:
    HANDBACKS.labels(code, workspace).inc()


def set_queue_depth(depths: Mapping[str, int]) -> None:
    """Replace the queue depth per sender code; codes missing from ``depths`` drop to zero."""
    for code in _depth_codes - set(depths):
        QUEUE_DEPTH.labels(code).set(0)
    for code, n in depths.items():
        QUEUE_DEPTH.labels(code).set(n)
    _depth_codes.clear()
    _depth_codes.update(depths)


def record_tick_failure(step: str) -> None:
    TICK_FAILURES.labels(step).inc()


# Each request's children, looked up once: ``labels()`` (a lock, label checks) cost about as
# much as the two updates, on every request of the API.
_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _http_children.get(key)
    if children is None:
        children = _http_children[key] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
        )
    children[0].inc()
    children[1].observe(max(0.0, seconds))


def render() -> bytes:
    """The Prometheus text exposition: every process's values in multi-process mode."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
