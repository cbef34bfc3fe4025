"""Each evidence rule fires on a crafted AnalysisResult / probe result and stays silent on a healthy one."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from diag_builders import (
    CONNECTOR,
    CPORT,
    MEDIA_PEER,
    NOW,
    OSBIZ,
    T0,
    analysis,
    call,
    reg_failing,
    reg_ok,
    sip,
    site,
    site_dict,
    stream,
    tls_ok,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.analysis import FlowInfo, RegistrationState, SdpMedia, StreamInterval, TlsFlowInfo
from core.diagnosis import Diagnosis, DiagnosisInputs, DiagnosisOptions, diagnose
from core.findings import CATALOGUE, sort_findings
from core.probes import ProbeResult
from core.site import Site
from core.snapshot import ItspState


def run(site_=None, analysis_=None, probes=(), token=None, now=NOW, **opts) -> Diagnosis:
    return diagnose(DiagnosisInputs(site=site_, analysis=analysis_, probes=tuple(probes), jwt_token_text=token,
                                    now=now, options=DiagnosisOptions(**opts)))


def ids(d: Diagnosis) -> set[str]:
    return {f.id for f in d.findings}


def blocked_analysis():
    """The OSBiz sends SYNs to the connector; nothing comes back; no SIP could be sent."""
    return analysis(
        registrations=(), sip_messages=(), calls=(), rtp_streams=(),
        tls_flows=(dataclasses.replace(tls_ok(), syn_answered=False, handshake="not-seen", bytes_server=0),),
        flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 7, 420, T0, T0 + 63, syn=7, syn_ack=0, first_frame=3),),
    )


# ----------------------------------------------------------------------------- healthy


def test_healthy_trunk_has_no_findings_and_is_registered() -> None:
    d = run(site(), analysis())
    assert d.findings == ()
    assert d.itsp.state is ItspState.REGISTERED
    assert d.itsp.since == pytest.approx(T0 + 0.05)
    assert d.itsp.expiry_ts == pytest.approx(T0 + 0.05 + 300 + 300)
    assert all(v.ok for v in d.firewall)


def test_no_input_at_all_is_unknown_without_findings() -> None:
    d = run(None, None)
    assert d.itsp.state is ItspState.UNKNOWN and d.findings == ()
    assert {v.verdict.value for v in d.firewall} == {"not-observed"}


# ----------------------------------------------------------------------------- registration / firewall


def test_syn_unanswered_is_not_registered_firewall_with_packet_evidence() -> None:
    d = run(site(), blocked_analysis())
    assert ids(d) == {"itsp.not-registered.firewall"}
    assert d.itsp.state is ItspState.NOT_REGISTERED
    assert "SYN" in d.itsp.reason and d.itsp.since == T0 - 1
    f = d.findings[0]
    assert any(3 in e.packets for e in f.evidence), f.evidence
    assert f.trace_profiles == ("Basic", "SIP_Interconnection_Subscriber_ITSP", "SIP_Registration")


def test_fault_beginning_after_a_registration_expires() -> None:
    # Registered at T0 for 60 s; the connection worked until T0+50; from T0+100 connects time out.
    a = analysis(registrations=(reg_ok(refreshes=1, granted=60),), flows=(),
                 tls_flows=(dataclasses.replace(tls_ok(), last_ts=T0 + 50),))
    fail = ProbeResult("sip_options_tls", f"{CONNECTOR}:{CPORT}", T0 + 100, False,
                       "TCP connect to x: timed out after 5 s (SYN unanswered)", 5.0)
    d = run(site(), a, probes=[fail], now=datetime.fromtimestamp(T0 + 120, UTC))
    assert d.itsp.state is ItspState.NOT_REGISTERED and "timed out" in d.itsp.reason
    assert ids(d) == {"itsp.not-registered.firewall"}
    # Still within the granted expiry: registered, nothing to report yet.
    assert run(site(), a, probes=[fail], now=datetime.fromtimestamp(T0 + 59, UTC)).findings == ()


def test_syns_beyond_the_connections_that_came_up() -> None:
    # One connection worked, the binding expired, then 8 more SYNs got no answer (aggregated flow).
    a = analysis(registrations=(reg_ok(refreshes=1, granted=60),),
                 flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 60, 9000, T0, T0 + 200, syn=9, first_frame=1),),
                 tls_flows=(tls_ok(),))
    d = run(site(), a, now=datetime.fromtimestamp(T0 + 300, UTC))
    assert ids(d) == {"itsp.not-registered.firewall"}
    assert "9 SYN but only 1 connection(s) came up; 8 SYN unanswered" in d.findings[0].evidence[1].text
    # Two retransmitted SYNs are ordinary loss.
    few = dataclasses.replace(a, flows=(dataclasses.replace(a.flows[0], syn=3),))
    assert run(site(), few, now=datetime.fromtimestamp(T0 + 300, UTC)).findings == ()


def test_icmp_unreachable_and_tls_failure_count_as_blocked() -> None:
    icmp = analysis(registrations=(), tls_flows=(), sip_messages=(),
                    flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 2, 120, T0, T0 + 3, syn=2, icmp_unreachable=2,
                                    first_frame=9),))
    d = run(site(), icmp)
    assert ids(d) == {"itsp.not-registered.firewall"}
    assert "ICMP" in d.itsp.reason
    tls_fail = analysis(registrations=(), sip_messages=(), flows=(),
                        tls_flows=(TlsFlowInfo(OSBIZ, 50001, CONNECTOR, CPORT, T0, T0 + 1, 4, True, "failed", None,
                                               None, ("handshake_failure",), "server"),))
    d = run(site(), tls_fail)
    assert ids(d) == {"itsp.not-registered.firewall"}
    assert "TLS handshake failure" in d.itsp.reason


def test_register_unanswered_is_firewall() -> None:
    d = run(site(), analysis(registrations=(reg_failing([None, None, None]),)))
    assert ids(d) == {"itsp.not-registered.firewall"}
    assert "unanswered" in d.itsp.reason


def test_a_register_still_within_timer_f_is_not_unanswered() -> None:
    r = reg_failing([None], start=T0 + 590)  # sent 10 s before ``now``
    d = run(site(), analysis(registrations=(r,)))
    assert d.itsp.state is ItspState.NOT_REGISTERED and d.findings == ()
    d = run(site(), analysis(registrations=(r,)), now=datetime.fromtimestamp(T0 + 640, UTC))
    assert ids(d) == {"itsp.not-registered.firewall"}
    assert d.findings[0].subject == f"{CONNECTOR}:{CPORT}"


def test_probe_failing_at_connect_without_capture() -> None:
    p = ProbeResult("sip_options_tls", f"{CONNECTOR}:{CPORT}", T0 + 5, False, "TCP connect timed out after 5.0 s",
                    5.0, transcript=("connect 35.246.178.13:65061 …", "timeout"))
    d = run(site(), None, probes=[p])
    assert d.itsp.state is ItspState.NOT_REGISTERED
    assert ids(d) == {"itsp.not-registered.firewall"}
    assert any(e.source == "probe:sip_options_tls" for e in d.findings[0].evidence)
    ok = dataclasses.replace(p, success=True, reason="")
    d = run(site(), None, probes=[ok])
    assert d.itsp.state is ItspState.UNKNOWN and d.findings == ()


def test_register_403_is_auth_and_api_key() -> None:
    d = run(site(), analysis(registrations=(reg_failing([401, 403]),)))
    assert ids(d) == {"itsp.not-registered.auth", "rest-api.api-key-invalid"}
    auth = next(f for f in d.findings if f.id == "itsp.not-registered.auth")
    assert any(e.packets == (11,) for e in auth.evidence)
    key = next(f for f in d.findings if f.id == "rest-api.api-key-invalid")
    assert any(e.config_path == "connectivity.api_key" for e in key.evidence)


def test_credentials_refused_as_the_sip_analyser_marks_it() -> None:
    # collectors.sip marks a 401 to a REGISTER that carried credentials as state "failed".
    r = reg_failing([401, 401])
    tl = (r.timeline[0], dataclasses.replace(r.timeline[1], state="failed"))
    d = run(site(), analysis(registrations=(dataclasses.replace(r, timeline=tl),)))
    assert ids(d) == {"itsp.not-registered.auth"}
    assert "credentials rejected" in d.itsp.reason


def test_401_loop_is_auth_but_a_single_challenge_is_normal() -> None:
    assert ids(run(site(), analysis(registrations=(reg_failing([401, 401, 401]),)))) == {"itsp.not-registered.auth"}
    d = run(site(), analysis(registrations=(reg_failing([401]),)))
    assert "itsp.not-registered.auth" not in ids(d)
    assert d.itsp.state is ItspState.NOT_REGISTERED


def test_challenge_loop_threshold_is_an_option() -> None:
    a = analysis(registrations=(reg_failing([401, 401]),))
    assert "itsp.not-registered.auth" in ids(run(site(), a))
    assert "itsp.not-registered.auth" not in ids(run(site(), a, auth_challenge_loop=3))


# ----------------------------------------------------------------------------- ITSP status transitions


def test_itsp_registered_until_granted_expiry_then_not_registered() -> None:
    a = analysis(registrations=(reg_ok(refreshes=1, granted=300),))  # 2xx at T0+0.05, granted 300 s
    at = lambda s: datetime.fromtimestamp(T0 + s, UTC)  # noqa: E731
    assert run(site(), a, now=at(299)).itsp.state is ItspState.REGISTERED
    # The default grace (30 s) after the granted expiry keeps a late or late-read refresh alive.
    assert run(site(), a, now=at(329)).itsp.state is ItspState.REGISTERED
    later = run(site(), a, now=at(331)).itsp
    assert later.state is ItspState.NOT_REGISTERED
    assert later.since == pytest.approx(T0 + 300.05)
    assert "expired" in later.reason
    before = run(site(), a, now=at(-10)).itsp
    assert before.state is ItspState.NOT_REGISTERED  # only the 401 challenge happened before
    assert run(site(), a, now=at(-100)).itsp.state is ItspState.NOT_REGISTERED


def test_failed_refresh_keeps_the_binding_until_expiry() -> None:
    r = reg_ok(refreshes=1, granted=300)
    tl = (*r.timeline, dataclasses.replace(r.timeline[-1], ts=T0 + 150, frame=99, state="failed", code=503))
    a = analysis(registrations=(dataclasses.replace(r, timeline=tl),))
    st = run(site(), a, now=datetime.fromtimestamp(T0 + 200, UTC)).itsp
    assert st.state is ItspState.REGISTERED
    st = run(site(), a, now=datetime.fromtimestamp(T0 + 400, UTC)).itsp
    assert st.state is ItspState.NOT_REGISTERED and "503" in st.reason


def test_re_registration_after_a_gap_restarts_since() -> None:
    r = reg_ok(refreshes=1, granted=60)
    late = dataclasses.replace(r.timeline[-1], ts=T0 + 500, frame=80)
    a = analysis(registrations=(dataclasses.replace(r, granted_expiry_s=60, timeline=(*r.timeline, late)),))
    st = run(site(), a, now=datetime.fromtimestamp(T0 + 520, UTC)).itsp
    assert st.state is ItspState.REGISTERED and st.since == T0 + 500


def test_window_trimmed_timeline_keeps_the_earlier_binding() -> None:
    # The service's window keeps the refresh's 401 but not the 2xx before it (collectors.runtime.window).
    r = reg_ok(refreshes=1, granted=300)
    trimmed = dataclasses.replace(r, timeline=(RegistrationState(T0 + 150, 40, "trying", None),
                                               RegistrationState(T0 + 150.01, 41, "challenged", 401)))
    st = run(site(), analysis(registrations=(trimmed,)), now=datetime.fromtimestamp(T0 + 160, UTC)).itsp
    assert st.state is ItspState.REGISTERED and st.expiry_ts == pytest.approx(T0 + 300.05)
    st = run(site(), analysis(registrations=(trimmed,)), now=datetime.fromtimestamp(T0 + 331, UTC)).itsp
    assert st.state is ItspState.NOT_REGISTERED and "expired" in st.reason


def test_deregistration_is_not_registered_without_a_finding() -> None:
    r = reg_ok(refreshes=1)
    tl = (*r.timeline, RegistrationState(T0 + 50, 30, "challenged", 401), RegistrationState(T0 + 50.1, 32, "unregistered", 200))
    d = run(site(), analysis(registrations=(dataclasses.replace(r, timeline=tl),)))
    assert d.itsp.state is ItspState.NOT_REGISTERED and d.itsp.since == T0 + 50.1
    assert d.itsp.reason.startswith("deregistered") and d.findings == ()


def test_disabled_connectivity() -> None:
    d = run(site(connectivity__enabled=False), analysis())
    assert d.itsp.state is ItspState.DISABLED
    assert d.itsp.to_dict()["label"] == "Disabled"


# ----------------------------------------------------------------------------- REST / JWT


def _rest_probe(code: int, body: str) -> ProbeResult:
    return ProbeResult("https_rest", "34.117.105.255:443", T0, False, f"HTTP {code}", 0.2,
                       transcript=("GET /api/v1/status", f"HTTP/1.1 {code} — {body}"), details={"status_code": code})


def test_rest_probe_401_is_api_key_invalid() -> None:
    d = run(site(), analysis(), probes=[_rest_probe(401, "invalid API key")])
    assert ids(d) == {"rest-api.api-key-invalid"}
    assert d.findings[0].evidence[0].source == "probe:https_rest"


@pytest.mark.parametrize(("body", "fid"), [
    ("JWT expired", "rest-api.jwt-expired"),
    ("JWT signature invalid", "rest-api.jwt-invalid"),
    ("JWT missing", "rest-api.jwt-missing"),
])
def test_rest_probe_jwt_rejections(body: str, fid: str) -> None:
    d = run(site(tenant__flavour="unify-video"), analysis(), probes=[_rest_probe(401, body)])
    assert fid in ids(d) and "rest-api.api-key-invalid" not in ids(d)


def _token(exp: datetime | None) -> str:
    claims = {"iss": "lab", "sub": "client"} | ({"exp": int(exp.timestamp())} if exp else {})
    return pyjwt.encode(claims, "k" * 32, algorithm="HS256")


@pytest.mark.parametrize(("delta", "fid"), [
    (timedelta(days=-1), "rest-api.jwt-expired"),
    (timedelta(days=10), "jwt.expiring"),
    (timedelta(days=90), None),
])
def test_jwt_token_states(delta: timedelta, fid: str | None) -> None:
    token = _token(NOW + delta)
    d = run(site(tenant__flavour="unify-video"), analysis(), token=token)
    assert ids(d) == ({fid} if fid else set())
    dumped = json.dumps(d.to_dict())
    assert token not in dumped and token.split(".")[1] not in dumped


def test_jwt_garbage_and_empty() -> None:
    assert ids(run(site(tenant__flavour="unify-video"), analysis(), token="not.a.jwt")) == {"rest-api.jwt-invalid"}
    assert ids(run(site(tenant__flavour="unify-video"), analysis(), token="  \n")) == {"rest-api.jwt-missing", "provisioning.jwt-missing"}
    assert ids(run(site(), analysis(), token="")) == set()  # OpenScape flavour needs no JWT


def test_provisioning_jwt_missing_on_unify_video_without_token() -> None:
    d = run(site(tenant__flavour="unify-video"), analysis())
    assert "provisioning.jwt-missing" in ids(d)
    f = next(f for f in d.findings if f.id == "provisioning.jwt-missing")
    assert f.evidence[0].config_path == "tenant.jwt"
    assert "provisioning.jwt-missing" not in ids(run(site(tenant__flavour="unify-video"), analysis(), token=_token(None)))


# ----------------------------------------------------------------------------- calls


def _busy_analysis(code: int = 486, q850: int | None = None):
    c1 = call("c1", start=T0 + 100, duration=60, streams=())
    c2 = call("c2", start=T0 + 110, duration=60, streams=())
    rejected = call("c3", answered=False, code=code, reason="Busy Here", start=T0 + 120, q850=q850, frame=400)
    return analysis(calls=(c1, c2, rejected), rtp_streams=())


def test_trunk_lines_busy_when_calls_fill_the_lines() -> None:
    d = run(site(), _busy_analysis())
    assert ids(d) == {"calls.trunk-lines-busy"}
    ev = d.findings[0].evidence
    assert ev[0].config_path == "connectivity.simultaneous_calls"
    assert ev[1].call_id == "c3" and 400 in ev[1].packets and "2 call(s) active" in ev[1].text


def test_ringing_calls_hold_lines_too() -> None:
    # A burst: two calls ringing (not yet answered) when the third INVITE is rejected.
    c1 = dataclasses.replace(call("c1", start=T0 + 100, streams=()), answer_ts=T0 + 104)
    c2 = dataclasses.replace(call("c2", start=T0 + 100.2, streams=()), answer_ts=T0 + 104)
    rejected = call("c3", answered=False, code=486, reason="Busy Here", start=T0 + 100.4)
    assert ids(run(site(), analysis(calls=(c1, c2, rejected), rtp_streams=()))) == {"calls.trunk-lines-busy"}


def test_trunk_lines_busy_silent_below_the_limit_and_without_rejections() -> None:
    assert ids(run(site(connectivity__simultaneous_calls=8), _busy_analysis())) == set()
    a = _busy_analysis()
    assert ids(run(site(), dataclasses.replace(a, calls=a.calls[:2]))) == set()
    # Without a site only Q.850 cause 34 says the lines ran out.
    assert ids(run(None, _busy_analysis(503))) == set()
    assert "calls.trunk-lines-busy" in ids(run(None, _busy_analysis(503, q850=34)))


@pytest.mark.parametrize(("reason", "header", "fid"), [
    ("Forbidden - no license", None, "calls.license-missing"),
    ("Forbidden", "Q.850;cause=21;text=\"not a trusted external user\"", "calls.not-trusted-external-user"),
    ("Forbidden - route flag off", None, "calls.route-flag-off"),
    ("Not Found", "Q.850;cause=1;text=\"call number does not match numbering plan\"", "calls.numbering-mismatch"),
])
def test_rejected_calls_by_reason(reason: str, header: str | None, fid: str) -> None:
    rej = call("r1", answered=False, code=403 if "Forbidden" in reason else 404, reason=reason,
               reason_header=header, frame=500)
    d = run(None, analysis(calls=(rej,), rtp_streams=()))
    assert ids(d) == {fid}
    assert d.findings[0].evidence[0].call_id == "r1"


@pytest.mark.parametrize("header", ['Q.850;cause=3;text="No route to destination"', 'Q.850;cause=1;text="Unallocated number"'])
def test_ordinary_rejections_are_not_faq_causes(header: str) -> None:
    rej = call("r1", answered=False, code=404, reason="Not Found", reason_header=header)
    assert ids(run(None, analysis(calls=(rej,), rtp_streams=()))) == set()


def test_rejected_call_explained_by_the_site() -> None:
    d0 = site_dict()
    d0["users"][0]["licenses"] = ["ip-user"]
    s = Site.model_validate(d0)
    rej = call("r2", answered=False, code=403, reason="Forbidden", caller="+49897007100")
    d = run(s, analysis(calls=(rej,), rtp_streams=()))
    assert ids(d) == {"calls.license-missing"}
    # The site rule's finding (subject: the user) gets the call as further evidence.
    f = d.findings[0]
    assert f.subject is not None and "100" in f.subject
    assert any(e.config_path == "users[0].licenses" for e in f.evidence)
    assert any(e.call_id == "r2" for e in f.evidence)
    s = site(route__trusted_external_users=False)
    assert ids(run(s, analysis(calls=(rej,), rtp_streams=()))) == {"calls.route-flag-off"}
    # A rejection the site does not explain is not attributed to a FAQ cause.
    assert ids(run(site(), analysis(calls=(rej,), rtp_streams=()))) == set()


# ----------------------------------------------------------------------------- clone


def _with_register_msgs(msgs):
    """The healthy analysis with ``msgs`` as the registration's REGISTER traffic."""
    reg = dataclasses.replace(reg_ok(), frames=tuple(m.frame for m in msgs))
    return analysis(sip_messages=tuple(msgs), registrations=(reg,))


