"""``/metrics`` and the metrics function API the send path calls."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from broadcaster import metrics

#: The label every per-message series carries: which workspace sent (issue 11 item 3).
WS = ("workspace", "acme")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_need_an_ops_key(api):
    body = await api.json("GET", "/metrics", 403)
    assert "ops" in body["detail"]
    assert (await api.client.get("/metrics")).status == 401


async def test_metrics_text_has_send_path_series_and_queue_depth(api):
    metrics.record_sent("55501", "simulator", 3, "acme")
    metrics.record_failed("55501", "simulator", 1, "acme")
    metrics.record_receipt("DELIVRD", "55501", "simulator", 2, workspace="acme")
    metrics.observe_send_latency("simulator", 0.02)
    metrics.record_throttle_wait("55501", 0.5, "acme")
    metrics.record_handback("55501", "acme")
    await api.broadcast()  # three QUEUE messages on 55501
    resp = await api.call("GET", "/metrics", workspace="ops")
    assert resp.status == 200 and resp.content_type == "text/plain"
    got = samples(await resp.text())
    assert (
        got[("broadcaster_messages_sent_total", (("code", "55501"), ("provider", "simulator"), WS))]
        >= 3
    )
    assert (
        got[
            (
                "broadcaster_messages_failed_total",
                (("code", "55501"), ("provider", "simulator"), WS),
            )
        ]
        >= 1
    )
    assert (
        got[
            (
                "broadcaster_receipts_total",
                (("code", "55501"), ("provider", "simulator"), ("status", "DELIVRD"), WS),
            )
        ]
        >= 2
    )
    assert got[("broadcaster_send_latency_seconds_count", (("provider", "simulator"),))] >= 1
    assert got[("broadcaster_throttle_waits_total", (("code", "55501"), WS))] >= 1
    assert got[("broadcaster_throttle_wait_seconds_total", (("code", "55501"), WS))] >= 0.5
    assert got[("broadcaster_throttle_handbacks_total", (("code", "55501"), WS))] >= 1
    assert got[("broadcaster_queue_depth", (("code", "55501"),))] == 3
    assert any(name == "broadcaster_http_requests_total" for name, _ in got)


async def test_queue_depth_drops_to_zero(api):
    b = await api.broadcast()
    await api.call("GET", "/metrics", workspace="ops")
    await api.json("POST", f"/v1/broadcasts/{b['id']}/stop", 200)
    got = samples(await (await api.call("GET", "/metrics", workspace="ops")).text())
    assert got[("broadcaster_queue_depth", (("code", "55501"),))] == 0


async def test_requests_are_counted_by_route_template(api):
    await api.call("GET", "/v1/messages/12345")
    got = samples(metrics.render().decode())
    assert (
        got[
            (
                "broadcaster_http_requests_total",
                (("method", "GET"), ("route", r"/v1/messages/{id}"), ("status", "404")),
            )
        ]
        >= 1
    )


def test_multiprocess_mode_sums_every_process(tmp_path, monkeypatch):
    # Given PROMETHEUS_MULTIPROC_DIR, values written by other processes appear in render().
    import subprocess
    import sys

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    code = "from broadcaster import metrics; metrics.record_sent('99999', 'simulator', 5, 'acme')"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], check=True)
    got = samples(metrics.render().decode())
    assert (
        got[("broadcaster_messages_sent_total", (("code", "99999"), ("provider", "simulator"), WS))]
        == 10
    )
