"""/metrics: values read from the Snapshot, label hygiene, promtool lint, the HTTP face and /probe."""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metric_snapshots import NOW, bare_snapshot, busy_snapshot
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.probes import ProbeHistory
from core.findings import CATALOGUE
from core.snapshot import Histogram, ItspState, Snapshot
from dashboard.http_server import Response, UpscopeHttpServer, parse_addr
from dashboard.metric_families import label
from dashboard.metrics import make_registry
from dashboard.probe_endpoint import ProbeModuleConfig


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    found = [v for (n, ls), v in samples(text).items() if n == name and set(labels.items()) <= set(ls)]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


@pytest.fixture
def server() -> Iterator[tuple[UpscopeHttpServer, list[Snapshot | None]]]:
    current: list[Snapshot | None] = [busy_snapshot()]
    srv = UpscopeHttpServer(make_registry(lambda: current[0], "fallback"), port=0, probe_history=ProbeHistory())
    with srv:
        yield srv, current


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def test_values_follow_the_snapshot(server: tuple[UpscopeHttpServer, list[Snapshot | None]]) -> None:
    srv, _ = server
    status, ctype, text = get(srv.url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert value(text, "upscope_itsp_registered") == 1
    assert value(text, "upscope_itsp_status", upscope_itsp_status="registered") == 1
    assert value(text, "upscope_itsp_status", upscope_itsp_status="not-registered") == 0
    assert value(text, "upscope_registration_expiry_timestamp_seconds") == NOW + 503
    assert value(text, "upscope_registration_last_success_timestamp_seconds") == NOW - 97
    assert value(text, "upscope_sip_responses_total", method="REGISTER", code="401") == 1
    assert value(text, "upscope_sip_responses_total", method="OPTIONS", code="200") == 2
    assert value(text, "upscope_sip_responses_total", method="other", code="200") == 1  # FOOBAR bounded
    assert value(text, "upscope_keepalive_rtt_seconds_count") == 2
    assert value(text, "upscope_keepalive_rtt_seconds_bucket", le="0.025") == 1
    assert value(text, "upscope_keepalive_rtt_seconds_sum") == pytest.approx(0.06)
    assert value(text, "upscope_calls_active") == 2  # answered without end + ringing
    assert value(text, "upscope_calls_total", result="answered") == 2
    assert value(text, "upscope_calls_total", result="failed") == 1
    assert value(text, "upscope_call_setup_seconds_bucket", le="1.0") == 1
    assert value(text, "upscope_call_setup_seconds_count") == 2
    assert value(text, "upscope_trunk_lines", state="configured") == 8  # site: simultaneous_calls
    assert value(text, "upscope_trunk_lines", state="used") == 2
    assert value(text, "upscope_rtp_streams_total") == 3
    assert value(text, "upscope_rtp_packets_lost_total") == 12  # negative loss (duplicates) not subtracted
    assert value(text, "upscope_one_way_audio_calls_total") == 1
    assert value(text, "upscope_rtp_mos_count") == 2
    assert value(text, "upscope_rtp_mos_bucket", le="3.6") == 1
    assert value(text, "upscope_rtp_jitter_seconds_bucket", le="0.005") == 2
    assert value(text, "upscope_tls_cert_expiry_timestamp_seconds", source="capture") == NOW + 10 * 86400
    assert value(text, "upscope_tls_cert_expiry_timestamp_seconds", source="sip_options_tls") == NOW + 40 * 86400
    assert value(text, "upscope_probe_success", probe="stun") == 0
    assert value(text, "upscope_probe_duration_seconds", probe="sip_options_tls", phase="tls") == 0.1
    assert value(text, "upscope_jwt_status", upscope_jwt_status="expiring") == 1
    assert value(text, "upscope_jwt_expiry_timestamp_seconds") == NOW + 20 * 86400
    assert value(text, "upscope_licenses", type="unify_phone", state="total") == 10
    assert value(text, "upscope_licenses", type="unify_phone", state="used") == 3
    assert value(text, "upscope_licenses", type="ip_user_desk", state="used") == 1
    # software_support_until: 2027-12-31 → valid through that day
    assert value(text, "upscope_software_support_expiry_timestamp_seconds") == 1830297600.0
    severity = CATALOGUE["media.one-way-audio"].severity.value
    assert value(text, "upscope_finding_active", id="media.one-way-audio", severity=severity) == 2
    assert value(text, "upscope_finding_active", id="itsp.not-registered.firewall") == 0
    title = CATALOGUE["media.one-way-audio"].title
    assert value(text, "upscope_finding_info", id="media.one-way-audio", severity=severity, title=title) == 1
    assert "upscope_finding_info{" not in "\n".join(
        line for line in text.splitlines() if "itsp.not-registered.firewall" in line)  # closed: no title series
    assert value(text, "upscope_collector_up", collector="trace-log") == 0
    assert value(text, "upscope_build_info") == 1
    assert "upscope_exposition_errors{" not in text


def test_every_series_carries_system_and_no_private_data_leaks(
    server: tuple[UpscopeHttpServer, list[Snapshot | None]],
) -> None:
    srv, _ = server
    text = get(srv.url + "/metrics")[2]
    all_samples = samples(text)
    assert all(dict(labels).get("system") == "acme-munich" for _, labels in all_samples)
    for needle in ("secret-call-id", "+4989", "4930123456", "@example.com", "anna", "Berger", "UPSCOPE_API_KEY"):
        assert needle not in text
    finding_series = [ls for (n, ls) in all_samples if n == "upscope_finding_active"]
    assert len(finding_series) == len(CATALOGUE)
    assert len(all_samples) < 200  # bounded: see the HELP texts


def test_snapshot_switch_is_seen_at_the_next_scrape(server: tuple[UpscopeHttpServer, list[Snapshot | None]]) -> None:
    srv, current = server
    current[0] = bare_snapshot(ItspState.NOT_REGISTERED)
    text = get(srv.url + "/metrics")[2]
    assert value(text, "upscope_itsp_registered", system="lab") == 0
    assert value(text, "upscope_jwt_status", upscope_jwt_status="not-set") == 1
    assert value(text, "upscope_rtp_mos_count") == 0
    current[0] = None
    text = get(srv.url + "/metrics")[2]
    assert value(text, "upscope_snapshot_available", system="fallback") == 0
    assert "upscope_itsp_registered" not in text


def test_broken_snapshot_part_is_an_exposition_error_not_a_500(
    server: tuple[UpscopeHttpServer, list[Snapshot | None]],
) -> None:
    srv, current = server
    snap = bare_snapshot(ItspState.REGISTERED)
    current[0] = dataclasses.replace(snap, probes=("not a probe result",))  # type: ignore[arg-type]
    status, _, text = get(srv.url + "/metrics")
    assert status == 200
    assert value(text, "upscope_exposition_errors", section="tls_and_probes") == 1
    assert value(text, "upscope_itsp_registered") == 1


def test_openmetrics_negotiation(server: tuple[UpscopeHttpServer, list[Snapshot | None]]) -> None:
    srv, _ = server
    status, ctype, text = get(srv.url + "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert "# TYPE upscope_itsp_status stateset" in text and text.endswith("# EOF\n")


def test_promtool_check_metrics_prints_nothing(server: tuple[UpscopeHttpServer, list[Snapshot | None]]) -> None:
    if shutil.which("promtool") is None or shutil.which("curl") is None:
        pytest.skip("promtool (Debian prometheus) or curl is not installed")
    srv, _ = server
    proc = subprocess.run(f"curl -s {srv.url}/metrics | promtool check metrics", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_probe_endpoint_blackbox_style(server: tuple[UpscopeHttpServer, list[Snapshot | None]]) -> None:
    srv, _ = server
    host, port = srv.address
    status, _, text = get(f"{srv.url}/probe?target={host}:{port}&module=tcp_connect")
    assert status == 200
    assert value(text, "probe_success") == 1
    assert 0 < value(text, "probe_duration_seconds") < 5
    assert value(text, "probe_phase_duration_seconds", phase="connect") >= 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    status, _, text = get(f"{srv.url}/probe?target=127.0.0.1:{closed}&module=sip_options_tls")
    assert status == 200 and value(text, "probe_success") == 0
    status, _, text = get(f"{srv.url}/probe?target=127.0.0.1:{closed}&module=tcp_connect&debug=true")
    assert status == 200 and "reason TCP connect to 127.0.0.1" in text and "refused" in text
    assert srv.probe_history is not None and len(srv.probe_history.keys()) == 3


def test_probe_endpoint_honours_the_scrape_timeout_header(
    server: tuple[UpscopeHttpServer, list[Snapshot | None]],
) -> None:
    srv, _ = server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        port = hole.getsockname()[1]
        status, _, text = get(f"{srv.url}/probe?target=127.0.0.1:{port}&module=stun",
                              {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert status == 200 and value(text, "probe_success") == 0
    assert 0.95 <= value(text, "probe_duration_seconds") < 1.5  # 1.5 s − 0.5 s offset


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("module=stun", 400, "target parameter is missing"),
        ("target=127.0.0.1:1", 400, "module parameter is missing"),
        ("target=127.0.0.1:1&module=icmp", 400, "unknown module 'icmp'"),
        ("target=not%20a%20host:1&module=stun", 400, "bad host name"),
        ("target=127.0.0.1:99999&module=stun", 400, "port must be 1-65535"),
        ("target=127.0.0.1:1&module=stun&transport=sctp", 400, "option transport: expected one of udp, tcp"),
        ("target=127.0.0.1:1&module=stun&bogus=1", 400, "unknown option 'bogus' (known: transport)"),
        ("target=127.0.0.1:1&module=sip_options_tls&ca_file=/etc/passwd", 400,
         "option ca_file is set in the probe configuration, not in the URL"),
        ("target=127.0.0.1:1&module=https_rest&api_key=x", 400, "option api_key is set in the probe configuration"),
    ],
)
def test_probe_endpoint_rejects_bad_requests(
    server: tuple[UpscopeHttpServer, list[Snapshot | None]], query: str, status: int, message: str
) -> None:
    srv, _ = server
    got_status, _, text = get(f"{srv.url}/probe?{query}")
    assert got_status == status and message in text


def test_probe_endpoint_takes_module_options_from_the_query(
    server: tuple[UpscopeHttpServer, list[Snapshot | None]],
) -> None:
    srv, _ = server
    with socket.socket() as listener:  # a TCP port that accepts and never answers STUN
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        status, _, text = get(f"{srv.url}/probe?target=127.0.0.1:{port}&module=stun&transport=tcp&debug=true",
                              {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert status == 200 and "TCP connected" in text and '"transport": "tcp"' in text
    assert "STUN Binding request over TCP" in text and "success False" in text


def test_routes_404_500_and_extension(server: tuple[UpscopeHttpServer, list[Snapshot | None]]) -> None:
    srv, _ = server
    assert get(srv.url + "/nope")[0] == 404
    srv.add_route("/api/snapshot", lambda req: Response(200, b'{"ok": true}', "application/json"))
    srv.add_route("/boom", lambda req: 1 / 0)  # type: ignore[arg-type,return-value]
    assert get(srv.url + "/api/snapshot")[1:] == ("application/json", '{"ok": true}')
    status, _, text = get(srv.url + "/boom")
    assert status == 500 and "Traceback" not in text and "ZeroDivision" not in text
    assert get(srv.url + "/-/healthy")[0:3:2] == (200, "OK\n")
    assert "/api/snapshot" in get(srv.url + "/")[2]


def test_named_probe_modules_with_options() -> None:
    srv = UpscopeHttpServer(make_registry(lambda: None), port=0,
                            probe_modules={"connector": ProbeModuleConfig("sip_options_tls", {"insecure": True})})
    with srv:
        assert get(f"{srv.url}/probe?target=127.0.0.1:1&module=connector")[0] == 200
        assert get(f"{srv.url}/probe?target=127.0.0.1:1&module=sip_options_tls")[0] == 400


def test_binds_loopback_by_default() -> None:
    srv = UpscopeHttpServer(make_registry(lambda: None), port=0)
    try:
        assert srv.address[0] == "127.0.0.1"
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9661", ("127.0.0.1", 9661)), (":9000", ("127.0.0.1", 9000)), ("0.0.0.0", ("0.0.0.0", 9661)),
     ("[::1]:9661", ("::1", 9661))],
)
def test_parse_addr(text: str, expected: tuple[str, int]) -> None:
    assert parse_addr(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_label_values_never_hold_mail_or_phone_numbers(text: str) -> None:
    out = label(text)
    assert len(out) <= 128
    assert out == "redacted" or not re.search(r"[^@\s]+@[^@\s]+", out)


@pytest.mark.parametrize("text", ["+49 89 7007100", "4989700710", "anna@example.com"])
def test_label_masks_examples(text: str) -> None:
    assert label(text) == "redacted"


def test_runtime_totals_win_over_the_window() -> None:
    """The live analysis is a sliding window; the service's running totals keep counters monotonic
    and /metrics renders them, not the window."""
    snap = busy_snapshot()
    mos = Histogram((3.6, 4.4), (2, 70), 300.0, 80)
    assert snap.totals is not None
    snap = dataclasses.replace(snap, totals=dataclasses.replace(
        snap.totals, calls={"answered": 40, "failed": 3, "odd-state": 1}, one_way_audio_calls=5, rtp_streams=80,
        rtp_packets_lost=1234, sip_responses={"REGISTER 200": 9, "junk": 1}, rtp_mos=mos))
    text = generate_latest(make_registry(lambda: snap)).decode()
    assert value(text, "upscope_calls_total", result="answered") == 40
    assert value(text, "upscope_calls_total", result="other") == 1
    assert value(text, "upscope_one_way_audio_calls_total") == 5
    assert value(text, "upscope_rtp_streams_total") == 80
    assert value(text, "upscope_rtp_packets_lost_total") == 1234
    assert value(text, "upscope_sip_responses_total", method="REGISTER", code="200") == 9
    assert value(text, "upscope_sip_responses_total", method="other", code="other") == 1
    assert value(text, "upscope_rtp_mos_bucket", le="3.6") == 2
    assert value(text, "upscope_rtp_mos_bucket", le="+Inf") == 80
    assert value(text, "upscope_rtp_mos_sum") == 300
    assert "upscope_exposition_errors{" not in text