def test_alternating_register_sources_are_a_clone() -> None:
    msgs = [
        sip(10 + i, T0 + 30 * i, OSBIZ if i % 2 == 0 else "198.51.100.7", 50000 + i % 2, "REGISTER",
            call_id="reg-A" if i % 2 == 0 else "reg-B")
        for i in range(6)
    ]
    d = run(site(), _with_register_msgs(msgs))
    assert ids(d) == {"clone.duplicate-connector"}
    assert d.findings[0].evidence[0].packets[:2] == (11, 12)


def test_two_addresses_both_accepted_are_a_clone() -> None:
    a, b = OSBIZ, "198.51.100.7"
    msgs = [sip(10, T0, a, 50000, "REGISTER", call_id="reg-A"),
            sip(11, T0 + 0.1, CONNECTOR, CPORT, None, 200, call_id="reg-A"),
            sip(12, T0 + 5, b, 41000, "REGISTER", call_id="reg-B"),
            sip(13, T0 + 5.1, CONNECTOR, CPORT, None, 200, call_id="reg-B")]
    d = run(site(), _with_register_msgs(msgs))
    assert ids(d) == {"clone.duplicate-connector"}
    assert d.findings[0].evidence[0].packets == (11, 13)


def test_one_reconnect_or_restart_is_not_a_clone() -> None:
    msgs = [sip(10 + i, T0 + 30 * i, OSBIZ, 50000 if i < 3 else 50002, "REGISTER",
                call_id="reg-A" if i < 3 else "reg-A2") for i in range(6)]
    assert ids(run(site(), _with_register_msgs(msgs))) == set()
    # A restart from the same address with a new Call-ID, both accepted: still one system.
    restart = [sip(10, T0, OSBIZ, 50000, "REGISTER", call_id="reg-A"),
               sip(11, T0 + 0.1, CONNECTOR, CPORT, None, 200, call_id="reg-A"),
               sip(12, T0 + 60, OSBIZ, 50004, "REGISTER", call_id="reg-A2"),
               sip(13, T0 + 60.1, CONNECTOR, CPORT, None, 200, call_id="reg-A2")]
    assert ids(run(site(), _with_register_msgs(restart))) == set()


