"""The Streamlit entry point (navigation), the SIP ladder figure, and the ``upscope dashboard``
command's argument handling (the full command runs in tests/e2e/test_browser.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from streamlit.testing.v1 import AppTest

from dashboard import cli_dashboard, data, frames, ladder, sources
from tests.dashboard import snapshots

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def test_app_navigation_opens_on_the_overview(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "current_source", lambda: sources.OfflineSource(snapshots.healthy()))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    assert at.metric[0].value == "Registered"


def test_app_without_source_says_how_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.SOURCE_ENV, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception
    assert "upscope dashboard" in at.error[0].value


def test_ladder_has_one_arrow_per_message_between_the_right_hosts() -> None:
    snap = snapshots.healthy()
    msgs = frames.sip_messages(snap, snapshots.CALL_ID)
    fig = ladder.ladder_figure(msgs)
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == len(msgs) == 7
    hosts = ladder.hosts(ladder.sorted_messages(msgs))
    assert hosts == ["127.0.0.2:5061", "127.0.0.3:65061"]
    invite = arrows[0]
    assert (invite.ax, invite.x) == (0, 1)  # OSBiz → connector
    assert (arrows[3].ax, arrows[3].x) == (1, 0)  # 200 OK back
    labels = [a.text for a in fig.layout.annotations if not a.showarrow and a.text and "s  #" not in a.text]
    assert labels[2:] == ["INVITE", "100 Trying", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK"]
    hover = fig.data[0].hovertext[0]
    assert "frame 5" in hover and "127.0.0.2:5061 → 127.0.0.3:65061" in hover


def test_call_filter_like_sngrep() -> None:
    df = frames.calls_frame(snapshots.healthy())
    assert list(frames.filter_calls(df, "+4940999")["call_id"]) == ["b77-failed@osbiz"]
    assert list(frames.filter_calls(df, "A84B4C")["call_id"]) == [snapshots.CALL_ID]  # case-insensitive
    assert list(frames.filter_calls(df, "", ["failed"])["call_id"]) == ["b77-failed@osbiz"]
    assert frames.filter_calls(df, "[", []).empty  # not a regex


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.0.0.1:0", "localhost:8501", "1.2.3.4:99999", ":8501"])
def test_bad_addr_is_rejected(addr: str) -> None:
    with pytest.raises(typer.BadParameter, match="--addr"):
        cli_dashboard.parse_addr(addr)


def test_addr_and_streamlit_flags() -> None:
    assert cli_dashboard.parse_addr("[::1]:8502") == ("::1", 8502)
    cmd = cli_dashboard.streamlit_command("127.0.0.1", 8501, 50)
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=False))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false" and flags["--server.maxUploadSize"] == "50"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from dashboard.cli import main; main()", "dashboard", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    missing = _cli("--capture", str(tmp_path / "nope.pcap"))
    assert missing.returncode == 2 and "not a readable file" in missing.stderr
    assert "Traceback" not in missing.stderr
    both = _cli("--lab", "healthy", "--capture", str(tmp_path / "x.pcap"))
    assert both.returncode == 2 and "at most one of" in both.stderr and "Traceback" not in both.stderr
    keylog = _cli("--keylog", str(tmp_path / "k.log"))
    assert keylog.returncode == 2 and "--keylog goes with --capture" in keylog.stderr


def test_capture_mode_source_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`upscope dashboard --capture F` hands the Streamlit process a files source in the environment."""
    import json

    pcap = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps" / "sipnab_SIP_CALL_RTP_G711.pcap"
    if not pcap.exists():
        pytest.skip(f"{pcap} not found (the shared captures live in ../shared/pcaps)")
    monkeypatch.setenv(data.SOURCE_ENV, json.dumps({"kind": "files", "captures": [str(pcap)],
                                                    "label": "capture sipnab"}))
    at = AppTest.from_string("from dashboard.pages import calls\ncalls.render()", default_timeout=60)
    at.run()
    assert not at.exception
    assert "capture sipnab" in at.caption[0].value
    # both calls were still up when the capture ended: listed as not ended, not hidden
    labels = at.selectbox(key="calls.pick").options
    assert len(labels) == 2 and any("(answered open)" in x for x in labels) and any("(ringing)" in x for x in labels)
    # The first message of the selected call in full, read again from the capture: headers and the
    # SDP body, its connection and media lines marked.
    invite = next(c for c in at.code if c.value.startswith("INVITE sip:"))
    assert "Content-Type: application/sdp" in invite.value and "\nm=audio " in invite.value
    marked = next(h.proto.body for h in at.get("html") if "<mark>" in h.proto.body)
    assert "<mark><b>c=IN IP4 " in marked and "<mark><b>m=audio " in marked
    with pytest.raises(sources.SourceError, match="unknown"):
        sources.source_from_config({"kind": "nope"})


def test_prometheus_alone_is_the_fleet_view_and_a_linked_system_adds_its_pages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`upscope dashboard --prometheus URL` alone: the Fleet page only (no source of its own); with
    ?system= of a system Prometheus does not know, still only the Fleet page, which says why."""
    monkeypatch.delenv(data.SOURCE_ENV, raising=False)
    monkeypatch.setenv("UPSCOPE_PROMETHEUS_URL", "http://127.0.0.1:9")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Fleet"
    assert "unreachable" in at.error[0].value
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["system"] = "acme-munich"
    at.run()
    assert at.title[0].value == "Fleet"
    assert "unreachable" in at.warning[0].value  # the link could not be resolved through Prometheus


NAV_SCRIPT = """
import streamlit as st
from dashboard.pages import fleet
st.write(", ".join(title for _, title, _, _ in fleet.navigation([(None, "Overview", "overview", None)])))
"""


@pytest.mark.parametrize(("source", "prometheus", "pages"), [
    (True, True, "Fleet, Overview"),
    (False, True, "Fleet"),
    (True, False, "Overview"),
])
def test_navigation_with_and_without_a_prometheus(monkeypatch: pytest.MonkeyPatch, source: bool, prometheus: bool,
                                                  pages: str) -> None:
    for name, on, value in ((data.SOURCE_ENV, source, '{"kind": "service", "url": "http://127.0.0.1:9"}'),
                            ("UPSCOPE_PROMETHEUS_URL", prometheus, "http://127.0.0.1:9")):
        if on:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    at = AppTest.from_string(NAV_SCRIPT, default_timeout=30).run()
    assert not at.exception and at.markdown[0].value == pages


@pytest.mark.parametrize("url", ["ftp://prometheus:9090", "prometheus:9090", "http://p:9090/?a=1"])
def test_bad_prometheus_url_is_one_line(url: str) -> None:
    res = _cli("--prometheus", url)
    assert res.returncode == 2 and "--prometheus: Prometheus URL" in res.stderr and "Traceback" not in res.stderr
