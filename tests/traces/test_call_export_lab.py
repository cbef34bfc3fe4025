"""Per-call capture on the lab, whose PBX hands the same media ports to call after call.

Before, a call's capture started 5 s before its first stream packet and streams were matched by
ports alone: half of the packets of a call's pcap (390 of 785) were the previous call's audio.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from collectors.analyze import analyze_files
from collectors.export import export_call
from tests.lab.helpers import lab, need
from traces.call_export import BYE_SLACK_S, select_call


def _udp_rows(pcap: bytes, tmp: Path) -> list[tuple[float, int, int]]:
    path = tmp / "call.pcap"
    path.write_bytes(pcap)
    out = subprocess.run([need("tshark"), "-n", "-r", str(path), "-Y", "udp", "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "udp.srcport", "-e", "udp.dstport"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return [(float(t), int(s), int(d)) for t, s, d in (line.split("\t") for line in out.splitlines() if line)]


def test_each_calls_capture_holds_its_own_audio_only(tmp_path: Path) -> None:
    summary = lab(tmp_path, "healthy", duration=14.0, calls_per_minute=20.0, call_seconds=2.5)
    files = [summary.out / "lab.pcapng", summary.out / "osbiz-trace.log"]
    result = analyze_files(files)
    answered = [c for c in result.calls if c.answered and c.end_ts is not None]
    assert len(answered) >= 3
    media_ports = {s.src_port for s in result.rtp_streams} | {s.dst_port for s in result.rtp_streams}
    reused = [c for c in answered if any(o.start_ts < c.start_ts and {m.port for m in o.media} & {m.port for m in c.media}
                                         for o in answered)]
    assert reused, "the lab reuses media ports: the case this test is about"
    for c in answered:
        buf = io.BytesIO()
        export_call(files, select_call(result, c.call_id), buf)
        rtp = [r for r in _udp_rows(buf.getvalue(), tmp_path) if r[1] in media_ports and r[2] in media_ports]
        own = [result.rtp_streams[i] for i in c.streams]
        assert rtp, c.call_id
        assert c.end_ts is not None
        assert all(c.start_ts <= t <= c.end_ts + BYE_SLACK_S for t, _, _ in rtp), c.call_id
        # exactly the call's own streams' packets (both directions), nothing of its neighbours
        assert len(rtp) == sum(s.packets for s in own), c.call_id
        assert {(sp, dp) for _, sp, dp in rtp} == {(s.src_port, s.dst_port) for s in own}