def test_two_clients_registered_for_one_aor_is_a_clone() -> None:
    d = run(site(), analysis(registrations=(reg_ok(), reg_ok(client="198.51.100.7:41000", frame0=50))))
    assert ids(d) == {"clone.duplicate-connector"}
    assert d.itsp.state is ItspState.REGISTERED


# ----------------------------------------------------------------------------- media


def test_one_way_audio_on_a_call() -> None:
    a = analysis(rtp_streams=(stream(OSBIZ, 20000, MEDIA_PEER, 30000),), calls=(call(streams=(0,)),))
    d = run(site(), a)
    assert ids(d) == {"media.one-way-audio"}
    f = d.findings[0]
    assert f.subject == "call-1" and f.evidence[0].call_id == "call-1"
    assert next(v for v in d.firewall if v.flow == "rtp-ingress").verdict.value == "one-way"


def test_one_way_audio_is_judged_from_the_evidence_not_the_flag() -> None:
    """The rule and the analyser's flag are one judgement (``core.one_way``); a flag without the
    streams or SDP behind it is no evidence on its own."""
    a = analysis(calls=(dataclasses.replace(call(streams=()), one_way_audio=True),), rtp_streams=())
    assert ids(run(site(), a)) == set()
    # Flagged, but the stream back exists on the same ports at the same time: two-way audio.
    assert ids(run(site(), analysis(calls=(dataclasses.replace(call(), one_way_audio=True),)))) == set()
    short = analysis(rtp_streams=(stream(OSBIZ, 20000, MEDIA_PEER, 30000, packets=50),),
                     calls=(call(streams=(0,), duration=1.0),))
    assert ids(run(site(), short)) == set()


