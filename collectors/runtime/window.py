"""Keep only recent evidence of an analysis, so live findings open *and close*.

A capture file that grows for hours still holds the 403s of this morning; the live diagnosis must
judge what happens now. ``recent`` trims an ``AnalysisResult`` to items that were active at or after
``since``: calls that started or ended in the window (or are still running), streams with packets
in it, flows seen in it with the TLS connections they count, registrations reduced to their timeline inside the window
(their end-of-capture state kept, because "registered" is a state, not an event).

A call or stream is judged on its whole history, never on the part that happens to fall inside
the window: a call kept in the window keeps every stream of it, and a kept stream keeps the
stream coming back the other way while it flowed. Otherwise a call's two directions, which end a
few milliseconds apart, straddle the window's edge and the direction that ended first vanishes —
the call then looks like one-way audio for as long as the edge sits between them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from core.analysis import AnalysisResult, CallInfo, FlowInfo, RegistrationInfo, RtpStreamStats, TlsFlowInfo


def _call_active(call: CallInfo, since: float) -> bool:
    end = call.end_ts
    return call.start_ts >= since or end is None or end >= since


def _trim_registration(reg: RegistrationInfo, since: float) -> RegistrationInfo | None:
    timeline = tuple(s for s in reg.timeline if s.ts >= since)
    if not timeline and not reg.registered:
        return None
    return dataclasses.replace(reg, timeline=timeline)


def recent(result: AnalysisResult, since: float) -> AnalysisResult:
    messages = tuple(m for m in result.sip_messages if m.ts >= since)
    requests: Counter[str] = Counter()
    responses: Counter[str] = Counter()
    for m in messages:
        if m.method is not None:
            requests[m.method] += 1
        elif m.status is not None:
            responses[str(m.status)] += 1
    kept_calls = [c for c in result.calls if _call_active(c, since)]
    keep = _streams_to_keep(result.rtp_streams, kept_calls, since)
    # Stream indexes in CallInfo.streams must keep pointing at the right streams after filtering.
    new_index = {old: new for new, old in enumerate(keep)}
    calls = tuple(
        dataclasses.replace(c, streams=tuple(new_index[i] for i in c.streams if i in new_index))
        for c in kept_calls
    )
    registrations = tuple(r for r in (_trim_registration(r, since) for r in result.registrations) if r)
    flows = tuple(f for f in result.flows if f.last_ts >= since)
    return dataclasses.replace(
        result,
        sip_requests=dict(requests) if result.sip_messages else result.sip_requests,
        sip_responses=dict(responses) if result.sip_messages else result.sip_responses,
        sip_messages=messages,
        calls=calls,
        registrations=registrations,
        keepalives=tuple(k for k in result.keepalives if k.last_ts is None or k.last_ts >= since),
        rtp_streams=tuple(result.rtp_streams[i] for i in keep),
        tls_flows=_tls_flows_to_keep(result, flows, since),
        flows=flows,
        first_ts=max(since, result.first_ts) if result.first_ts is not None else None,
    )


def _tls_flows_to_keep(result: AnalysisResult, flows: tuple[FlowInfo, ...], since: float) -> tuple[TlsFlowInfo, ...]:
    """TLS/TCP connections seen in the window, and every connection counted in a kept TCP flow.

    A flow is an aggregate over the whole analysed span (its SYN count included), so the
    connections it counts must stay with it: SYNs are weighed against the connections that came
    up (``core.firewall.syns_without_connection``), and comparing a span's SYNs with only the
    window's connections made answered SYNs look unanswered.
    """
    counted = {(f.src, f.dst, f.dst_port) for f in flows if f.proto == "tcp"}
    return tuple(t for t in result.tls_flows
                 if t.last_ts >= since or (t.client, t.server, t.server_port) in counted)


def _streams_to_keep(streams: tuple[RtpStreamStats, ...], calls: list[CallInfo], since: float) -> list[int]:
    """Indexes (ascending) of the streams with packets in the window, every stream of a kept call,
    and the reverse streams (same two address:port ends swapped, overlapping in time) of those."""
    n = len(streams)
    keep = {i for i, s in enumerate(streams) if s.last_ts >= since}
    keep.update(i for c in calls for i in c.streams if 0 <= i < n)
    by_ends: dict[tuple[str, int, str, int], list[int]] = {}
    for i, s in enumerate(streams):
        by_ends.setdefault((s.src, s.src_port, s.dst, s.dst_port), []).append(i)
    for i in list(keep):
        s = streams[i]
        keep.update(j for j in by_ends.get((s.dst, s.dst_port, s.src, s.src_port), ())
                    if streams[j].first_ts <= s.last_ts and streams[j].last_ts >= s.first_ts)
    return sorted(keep)
