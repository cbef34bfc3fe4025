"""The full pipeline (``collectors.analyze``) against tshark on every shared test capture.

Per RTP stream (src, src port, dst, dst port, SSRC): packets and lost equal tshark's
``-z rtp,streams``; max delta, mean and max jitter (and min/mean delta) within 0.01 ms. SIP request and response
counts equal ``-z sip,stat``. The references are the checked-in JSON files written by
``tests/reference/make_tshark_refs.py`` (tshark 4.0, per-file options from INVENTORY.md); the
``e2e`` variant re-runs tshark itself.

Streams that upscope finds by its heuristic in a capture where tshark ran without
``rtp.heuristic_rtp`` (RTP that no SDP in the capture announces) must equal tshark's numbers
from a second run with the heuristic on. Every exemption is listed below with its reason.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from collectors.analyze import analyze_files
from core.analysis import AnalysisResult, RtpStreamStats

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / ".." / "shared" / "pcaps"
REFS = REPO / "tests" / "reference" / "tshark"
TOLERANCE_MS = 0.01

# Whole captures exempt from agreement (still analysed: they must not crash).
EXEMPT_CAPTURES = {
    "arkime_gtp-iphone_volte.pcap": "SIP and RTP inside GTP-U: out-of-scope encapsulation",
    "heplify_sip_sctp.pcap": "SIP over SCTP: out of scope",
    "ndpi_fuzz-2006-06-26-2594.pcap": "deliberately malformed (byte-mutated fuzz output)",
    "ndpi_fuzz-2021-10-13_cut-short.pcap": "deliberately malformed (record beyond end of file)",
    "zeek_trunc-hdr.pcap": "deliberately truncated (snaplen 1)",
    "tcpdump_rtp-seg-fault-1.pcapng": "deliberately malformed (tcpdump crash reproducer)",
    "tcpdump_rtp-seg-fault-2.pcapng": "deliberately malformed (tcpdump crash reproducer)",
}
# Only the SIP counts of these captures are exempt.
EXEMPT_SIP = {
    "heplify_sip_tcp_websocket.pcap": "11 of the 39 SIP messages travel over WebSocket: out of scope",
}
# Single streams: (capture, src, sport, dst, dport, ssrc) → (exempt fields, reason).
EXEMPT_STREAMS: dict[tuple[str, str, int, str, int, int], tuple[frozenset[str], str]] = {
    ("ndpi_stun_dtls_rtp.pcapng", "142.250.82.249", 3478, "192.168.12.182", 50221, 0x2F696C70): (
        frozenset({"present"}), "RTP relayed inside TURN over TCP: upscope analyses RTP over UDP only",
    ),
    ("ndpi_stun_dtls_rtp.pcapng", "142.250.82.249", 3478, "192.168.12.182", 50221, 0x321D28BB): (
        frozenset({"present"}), "RTP relayed inside TURN over TCP: upscope analyses RTP over UDP only",
    ),
    ("ndpi_FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", "10.35.60.100", 15580, "10.23.1.52", 16756, 0x0EAF0EAF): (
        frozenset({"packets", "lost", "mean_delta_ms"}),
        "an SDP inside MEGACO/H.248 (frame 1434, not SIP) moves 10.23.1.52:16756 to T.38; tshark then "
        "decodes the last 27 datagrams of this flow as UDPTL, upscope (SIP SDP only) still as RTP",
    ),
}


def _refs() -> list[Path]:
    if not PCAPS.is_dir():
        return []
    return sorted(REFS.glob("*.json"))


def _key(s: dict[str, Any] | RtpStreamStats) -> tuple[str, int, str, int, int]:
    if isinstance(s, RtpStreamStats):
        return (s.src, s.src_port, s.dst, s.dst_port, s.ssrc)
    return (s["src"], s["src_port"], s["dst"], s["dst_port"], s["ssrc"])


def _stream_problems(capture: str, ours: RtpStreamStats | None, ref: dict[str, Any]) -> list[str]:
    exempt, _reason = EXEMPT_STREAMS.get((capture, *_key(ref)), (frozenset(), ""))
    if ours is None:
        return [] if "present" in exempt else [f"stream {_key(ref)} missing"]
    problems = []
    for field in ("packets", "lost"):
        if field not in exempt and getattr(ours, field) != ref[field]:
            problems.append(f"{_key(ref)} {field}: upscope {getattr(ours, field)} tshark {ref[field]}")
    for field in ("max_delta_ms", "mean_jitter_ms", "max_jitter_ms", "min_delta_ms", "mean_delta_ms"):
        theirs = max(ref[field], 0.0)  # tshark prints −1 for "no regular packet", upscope 0
        if field not in exempt and abs(getattr(ours, field) - theirs) > TOLERANCE_MS:
            problems.append(f"{_key(ref)} {field}: upscope {getattr(ours, field):.4f} tshark {ref[field]}")
    return problems


def compare(capture: str, result: AnalysisResult, ref: dict[str, Any]) -> list[str]:
    """Every disagreement between an analysis and a tshark reference record, as text."""
    problems: list[str] = []
    ours = {_key(s): s for s in result.rtp_streams}
    theirs = {_key(s): s for s in ref["rtp_streams"]}
    heuristic = {_key(s): s for s in ref.get("rtp_streams_heuristic", [])}
    for key, t in theirs.items():
        problems += _stream_problems(capture, ours.get(key), t)
    for key, o in ours.items():
        if key in theirs:
            continue
        if o.detected_by == "heuristic" and key in heuristic:
            problems += _stream_problems(capture, o, heuristic[key])
        else:
            problems.append(f"stream {key} ({o.detected_by}, {o.packets} packets) not in tshark's list")
    if capture not in EXEMPT_SIP:
        if result.sip_requests != ref["sip"]["requests"]:
            problems.append(f"SIP requests: upscope {result.sip_requests} tshark {ref['sip']['requests']}")
        if result.sip_responses != ref["sip"]["responses"]:
            problems.append(f"SIP responses: upscope {result.sip_responses} tshark {ref['sip']['responses']}")
    return problems


@pytest.mark.parametrize("ref_path", _refs(), ids=lambda p: p.name.removesuffix(".json"))
def test_pipeline_agrees_with_tshark_reference(ref_path: Path) -> None:
    ref = json.loads(ref_path.read_text())
    capture = PCAPS / ref["capture"]
    result = analyze_files([capture])
    if ref["capture"] in EXEMPT_CAPTURES:
        assert result.packets >= 0  # analysed without a crash is all that is asked
        return
    problems = compare(ref["capture"], result, ref)
    assert not problems, "\n".join(problems)


def test_references_cover_every_capture_with_media() -> None:
    if not PCAPS.is_dir():
        pytest.skip(f"shared captures not found at {PCAPS}")
    captures = {p.name for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng")}
    have = {p.name.removesuffix(".json") for p in REFS.glob("*.json")}
    assert captures <= have, f"no tshark reference for {sorted(captures - have)}"
    streams = sum(len(json.loads(p.read_text())["rtp_streams"]) for p in REFS.glob("*.json"))
    assert streams >= 50  # the corpus has 50+ RTP streams; a broken parser would drop them


def _live_tshark() -> Any:
    """The reference harness, or a skip when tshark is missing or not the 4.0 series: the RTP
    analysis rules upscope follows (and the stored references) are tshark 4.0's; later releases
    changed the in-time rule (extended timestamps per conversation)."""
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    harness = _harness()
    version = harness.tshark_version()
    if "(Wireshark) 4.0." not in version:
        pytest.skip(f"{version}: the references and rules are tshark 4.0's")
    return harness


def _harness() -> Any:
    spec = importlib.util.spec_from_file_location("make_tshark_refs", REPO / "tests/reference/make_tshark_refs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_tshark_refs"] = module
    spec.loader.exec_module(module)
    return module


_MEDIA_REFS = [p for p in _refs() if json.loads(p.read_text())["rtp_streams"]]


@pytest.mark.e2e
@pytest.mark.parametrize("ref_path", _MEDIA_REFS, ids=lambda p: p.name.removesuffix(".json"))
def test_pipeline_agrees_with_live_tshark(ref_path: Path) -> None:
    stored = json.loads(ref_path.read_text())
    if stored["capture"] in EXEMPT_CAPTURES:
        pytest.skip(f"exempt: {EXEMPT_CAPTURES[stored['capture']]}")
    harness = _live_tshark()
    live = harness.run_tshark(PCAPS / stored["capture"], harness.inventory_options(PCAPS / "INVENTORY.md")
                              .get(stored["capture"], []))
    result = analyze_files([PCAPS / stored["capture"]])
    problems = compare(stored["capture"], result, live)
    assert not problems, "\n".join(problems)


# -- a synthetic call with every quirk the corpus lacks (tests/reference/synthetic_media.py) ----


def _synthetic() -> Any:
    spec = importlib.util.spec_from_file_location("synthetic_media", REPO / "tests/reference/synthetic_media.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetic_media"] = module
    spec.loader.exec_module(module)
    return module


SYNTHETIC_REFS = REPO / "tests" / "reference" / "tshark-synthetic"


def _check_synthetic(capture: Path, ref: dict[str, Any]) -> None:
    assert len(ref["rtp_streams"]) == 4 and len(ref["rtp_streams_heuristic"]) == 5
    result = analyze_files([capture])
    problems = compare(capture.name, result, ref)
    assert not problems, "\n".join(problems)
    streams = {s.ssrc: s for s in result.rtp_streams}
    assert 1 <= streams[0x1111].events <= 8 and streams[0x1111].duplicates >= 1
    assert streams[0x3333].clock_rate == 44100 and streams[0x4444].detected_by == "heuristic"


@pytest.mark.parametrize("variant", ["ethernet", "vlan", "sll", "ipv6"])
def test_synthetic_quirks_agree_with_stored_tshark(tmp_path: Path, variant: str) -> None:
    synthetic = _synthetic()
    capture = tmp_path / f"quirky-{variant}.pcap"
    link, ipv6 = synthetic.VARIANTS[variant]
    synthetic.write_quirky_call(capture, link=link, ipv6=ipv6)
    _check_synthetic(capture, json.loads((SYNTHETIC_REFS / f"quirky-{variant}.json").read_text()))


@pytest.mark.e2e
@pytest.mark.parametrize("variant", ["ethernet", "vlan", "sll", "ipv6"])
def test_synthetic_quirks_agree_with_live_tshark(tmp_path: Path, variant: str) -> None:
    harness = _live_tshark()
    synthetic = _synthetic()
    capture = tmp_path / f"quirky-{variant}.pcap"
    link, ipv6 = synthetic.VARIANTS[variant]
    synthetic.write_quirky_call(capture, link=link, ipv6=ipv6)
    _check_synthetic(capture, harness.run_tshark(capture, []))


def test_rtcp_reports_from_the_corpus() -> None:
    """RTCP reaches the result: SR/RR counts as tshark shows them (nDPI sample: 3 SR, 2 RR in five
    compound datagrams), CNAMEs without the NUL some gateways count in, RTT only when positive,
    and no false malformed items for the 2 padding bytes an AudioCodes stack appends."""
    if not PCAPS.is_dir():
        pytest.skip(f"shared captures not found at {PCAPS}")
    multi = analyze_files([PCAPS / "ndpi_rtcp_multiple_pkts_in_the_same_datagram.pcap"])
    assert sum(r.sender_reports for r in multi.rtcp) == 3
    assert sum(r.receiver_reports for r in multi.rtcp) == 2
    call = analyze_files([PCAPS / "sipnab_SIP_CALL_RTP_G711.pcap"])
    assert not [e for e in call.errors if e.layer in ("rtp", "rtcp")]
    assert {r.cname for r in call.rtcp} >= {"ACLTP ChannelHandle 30", "unknown@200.57.7.204"}
    rtts = [r.last_rtt_ms for r in call.rtcp if r.last_rtt_ms is not None]
    assert rtts and all(0 < x < 50 for x in rtts)
    assert all(r.call_id is not None for r in call.rtcp if r.src_port in (8001, 40377))  # SDP ports + 1