def test_one_way_audio_by_the_sdp_sides() -> None:
    """Both sides announced audio; RTP reached the far side's announced port only."""
    sdp = (SdpMedia(OSBIZ, OSBIZ, 20000, "audio", "sendrecv", T0 + 99),
           SdpMedia(CONNECTOR, MEDIA_PEER, 30000, "audio", "sendrecv", T0 + 100))
    out = stream(OSBIZ, 20000, MEDIA_PEER, 30000)
    astray = stream(MEDIA_PEER, 30000, OSBIZ, 20010, frame=201)  # back, but to a port nobody announced
    a = analysis(rtp_streams=(out, astray), calls=(dataclasses.replace(call(streams=(0, 1)), media=sdp),))
    d = run(site(), a)
    assert ids(d) == {"media.one-way-audio"}
    assert f"nothing reached {OSBIZ}" in d.findings[0].evidence[0].text
    # Symmetric RTP (RFC 4961): back to where the OSBiz sends from counts, though not announced.
    latched = dataclasses.replace(sdp[0], addr="10.0.0.5")
    b = analysis(rtp_streams=(out, stream(MEDIA_PEER, 30000, OSBIZ, 20000, frame=201)),
                 calls=(dataclasses.replace(call(), media=(latched, sdp[1])),))
    assert ids(run(site(), b)) == set()
    # On hold: one side is silent on purpose.
    held = (sdp[0], dataclasses.replace(sdp[1], direction="sendonly"))
    assert ids(run(site(), analysis(rtp_streams=(out, astray),
                                    calls=(dataclasses.replace(call(), media=held),)))) == set()


