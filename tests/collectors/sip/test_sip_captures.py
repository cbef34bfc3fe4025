"""SipAnalyzer on the real captures in ../shared/pcaps, against tshark's numbers.

Counts are compared with the checked-in tshark references (``tests/reference/tshark``,
``-z sip,stat``: every dissected message, resends included, plus the resend count). The
captures are read here with a small scapy driver (``sip_scapy_feed``), so files whose SIP sits
in encapsulations that driver does not decode are listed in ``DRIVER_EXEMPT`` — the capture
pipeline's own agreement test covers them. Call/registration figures were checked by hand
against Wireshark's view of each file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sip_scapy_feed import PCAPS, Reassembler, packets

from collectors.capture.packets import UdpPacket
from collectors.sip.analyzer import SipAnalyzer, SipResult

REFS = Path(__file__).resolve().parents[2] / "reference" / "tshark"

# Not decodable by the scapy test driver (the pipeline handles these) or deliberately broken:
DRIVER_EXEMPT = {
    "arkime_gtp-iphone_volte.pcap": "SIP inside GTP-U: out of scope",
    "heplify_sip_sctp.pcap": "SIP over SCTP: out of scope",
    "heplify_sip_tcp_websocket.pcap": "SIP over WebSocket: out of scope",
    "heplify_erspan_sip_ipv4_udp.pcapng": "GRE/ERSPAN decapsulation is the pipeline's",
    "ndpi_gre_multi-if.pcapng": "GRE/PPP decapsulation is the pipeline's",
    "pcpp_sip_reqs.pcap": "PPPoE decapsulation is the pipeline's",
    "sngrep_ipip.pcap": "IP-in-IP decapsulation is the pipeline's",
    "sngrep_ipv6frag.pcap": "IPv6 fragment reassembly is the pipeline's",
    "ndpi_fuzz-2006-06-26-2594.pcap": "fuzzed capture (deliberately malformed headers)",
}


def _sip_refs() -> list[str]:
    out = []
    for ref in sorted(REFS.glob("*.json")):
        sip = json.loads(ref.read_text(encoding="utf-8")).get("sip") or {}
        if sip.get("messages"):
            out.append(ref.name[: -len(".json")])
    return out


def analyse(name: str) -> SipResult:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {path} not present")
    a = SipAnalyzer()
    ra = Reassembler()
    last = None
    for p in packets(path):
        last = p.ts
        if isinstance(p, UdpPacket):
            a.on_udp(p)
        else:
            for sd in ra.feed(p):
                a.on_stream(sd)
    return a.finish(last)


@pytest.mark.parametrize("name", _sip_refs())
def test_counts_agree_with_tshark_sip_stat(name: str) -> None:
    if name in DRIVER_EXEMPT:
        pytest.skip(DRIVER_EXEMPT[name])
    ref = json.loads((REFS / f"{name}.json").read_text(encoding="utf-8"))["sip"]
    r = analyse(name)
    assert r.sip_requests == ref["requests"]
    assert r.sip_responses == ref["responses"]
    assert (r.messages_total, r.retransmissions) == (ref["messages"], ref["resent"])


def test_sngrep_aaa_registrations_401_loops_403_and_success() -> None:
    r = analyse("sngrep_aaa.pcap")
    regs = {reg.aor: reg for reg in r.registrations}
    assert set(regs) == {"sip:voi18063@sip.cybercity.dk", "sip:voi18062@sip.cybercity.dk",
                         "sip:35104723@sip.cybercity.dk"}
    bad = regs["sip:voi18063@sip.cybercity.dk"]
    assert bad.final_codes == {"401": 3, "403": 1} and not bad.registered
    assert [s.state for s in bad.timeline].count("failed") == 2  # the 403 and a refused 401
    good = regs["sip:35104723@sip.cybercity.dk"]
    assert good.registered and good.granted_expiry_s == 1200 and good.final_codes["200"] == 2
    assert sum(reg.attempts for reg in r.registrations) == 18  # tshark: REGISTERx18, 0 resent
    calls = {c.call_id: c for c in r.calls}
    assert len(calls) == 4 and not any(c.answered for c in calls.values())
    assert calls["11894297-4432a9f8@192.168.1.2"].q850_cause == 21
    assert calls["105090259-446faf7a@192.168.1.2"].cancelled


def test_sipnab_auth_failure_is_a_failed_registration() -> None:
    r = analyse("sipnab_sip-auth-failure.pcapng")
    (reg,) = r.registrations
    assert reg.final_codes == {"401": 1, "403": 1} and reg.last_code == 403 and not reg.registered
    assert [s.state for s in reg.timeline] == ["trying", "challenged", "failed"]
    assert r.kpis["ira_pct"] == 100.0


def test_ipfixprobe_scan_unanswered_invites() -> None:
    r = analyse("ipfixprobe_sip.pcap")
    assert len(r.calls) == 9
    unanswered = [c for c in r.calls if c.final_code is None]
    assert len(unanswered) == 8 and all(c.messages == 1 for c in unanswered)
    # the capture lasts less than Timer B (32 s), so they are still "in-progress", not timed out
    assert {c.state for c in unanswered} == {"in-progress"}
    (challenged,) = [c for c in r.calls if c.final_code is not None]
    assert challenged.final_code == 401 and challenged.state == "failed"
    # tshark's 13 resends are all REGISTERs of the scanner
    assert r.retransmissions == 13 and sum(c.retransmissions for c in r.calls) == 0


def test_answered_call_with_sdp_and_bye() -> None:
    r = analyse("sipnab_SIP_CALL_RTP_G711.pcap")
    answered = [c for c in r.calls if c.answered]
    assert len(answered) == 1
    c = answered[0]
    assert c.final_code == 200 and c.setup_ms is not None and c.setup_ms > 0
    media = r.call_media[c.call_id]
    assert {(e.addr, e.port) for e in media} >= {("200.57.7.196", 40376)}
    assert all(e.payload_map for e in media)
    assert any(reg.registered for reg in r.registrations)


def test_compact_form_and_invalid_content_length() -> None:
    compact = analyse("suricata_sip-compact-form.pcap")
    (call,) = compact.calls
    assert call.call_id and call.caller and compact.errors == ()
    bad = analyse("zeek_sip_invalid-content-length.pcap")
    assert bad.sip_requests == {"INVITE": 1} and bad.sip_responses == {"200": 1}
    assert [e.frame for e in bad.errors] == [1, 2]
    assert all("Content-Length" in e.message for e in bad.errors)


def test_options_keepalives_answered() -> None:
    r = analyse("sipnab_sip-488-codec-reject.pcapng")
    kas = {(k.client, k.peer): k for k in r.keepalives if k.kind == "options"}
    assert len(kas) == 3 and all((k.count, k.answered, k.failures) == (1, 1, 0) for k in kas.values())
    assert kas[("192.168.8.13", "192.168.8.138:5060")].rtts_ms == (23.726,)
    (call,) = r.calls
    assert call.final_code == 488 and call.state == "failed"


def test_proxied_call_timings_come_from_the_callers_leg() -> None:
    # tshark: INVITE 0.000 (leg 101→102), forwarded 0.036 (102→100); 180 on leg 2 at 0.096 and on
    # leg 1 at 0.122; 200 on leg 2 at 0.708 and on leg 1 at 0.725; BYE from the callee at 2.957.
    (call,) = analyse("sipnab_sip-proxy.pcap").calls
    assert (call.pdd_ms, call.setup_ms) == (121.593, 725.139)
    assert call.hangup_by == "callee" and call.q850_cause == 16 and call.messages == 11
    assert call.duration_s == 2.232123
