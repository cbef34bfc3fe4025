from __future__ import annotations

from dataclasses import replace

from collectors.runtime.window import recent
from core.analysis import AnalysisResult, FlowInfo, RegistrationInfo, RegistrationState, TlsFlowInfo
from core.firewall import syns_without_connection
from tests.runtime.test_totals import _call, _msg, _result, _stream


def _reg(registered: bool, ts: float) -> RegistrationInfo:
    return RegistrationInfo("sip:osbiz@x", "2.2.2.2:5061", "1.1.1.1:5061", 2, 1, {"200": 1}, 200, 60, ts, ts + 60,
                            40.0, registered, 0, (RegistrationState(ts, 3, "registered", 200),), (3,))


def test_only_recent_evidence_is_kept_and_indexes_follow() -> None:
    old_call, new_call = _call("old", 10.0, 100.0), _call("new", 95.0, 100.0)
    streams = (_stream(1, 10, 14, 0, 1.0, 4.4), _stream(2, 95, 99, 0, 1.0, 4.4), _stream(3, 95, 99, 0, 1.0, 4.4))
    base: AnalysisResult = _result(
        calls=[replace(old_call, streams=(0,)), replace(new_call, streams=(1, 2))], streams=streams,
        messages=[_msg(10.0, "OPTIONS", None, 1, "OPTIONS"), _msg(96.0, None, 200, 2, "OPTIONS")])
    base = replace(base, registrations=(_reg(True, 20.0), _reg(False, 5.0)), first_ts=0.0, last_ts=100.0)
    out = recent(base, since=90.0)
    assert [c.call_id for c in out.calls] == ["new"]
    assert out.calls[0].streams == (0, 1) and [s.ssrc for s in out.rtp_streams] == [2, 3]
    assert out.sip_requests == {} and out.sip_responses == {"200": 1}
    # A registration that still holds stays (a state, not an event), with no timeline in the window.
    assert len(out.registrations) == 1 and out.registrations[0].timeline == ()
    assert out.first_ts == 90.0


def _conn(client_port: int, start: float) -> TlsFlowInfo:
    return TlsFlowInfo("127.0.0.2", client_port, "127.0.0.1", 5061, start, start + 0.05, client_port, True, "ok",
                       "TLSv1.3", None, (), None)


def test_a_flow_keeps_the_connections_it_counts() -> None:
    """Probes connect every 2 s: the aggregate flow counts all 6 SYNs of the analysed span, so all 6
    answered connections must stay with it, or 4 answered SYNs look unanswered in the window."""
    conns = tuple(_conn(40000 + i, 88.0 + 2 * i) for i in range(6))
    flow = FlowInfo("tcp", "127.0.0.2", "127.0.0.1", 5061, 36, 4000, 88.0, 98.05, syn=6, first_frame=1)
    other = _conn(41000, 80.0)  # a connection of no kept flow, over before the window: dropped
    other = replace(other, client="127.0.0.9")
    base = replace(_result(calls=[], streams=()), tls_flows=(*conns, other), flows=(flow,), first_ts=80.0,
                   last_ts=98.05)
    out = recent(base, since=95.0)
    assert out.flows == (flow,)
    assert out.tls_flows == conns
    assert syns_without_connection(out, "127.0.0.1", 5061) == []
    # the evidence rule still sees SYNs beyond the connections that came up
    blocked = replace(base, flows=(replace(flow, syn=10),))
    assert len(syns_without_connection(recent(blocked, since=95.0), "127.0.0.1", 5061)) == 1