def test_stream_back_linked_to_another_call_is_not_one_way() -> None:
    # Port reuse: a later call's SDP names the same port, and the returning stream is linked to it.
    back = dataclasses.replace(stream(MEDIA_PEER, 30000, OSBIZ, 20000), call_id="call-2")
    failed = call("call-2", answered=False, code=404, reason="Not Found", start=T0 + 105)
    a = analysis(rtp_streams=(stream(OSBIZ, 20000, MEDIA_PEER, 30000), back),
                 calls=(call(streams=(0,)), dataclasses.replace(failed, streams=(1,))))
    assert ids(run(site(), a)) == set()


def test_one_side_falling_silent_mid_call() -> None:
    out = stream(OSBIZ, 20000, MEDIA_PEER, 30000, packets=1000)  # 20 s
    back = stream(MEDIA_PEER, 30000, OSBIZ, 20000, packets=400, frame=201)  # stops after 8 s
    a = analysis(rtp_streams=(out, back), calls=(call(duration=20.0),))
    d = run(site(), a)
    assert ids(d) == {"media.one-way-audio"}
    assert "stopped 12.0 s before" in d.findings[0].evidence[0].text
    assert d.findings[0].evidence[1].packets == (back.last_frame,)
    assert ids(run(site(), a, one_way_silence_s=15.0)) == set()
    # The far side sending on after our BYE (it never arrived) is not one-way audio of the call.
    ended = analysis(rtp_streams=(out, back), calls=(dataclasses.replace(call(duration=20.0), end_ts=back.last_ts),))
    assert ids(run(site(), ended)) == set()


