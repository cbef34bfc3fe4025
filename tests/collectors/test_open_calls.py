"""Calls still up at the end of a capture: ``answered-open``, lasting to their last packet.

Before, such a call lasted from its 200 OK to its last SIP message (the ACK): 6.5e-05 s on a
capture whose RTP ran 26 s, and the Overview counted it among the completed calls.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collectors.analyze import analyze_files
from collectors.producer import Inputs
from collectors.runtime.totals import RunningTotals
from dashboard.cli import app
from dashboard.sources import OfflineSource
from dashboard.tiles import call_counts, calls_tile

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"
CALL = "12013223@200.57.7.195"  # answered at frame 498, no BYE in the capture


def _capture(name: str) -> Path:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {name} not found in {PCAPS}")
    return path


def _tshark_times(path: Path, display_filter: str, *opts: str) -> list[float]:
    out = subprocess.run(["tshark", "-n", "-r", str(path), *opts, "-Y", display_filter, "-T", "fields",
                          "-e", "frame.time_epoch"], capture_output=True, text=True, timeout=120, check=True).stdout
    return [float(x) for x in out.split()]


def test_open_call_runs_to_its_last_rtp_packet() -> None:
    path = _capture("sipnab_SIP_CALL_RTP_G711.pcap")
    result = analyze_files([path])
    call = next(c for c in result.calls if c.call_id == CALL)
    assert (call.state, call.answered, call.end_ts, call.hangup_by) == ("answered-open", True, None, None)
    streams = [result.rtp_streams[i] for i in call.streams]
    assert len(streams) == 2 and call.answer_ts is not None
    assert call.duration_s == pytest.approx(max(s.last_ts for s in streams) - call.answer_ts, abs=1e-6)
    assert call.duration_s > 26.0  # not the 200 OK → ACK gap of a few milliseconds
    # An ended call's completion ratio is unchanged: the open call did not complete.
    assert result.kpis["scr_pct"] == 0.0
    if shutil.which("tshark") is None:
        return
    answer = _tshark_times(path, f'sip.Status-Code == 200 && sip.CSeq.method == "INVITE" && sip.Call-ID == "{CALL}"')
    ports = " || ".join(f"(udp.srcport == {s.src_port} && udp.dstport == {s.dst_port})" for s in streams)
    rtp = _tshark_times(path, f"rtp && ({ports})")
    assert answer and rtp
    assert call.answer_ts == pytest.approx(answer[0], abs=1e-6)
    assert call.duration_s == pytest.approx(max(rtp) - answer[0], abs=1e-5)


def test_open_call_is_marked_in_every_analyze_output(tmp_path: Path) -> None:
    path = _capture("sipnab_SIP_CALL_RTP_G711.pcap")
    res = CliRunner().invoke(app, ["analyze", "--format", "json", "--no-progress", str(path)])
    doc = json.loads(res.stdout)
    assert doc["schema"] == 2
    call = next(c for c in doc["calls"] if c["call_id"] == CALL)
    assert call["state"] == "answered-open" and call["duration_s"] > 26.0
    for fmt, name in (("table", "analysis.txt"), ("html", "analysis.html")):
        res = CliRunner().invoke(app, ["analyze", "--format", fmt, "--no-progress", "--out", str(tmp_path), str(path)])
        assert res.exit_code == 0 and "answered-open" in (tmp_path / name).read_text()


def test_open_calls_are_not_completed_calls() -> None:
    result = analyze_files([_capture("sipnab_SIP_CALL_RTP_G711.pcap")])
    assert any(c.state == "answered-open" for c in result.calls)
    # the Overview's "completed calls" (offline: from the analysis)
    rows = OfflineSource.from_inputs(Inputs(analysis=result)).calls_since(0.0)
    assert rows == []
    assert "0 completed calls" in calls_tile(call_counts(rows)).help
    # the service's running totals count a call once it has ended, not while it is up
    totals = RunningTotals(forget_after_s=600)
    done, _ = totals.observe(result, now=result.last_ts or 0.0)
    assert [c.call_id for c in done] == [] and totals.calls == {}
    call = next(c for c in result.calls if c.call_id == CALL)
    ended = replace(call, state="answered", end_ts=(result.last_ts or 0.0) + 1.0)
    later = replace(result, calls=tuple(ended if c.call_id == CALL else c for c in result.calls))
    done, _ = totals.observe(later, now=(result.last_ts or 0.0) + 2.0)
    assert [c.call_id for c in done] == [CALL] and totals.calls == {"answered": 1}
