"""Firewall verdicts per expected flow (DOMAIN §7) and the GCP ranges loader."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from diag_builders import (
    CONNECTOR,
    CPORT,
    MEDIA_PEER,
    OSBIZ,
    STUN,
    T0,
    analysis,
    site,
    site_dict,
    stream,
    tls_ok,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from core.analysis import FlowInfo, StunTransactionInfo
from core.errors import ConfigError
from core.firewall import (
    Endpoints,
    Verdict,
    check_firewall,
    endpoints_from_site,
    probe_failed_at_connect,
    split_media,
)
from core.gcp_ranges import default_gcp_ranges, load_gcp_ranges
from core.probes import ProbeResult
from core.site import Site

CLOUD_JSON = Path(__file__).resolve().parents[2] / "data" / "cloud.json"


def verdicts(a, probes=(), gcp=None, s=None):
    ep = endpoints_from_site(s if s is not None else site())
    return {v.flow: v for v in check_firewall(ep, a, probes, gcp)}


def test_expected_flows_in_seed_order_with_site_endpoints() -> None:
    v = check_firewall(endpoints_from_site(site()), None)
    assert [x.flow for x in v] == ["sip-tls", "rest-api", "stun-udp", "stun-tcp", "rtp-egress", "rtp-ingress",
                                   "inbound-443"]
    assert v[0].destination == f"{CONNECTOR}:{CPORT}"
    assert all(x.verdict is Verdict.NOT_OBSERVED and x.ok for x in v)


def test_seed_defaults_without_site() -> None:
    ep = endpoints_from_site(None)
    assert ep.connector == ("35.246.178.13", 65061) and ep.rest == ("34.117.105.255", 443)
    assert ep.stun == ("34.159.228.55", 3478) and ep.media_ports == (10000, 49999)


def test_healthy_capture_is_working() -> None:
    v = verdicts(analysis())
    for flow in ("sip-tls", "stun-udp", "rtp-egress", "rtp-ingress"):
        assert v[flow].verdict is Verdict.WORKING and v[flow].ok, flow
    assert v["rest-api"].verdict is Verdict.NOT_OBSERVED


def test_blocked_tcp_variants() -> None:
    syn = analysis(tls_flows=(), flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 5, 300, T0, T0 + 31, syn=5, first_frame=2),))
    v = verdicts(syn)["sip-tls"]
    assert v.verdict is Verdict.BLOCKED and not v.ok and v.reason == "TCP SYN unanswered"
    assert v.evidence[0].packets == (2,) and "5 SYN" in v.evidence[0].text
    rst = analysis(tls_flows=(), flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 1, 60, T0, T0, syn=1, first_frame=2),
                                        FlowInfo("tcp", CONNECTOR, OSBIZ, 50000, 1, 40, T0, T0, rst=1, first_frame=3)))
    assert verdicts(rst)["sip-tls"].reason == "connection refused (SYN answered by RST)"


def test_answer_seen_in_the_client_packets_or_an_established_connection() -> None:
    # SYN-ACKs are counted in the reverse flow by the pipeline; the client's ACKs prove the answer.
    a = analysis(tls_flows=(), flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 12, 900, T0, T0 + 9, syn=1, first_frame=2),))
    assert verdicts(a)["sip-tls"].verdict is Verdict.WORKING
    mid = analysis(tls_flows=(), flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 40, 9000, T0, T0 + 9, first_frame=1),))
    v = verdicts(mid)["sip-tls"]
    assert v.verdict is Verdict.WORKING and "established connection" in v.evidence[0].text


def test_working_wins_over_an_earlier_block_and_keeps_it_as_a_note() -> None:
    a = analysis(flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 300, 9000, T0, T0 + 500, syn=4, syn_ack=1, first_frame=1),
                        FlowInfo("tcp", "10.0.0.9", CONNECTOR, CPORT, 3, 180, T0, T0 + 5, syn=3, first_frame=40)))
    v = verdicts(a)["sip-tls"]
    assert v.verdict is Verdict.WORKING
    assert v.notes == ("also seen: TCP SYN unanswered",)


def test_latest_observation_decides_when_a_fault_begins_and_ends() -> None:
    a = analysis(flows=(), tls_flows=(dataclasses.replace(tls_ok(), last_ts=T0 + 100),))
    fail = ProbeResult("sip_options_tls", f"{CONNECTOR}:{CPORT}", T0 + 200, False,
                       "TCP connect to x: timed out after 5 s (SYN unanswered)", 5.0, phases={"connect": 5.0})
    v = verdicts(a, probes=[fail])["sip-tls"]
    assert v.verdict is Verdict.BLOCKED and v.notes[0].startswith("answered earlier, last at 2026-11-20T10:01:40")
    ok = dataclasses.replace(fail, ts=T0 + 300, success=True, reason="", phases={"connect": 0.01})
    v = verdicts(a, probes=[fail, ok])["sip-tls"]
    assert v.verdict is Verdict.WORKING and v.notes == ("also seen: probe sip_options_tls failed: "
                                                        "TCP connect to x: timed out after 5 s (SYN unanswered)",)


def test_syns_beyond_the_connections_that_came_up_are_noted() -> None:
    a = analysis(flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 60, 9000, T0, T0 + 200, syn=9, first_frame=1),))
    v = verdicts(a)["sip-tls"]
    assert v.verdict is Verdict.WORKING  # the one connection is still alive at T0+590
    assert v.notes == ("also seen: TCP SYN unanswered",)
    assert any("8 SYN unanswered" in e.text for e in v.evidence)


def test_stun_unanswered_and_probe() -> None:
    req = StunTransactionInfo(OSBIZ, 20000, STUN, 3478, "udp", "bb" * 12, "Binding", 7, None, None, None, None, None)
    v = verdicts(analysis(stun=(req,)))["stun-udp"]
    assert v.verdict is Verdict.BLOCKED and v.evidence[0].packets == (7,)
    p = ProbeResult("stun", f"{STUN}:3478", T0, True, "", 0.02, details={"mapped_address": "203.0.113.10:4000"})
    v = verdicts(analysis(stun=()), probes=[p])["stun-udp"]
    assert v.verdict is Verdict.WORKING and v.evidence[0].source == "probe:stun"
    ptcp = ProbeResult("stun", f"{STUN}:3478", T0, False, "TCP connect to x: refused (RST, nothing listens)", 0.01,
                       phases={"connect": 0.001})
    v = verdicts(analysis(stun=()), probes=[ptcp])
    assert v["stun-tcp"].verdict is Verdict.BLOCKED and v["stun-udp"].verdict is Verdict.NOT_OBSERVED


def test_rest_probe_answering_401_still_proves_the_path() -> None:
    p = ProbeResult("https_rest", "34.117.105.255:443", T0, False, "HTTP 401", 0.3,
                    phases={"connect": 0.01, "tls": 0.05, "request": 0.2}, details={"status_code": 401})
    assert not probe_failed_at_connect(p)
    assert verdicts(analysis(), probes=[p])["rest-api"].verdict is Verdict.WORKING
    down = ProbeResult("https_rest", "34.117.105.255:443", T0, False, "connect timed out", 5.0,
                       details={"failed_phase": "connect"})
    assert probe_failed_at_connect(down)
    cert = ProbeResult("https_rest", "34.117.105.255:443", T0, False,
                       "TLS handshake with 34.117.105.255:443: certificate verify failed", 0.1)
    assert not probe_failed_at_connect(cert)
    assert verdicts(analysis(), probes=[down])["rest-api"].verdict is Verdict.BLOCKED


def test_rtp_one_way_when_nothing_comes_back() -> None:
    v = verdicts(analysis(rtp_streams=(stream(OSBIZ, 20000, MEDIA_PEER, 30000),)))
    assert v["rtp-egress"].verdict is Verdict.WORKING
    assert v["rtp-ingress"].verdict is Verdict.ONE_WAY and not v["rtp-ingress"].ok
    assert v["rtp-ingress"].reason == "1 call(s) with RTP one way only"
    # The same judgement as the one-way audio finding: a stream of no call counts as well, but a
    # few packets (under 1 s) are no media flowing.
    lone = stream(OSBIZ, 20000, MEDIA_PEER, 30000, call_id=None)
    v = verdicts(analysis(calls=(), rtp_streams=(lone,)))
    assert v["rtp-ingress"].verdict is Verdict.ONE_WAY
    assert v["rtp-ingress"].reason == "1 RTP stream(s) of no call with no stream back"
    burst = stream(OSBIZ, 20000, MEDIA_PEER, 30000, call_id=None, packets=20)
    assert verdicts(analysis(calls=(), rtp_streams=(burst,)))["rtp-ingress"].ok


def test_split_media_on_loopback_pairs_by_ports() -> None:
    ep = Endpoints(osbiz=("127.0.0.1",), media_ports=(20000, 20999))
    out = stream("127.0.0.1", 20002, "127.0.0.1", 40002)
    back = stream("127.0.0.1", 40002, "127.0.0.1", 20002)
    lone = stream("127.0.0.1", 20004, "127.0.0.1", 40004)
    m = split_media([out, back, lone], ep)
    assert m.egress == (out, lone) and m.ingress == (back,) and m.unpaired_egress == (lone,)
    # Same address and both ports in range: the pair is still split one each way.
    ep2 = Endpoints(osbiz=("127.0.0.1",))
    m2 = split_media([out, back], ep2)
    assert len(m2.egress) == 1 and len(m2.ingress) == 1 and m2.unpaired_egress == ()


def test_gcp_ranges_fixture_and_foreign_peer_note() -> None:
    gcp = load_gcp_ranges(CLOUD_JSON.read_text())
    assert gcp.scope == "europe-west3" and gcp.sync_token == "1732600000000" and gcp.created == "2026-11-26"
    assert len(gcp.networks) == 4
    assert gcp.contains(MEDIA_PEER) and gcp.contains("35.246.178.13") and gcp.contains("2600:1900:40d0::1")
    assert not gcp.contains("34.16.0.1") and not gcp.contains("34.89.1.20")  # us-central1, europe-west2
    assert not gcp.contains("not an address")
    v = verdicts(analysis(), gcp=gcp)
    assert v["rtp-egress"].notes == ("all RTP peers are in the GCP europe-west3 ranges (cloud.json of 2026-11-26) "
                                     "or the site's connector/STUN",)
    foreign = analysis(rtp_streams=(stream(OSBIZ, 20000, "34.16.0.9", 30000), stream("34.16.0.9", 30000, OSBIZ, 20000)))
    v = verdicts(foreign, gcp=gcp)
    assert v["rtp-ingress"].notes == ("not the cloud — outside the GCP europe-west3 ranges (cloud.json of 2026-11-26) "
                                      "or the site's connector/STUN: 34.16.0.9",)
    assert v["rtp-egress"].verdict is Verdict.NOT_OBSERVED and v["rtp-egress"].ok
    assert v["rtp-egress"].reason == "no RTP with the cloud; 2 RTP stream(s) with other peers"
    assert load_gcp_ranges(CLOUD_JSON.read_text(), scope="us-central1").contains("34.16.0.1")


@pytest.mark.parametrize("address", ["10.0.2.20", "192.168.105.172", "172.16.5.4", "127.0.0.1", "169.254.1.1",
                                     "100.64.0.1", "fd00::1", "fe80::1", "::1", "0.0.0.0"])
def test_private_addresses_are_never_gcp(address: str) -> None:
    """Whatever a ranges file lists: RFC 1918, RFC 4193, loopback, link-local, RFC 6598 are no cloud."""
    gcp = load_gcp_ranges(json.dumps({"prefixes": [
        {"ipv4Prefix": "0.0.0.0/0", "scope": "europe-west3"}, {"ipv6Prefix": "::/0", "scope": "europe-west3"}]}))
    assert not gcp.contains(address) and not default_gcp_ranges().contains(address)
    # and RTP to such a peer is not "working to the cloud" (no site: nothing names it)
    a = analysis(rtp_streams=(stream(OSBIZ, 20000, address, 30000), stream(address, 30000, OSBIZ, 20000)))
    for v in check_firewall(endpoints_from_site(None), a, (), gcp):
        if v.flow.startswith("rtp-"):
            assert v.verdict is Verdict.NOT_OBSERVED and "not the cloud" in v.notes[0] and address in v.notes[0]


def test_built_in_ranges_hold_the_documented_cloud_endpoints() -> None:
    """The shipped europe-west3 copy (Google's cloud.json of 2022-08-21) covers the connector and
    STUN/TURN addresses the vendor documents, and none of another region."""
    gcp = default_gcp_ranges()
    assert gcp.scope == "europe-west3" and gcp.created == "2022-08-21" and gcp.sync_token == "1661101279235"
    assert gcp.contains("35.246.178.13") and gcp.contains("34.159.228.55")
    assert not gcp.contains("34.117.105.255")  # the REST API's address is Google's global scope
    assert not gcp.contains("34.89.1.20")  # europe-west2


def test_the_sites_named_endpoints_are_the_cloud_for_that_site() -> None:
    """A lab on loopback names its own connector: its RTP is with the cloud for that site."""
    s = site(system__public_ip="127.0.0.2", system__private_ip=None, endpoints__connector__host="127.0.0.1")
    a = analysis(rtp_streams=(stream("127.0.0.2", 20000, "127.0.0.1", 30000),
                              stream("127.0.0.1", 30000, "127.0.0.2", 20000)))
    v = {x.flow: x for x in check_firewall(endpoints_from_site(s), a)}
    assert v["rtp-egress"].verdict is Verdict.WORKING and v["rtp-ingress"].verdict is Verdict.WORKING
    # without the site nothing vouches for 127.0.0.1
    v = {x.flow: x for x in check_firewall(endpoints_from_site(None), a)}
    assert v["rtp-egress"].verdict is Verdict.NOT_OBSERVED


@pytest.mark.parametrize(("text", "where"), [
    ("{", "not JSON"),
    ("[]", "prefixes"),
    ('{"prefixes": [1]}', "prefixes[0]"),
    ('{"prefixes": [{"scope": "europe-west3"}]}', "prefixes[0]"),
    ('{"prefixes": [{"scope": "europe-west3", "ipv4Prefix": "300.1.1.0/24"}]}', "prefixes[0]"),
    ('{"prefixes": [{"scope": "us-east1", "ipv4Prefix": "1.2.3.0/24"}]}', "no prefixes with scope"),
])
def test_gcp_ranges_errors_name_the_place(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_gcp_ranges(text, source="my.json")
    assert where in str(exc.value) and "my.json" in str(exc.value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["prefixes", "scope", "ipv4Prefix", "ipv6Prefix", "syncToken", "x"]), inner, max_size=4),
    max_leaves=20).map(json.dumps)))
def test_gcp_loader_parses_or_raises_config_error(text: str) -> None:
    try:
        gcp = load_gcp_ranges(text)
    except ConfigError:
        return
    assert gcp.networks


def test_endpoints_from_a_partial_site() -> None:
    data = site_dict()
    data["system"].pop("private_ip")
    data["endpoints"] = {"connector": {"port": 5061}}  # the other endpoints: the defaults
    ep = endpoints_from_site(Site.model_validate(data))
    assert ep.osbiz == ("203.0.113.10",) and ep.connector == ("35.246.178.13", 5061)
    assert ep.stun == ("34.159.228.55", 3478)
    s = dataclasses.replace(Endpoints(), osbiz=("1.2.3.4",))
    assert s.is_osbiz("1.2.3.4") and not s.is_osbiz("1.2.3.5")