def test_streams_of_an_earlier_call_linked_by_port_reuse_are_ignored() -> None:
    # Stream 2 ended long before this call began (an earlier call on the same port).
    old = stream(OSBIZ, 20002, MEDIA_PEER, 30002, packets=60, first=T0 + 10, frame=50)
    c = dataclasses.replace(call(duration=20.0), streams=(0, 1, 2))
    a = analysis(rtp_streams=(stream(OSBIZ, 20000, MEDIA_PEER, 30000, packets=1000),
                              stream(MEDIA_PEER, 30000, OSBIZ, 20000, packets=1000, frame=201), old),
                 calls=(c,))
    assert ids(run(site(), a)) == set()


def test_one_way_streams_without_call_context() -> None:
    a = analysis(calls=(), rtp_streams=(stream(OSBIZ, 20000, MEDIA_PEER, 30000, call_id=None),))
    d = run(site(), a)
    assert ids(d) == {"media.one-way-audio"}
    assert d.findings[0].subject == "streams without call"


@pytest.mark.parametrize(("kw", "word"), [
    ({"loss_pct": 8.0, "mos": 3.9}, "loss 8.0 %"),
    ({"jitter": 45.0}, "mean jitter 45.0 ms"),
    ({"mos": 3.1}, "MOS 3.10"),
])
def test_poor_quality(kw: dict, word: str) -> None:
    a = analysis(rtp_streams=(stream(MEDIA_PEER, 30000, OSBIZ, 20000, **kw), stream(OSBIZ, 20000, MEDIA_PEER, 30000)))
    d = run(site(), a)
    assert ids(d) == {"media.poor-quality"}
    assert word in d.findings[0].evidence[0].text


def test_poor_quality_in_one_10s_interval_of_a_long_stream() -> None:
    good = StreamInterval(T0 + 100, 500, 500, 0, 0.5, 1.0, 4.4)
    burst = StreamInterval(T0 + 110, 450, 500, 50, 0.5, 1.0, 3.0)  # 10 % lost in these 10 s
    tail = StreamInterval(T0 + 120, 20, 30, 10, 0.5, 1.0, 2.0)  # too short to judge
    long = dataclasses.replace(stream(MEDIA_PEER, 30000, OSBIZ, 20000, packets=2950, loss_pct=1.9),
                               intervals=(good, burst, good, tail))
    d = run(site(), analysis(rtp_streams=(long, stream(OSBIZ, 20000, MEDIA_PEER, 30000, packets=3000))))
    assert ids(d) == {"media.poor-quality"}
    assert "10-s interval from 2026-11-20T10:01:50Z: loss 10.0 % > 3 %, MOS 3.00 < 3.6" in d.findings[0].evidence[0].text
    quiet = dataclasses.replace(long, intervals=(good, good, tail))
    assert ids(run(site(), analysis(rtp_streams=(quiet, stream(OSBIZ, 20000, MEDIA_PEER, 30000, packets=3000))))) == set()


def test_poor_quality_thresholds_and_short_streams() -> None:
    bad = analysis(rtp_streams=(stream(MEDIA_PEER, 30000, OSBIZ, 20000, loss_pct=4.0),
                                stream(OSBIZ, 20000, MEDIA_PEER, 30000)))
    assert ids(run(site(), bad)) == {"media.poor-quality"}
    assert ids(run(site(), bad, max_loss_pct=5.0)) == set()
    tiny = analysis(rtp_streams=(stream(MEDIA_PEER, 30000, OSBIZ, 20000, packets=20, loss_pct=30.0),
                                 stream(OSBIZ, 20000, MEDIA_PEER, 30000, packets=20)))
    assert ids(run(site(), tiny)) == set()


# ----------------------------------------------------------------------------- security


def test_inbound_443_answered_is_a_security_finding() -> None:
    a = analysis(flows=(*analysis().flows,
                        FlowInfo("tcp", "198.51.100.99", OSBIZ, 443, 4, 240, T0, T0 + 1, syn=1, syn_ack=1, first_frame=77)))
    d = run(site(), a)
    assert ids(d) == {"security.port-443-open"}
    assert any(77 in e.packets for e in d.findings[0].evidence)
    v = next(v for v in d.firewall if v.flow == "inbound-443")
    assert v.must_be_closed and not v.ok and v.verdict.value == "working"


def test_inbound_443_unanswered_is_fine() -> None:
    a = analysis(flows=(*analysis().flows,
                        FlowInfo("tcp", "198.51.100.99", OSBIZ, 443, 3, 180, T0, T0 + 7, syn=3, first_frame=77)))
    d = run(site(), a)
    assert ids(d) == set()
    v = next(v for v in d.firewall if v.flow == "inbound-443")
    assert v.ok and v.verdict.value == "blocked"


def test_inbound_https_on_another_port_by_option() -> None:
    # The pipeline counts the server's SYN-ACK in the reverse flow; the client's ACKs show the answer.
    a = analysis(flows=(*analysis().flows,
                        FlowInfo("tcp", CONNECTOR, OSBIZ, 8443, 9, 2000, T0, T0 + 1, syn=1, first_frame=88)))
    assert ids(run(site(), a)) == set()
    d = run(site(), a, osbiz_https_ports=(8443,))
    assert ids(d) == {"security.port-443-open"}
    assert next(v for v in d.firewall if v.flow == "inbound-443").destination.endswith(":8443")


def test_tcp_connect_probe_to_osbiz_443_succeeding() -> None:
    p = ProbeResult("tcp_connect", "203.0.113.10:443", T0, True, "", 0.01)
    assert ids(run(site(), analysis(), probes=[p])) == {"security.port-443-open"}


# ----------------------------------------------------------------------------- engine


def test_findings_are_sorted_and_carry_catalogue_text() -> None:
    a = dataclasses.replace(blocked_analysis(), rtp_streams=(stream(MEDIA_PEER, 30000, OSBIZ, 20000, loss_pct=9.0),
                                                             stream(OSBIZ, 20000, MEDIA_PEER, 30000)))
    d = run(site(), a)
    assert list(d.findings) == sort_findings(list(d.findings))
    assert [f.id for f in d.findings] == ["itsp.not-registered.firewall", "media.poor-quality"]
    for f in d.findings:
        assert f.remedy == CATALOGUE[f.id].remedy and f.evidence


def test_engine_needs_now_without_a_capture() -> None:
    with pytest.raises(ValueError):
        diagnose(DiagnosisInputs(site=site()))
    # With a capture, ``now`` defaults to the end of the capture.
    assert diagnose(DiagnosisInputs(site=site(), analysis=analysis())).itsp.state is ItspState.REGISTERED


# ----------------------------------------------------------------------------- robustness

_codes = st.sampled_from([None, 200, 401, 403, 407, 408, 486, 503, 404, 500])


@st.composite
def _hostile_analysis(draw: st.DrawFn):
    """Analyses with arbitrary (even inconsistent) registrations, calls and streams."""
    n = draw(st.integers(0, 4))
    regs = tuple(reg_failing(draw(st.lists(_codes, min_size=1, max_size=5)), start=T0 + 10 * i) for i in range(n))
    if draw(st.booleans()):
        regs += (reg_ok(refreshes=draw(st.integers(1, 4)), granted=draw(st.integers(1, 900))),)
    calls = tuple(
        call(f"c{i}", answered=draw(st.booleans()), code=draw(st.sampled_from([200, 403, 404, 486, 503])),
             start=T0 + draw(st.floats(0, 500)), duration=draw(st.floats(0, 30)),
             streams=tuple(draw(st.lists(st.integers(-2, 5), max_size=3))), q850=draw(st.sampled_from([None, 34, 21])))
        for i in range(draw(st.integers(0, 5)))
    )
    streams = tuple(
        stream(draw(st.sampled_from([OSBIZ, MEDIA_PEER, "127.0.0.1"])), draw(st.integers(1, 65535)),
               draw(st.sampled_from([OSBIZ, MEDIA_PEER, "127.0.0.1"])), draw(st.integers(1, 65535)),
               packets=draw(st.integers(0, 2000)), loss_pct=draw(st.floats(-5, 100)),
               jitter=draw(st.floats(0, 500)), mos=draw(st.sampled_from([None, 1.0, 3.0, 4.4])),
               call_id=draw(st.sampled_from([None, "c0", "c1"])))
        for _ in range(draw(st.integers(0, 5)))
    )
    flows = tuple(
        FlowInfo("tcp", draw(st.sampled_from([OSBIZ, CONNECTOR, "198.51.100.9"])),
                 draw(st.sampled_from([OSBIZ, CONNECTOR])), draw(st.sampled_from([443, CPORT, 3478])),
                 draw(st.integers(0, 50)), 100, T0, T0 + 1, syn=draw(st.integers(0, 5)),
                 syn_ack=draw(st.integers(0, 2)), rst=draw(st.integers(0, 2)), icmp_unreachable=draw(st.integers(0, 1)))
        for _ in range(draw(st.integers(0, 4)))
    )
    return analysis(registrations=regs, calls=calls, rtp_streams=streams, flows=flows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hostile_analysis(), st.floats(-1000, 5000))
def test_engine_never_crashes_and_stays_well_formed(a, offset: float) -> None:
    d = run(site(), a, now=datetime.fromtimestamp(T0 + offset, UTC))
    assert list(d.findings) == sort_findings(list(d.findings))
    assert all(f.id in CATALOGUE and f.evidence for f in d.findings)
    assert len(d.firewall) == 7
    json.dumps(d.to_dict())


def test_bindings_of_two_hosts_in_the_registrars_2xx_are_a_clone() -> None:
    """The registrar lists every binding: a clone shows in this system's own trace (RFC 3261 §10.3)."""
    two = dataclasses.replace(reg_ok(), bindings=(f"sip:osbiz@{OSBIZ}:50000;transport=tls",
                                                  "sip:osbiz@198.51.100.7:41000;transport=tls"))
    d = run(site(), analysis(registrations=(two,)))
    assert ids(d) == {"clone.duplicate-connector"}
    assert "198.51.100.7" in d.findings[0].evidence[0].text
    # Two bindings of one host (a reconnect before the old binding expired) are one system.
    same = dataclasses.replace(reg_ok(), bindings=(f"sip:osbiz@{OSBIZ}:50000", f"sip:osbiz@{OSBIZ}:50002"))
    assert ids(run(site(), analysis(registrations=(same,)))) == set()


def test_handed_in_jwt_is_checked_with_the_sites_verify_key() -> None:
    """A ``--jwt-file`` token signed with another key than the site's ``jwt_verify_key`` is
    invalid, exactly as the same token inline in the site file would be."""
    other = pyjwt.encode({"iss": "lab", "exp": int((NOW + timedelta(days=90)).timestamp())}, "x" * 32,
                         algorithm="HS256")
    keyed = site(tenant__flavour="unify-video", tenant__jwt_verify_key="k" * 32, tenant__jwt_algorithms=["HS256"])
    d = run(keyed, analysis(), token=other)
    assert ids(d) == {"rest-api.jwt-invalid"}
    assert d.jwt is not None and d.jwt.status.value == "Invalid token" and d.jwt.signature_checked
    inline = run(site(tenant__flavour="unify-video", tenant__jwt=other, tenant__jwt_verify_key="k" * 32,
                      tenant__jwt_algorithms=["HS256"]), analysis())
    assert ids(inline) == ids(d)
    good = run(keyed, analysis(), token=_token(NOW + timedelta(days=90)))
    assert ids(good) == set() and good.jwt is not None and good.jwt.status.value == "Active"


def test_diagnosis_reports_the_jwt_in_use() -> None:
    """The engine judges the token once; every face reads ``Diagnosis.jwt`` (never its own judgement)."""
    exp = NOW + timedelta(days=10)
    handed = run(site(tenant__flavour="unify-video"), analysis(), token=_token(exp))
    assert handed.jwt is not None and handed.jwt.status.value == "Expiring"
    assert handed.jwt.expires_at == datetime.fromtimestamp(int(exp.timestamp()), UTC)
    assert handed.to_dict()["jwt"]["days_left"] == 10
    from_site = run(site(tenant__flavour="unify-video", tenant__jwt=_token(NOW - timedelta(days=1))), analysis())
    assert from_site.jwt is not None and from_site.jwt.status.value == "Expired"
    assert run(site(), analysis()).jwt is None


# ----------------------------------------------------------------------------- whose trunk


def test_a_lan_registrar_is_never_the_unify_phone_trunk() -> None:
    """A LAN phone registered with a LAN registrar (no site): the ITSP status does not speak of
    it as "Unify Phone (Cloud)"; the registration is listed as another one, with its state."""
    lan = dataclasses.replace(reg_ok(client="192.168.105.172:5060"), registrar="192.168.105.105:5060",
                              aor="sip:201@192.168.105.105")
    d = run(None, analysis(registrations=(lan,)))
    assert d.itsp.state is ItspState.UNKNOWN
    assert d.itsp.reason == ("no registration to a Unify Phone connector seen; 1 other registration(s) "
                             "(sip:201@192.168.105.105 at 192.168.105.105:5060: registered)")
    assert [(o.registrar, o.state) for o in d.other_registrations] == [("192.168.105.105:5060", ItspState.REGISTERED)]
    assert d.to_dict()["other_registrations"][0]["state"] == "registered"
    # a failing LAN registration is no trunk finding either
    bad = dataclasses.replace(reg_failing([401, 403]), registrar="192.168.105.105:5060")
    assert not ids(run(None, analysis(registrations=(bad,)))) & {"itsp.not-registered.auth", "rest-api.api-key-invalid"}
    # named with --connector, it is the trunk
    named = run(None, analysis(registrations=(lan,)), connector=("192.168.105.105", 5060))
    assert named.itsp.state is ItspState.REGISTERED and named.other_registrations == ()


def test_without_a_site_a_registrar_on_65061_is_the_connector() -> None:
    elsewhere = dataclasses.replace(reg_ok(), registrar="198.51.100.20:65061")
    d = run(None, analysis(registrations=(elsewhere,)))
    assert d.itsp.state is ItspState.REGISTERED and d.other_registrations == ()
    # with a site, only the site's connector is
    d = run(site(), analysis(registrations=(elsewhere,)))
    assert d.itsp.state is ItspState.UNKNOWN and len(d.other_registrations) == 1
