"""The firewall check: expected flows vs what captures and probes observed.

Theory of operation. An OSBiz with Unify Phone needs these flows through its firewall (SIP/TLS to the
connector, REST to phoneapp.unify.com, STUN/TURN, RTP both ways to the GCP europe-west3 ranges) and
one that must stay closed (inbound TCP 443 to the OSBiz). ``expected_flows`` turns the site's
endpoints into that list; ``check_firewall`` gives each flow one verdict from the evidence:

- TCP: a SYN with no SYN-ACK, an ICMP unreachable or a reset is *blocked*; a SYN-ACK or a
  completed TLS handshake is *working*; probes decide when the capture saw nothing.
- STUN: a request with a response is *working*, requests without any response are *blocked*.
- RTP: streams out and in are *working*; a call or stream whose RTP reached one side only
  (``core.one_way``, the judgement behind the one-way audio finding) makes the inbound path *one-way*.
- Nothing seen at all is *not observed* — never a guess.

When a flow both worked and failed, the latest observation decides if the failure came after the
last success (a fault that began: *blocked*, noting when it last worked); otherwise the flow is
*working* and the failures are kept as a note (intermittent loss, a fault that was lifted).

A capture is taken at the OSBiz, so its own egress is always visible even when the firewall drops
it further on; the missing answer is what shows the block. Everything here is pure: the caller
hands in the analysis, the probe results and (optionally) the text of a GCP ``cloud.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.analysis import AnalysisResult, FlowInfo, RtpStreamStats
from core.findings import Evidence
from core.gcp_ranges import GcpRanges, default_gcp_ranges
from core.one_way import OneWayMedia, OneWayThresholds, judge_media
from core.probes import ProbeModule, ProbeResult
from core.site.model import Site

# The Unify Phone cloud's published addresses; the site file's ``endpoints`` override them.
DEFAULT_CONNECTOR = ("35.246.178.13", 65061)
DEFAULT_REST = ("34.117.105.255", 443)
DEFAULT_STUN = ("34.159.228.55", 3478)
DEFAULT_MEDIA_PORTS = (10000, 49999)

#: Probe modules (``core.probes.ProbeResult.probe``) that open a TCP connection to their target.
TCP_PROBES = frozenset({ProbeModule.TCP_CONNECT, ProbeModule.SIP_OPTIONS_TLS, ProbeModule.SIP_OPTIONS_TCP,
                        ProbeModule.HTTPS_REST})
STUN_PROBES = frozenset({ProbeModule.STUN})


class Verdict(StrEnum):
    WORKING = "working"
    BLOCKED = "blocked"
    ONE_WAY = "one-way"
    NOT_OBSERVED = "not-observed"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The addresses the check needs, from the site file (``from_site``) or the defaults."""

    osbiz: tuple[str, ...] = ()  # public and private address of the OSBiz, when known
    connector: tuple[str, int] = DEFAULT_CONNECTOR
    rest: tuple[str, int] = DEFAULT_REST
    stun: tuple[str, int] = DEFAULT_STUN
    media_ports: tuple[int, int] = DEFAULT_MEDIA_PORTS
    #: Ports that stand for the OSBiz's inbound HTTPS (WBM); 443 on a real site, the lab may
    #: emulate it on another port.
    osbiz_https_ports: tuple[int, ...] = (443,)
    #: The connector is known (a site file's, or one the user named) rather than the default.
    connector_named: bool = False

    def is_osbiz(self, address: str) -> bool:
        return address in self.osbiz


def endpoints_from_site(site: Site | None) -> Endpoints:
    """``Endpoints`` of a site (its ``endpoints`` section, the defaults where it has none);
    the defaults without a site."""
    if site is None:
        return Endpoints()
    ep = site.endpoints
    return Endpoints(
        osbiz=tuple(a for a in (site.system.public_ip, site.system.private_ip) if a),
        connector=(ep.connector.host, ep.connector.port),
        rest=(ep.rest.host, ep.rest.port),
        stun=(ep.stun.host, ep.stun.port),
        media_ports=(ep.media_ports.first, ep.media_ports.last),
        connector_named=True,
    )


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    """One expected flow through the firewall and what was observed for it.

    ``ok`` says whether the observation is what the flow requires: for the must-stay-closed flow
    (inbound 443) *blocked* or *not observed* is ok and *working* is not.
    """

    flow: str
    description: str
    proto: str
    source: str
    destination: str
    verdict: Verdict
    ok: bool
    reason: str
    evidence: tuple[Evidence, ...] = ()
    notes: tuple[str, ...] = ()
    must_be_closed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "description": self.description,
            "proto": self.proto,
            "source": self.source,
            "destination": self.destination,
            "verdict": self.verdict.value,
            "ok": self.ok,
            "reason": self.reason,
            "must_be_closed": self.must_be_closed,
            "evidence": [e.to_dict() for e in self.evidence],
            "notes": list(self.notes),
        }


@dataclass(slots=True)
class _Obs:
    """Evidence gathered for one flow before the verdict is chosen."""

    working: list[Evidence] = field(default_factory=list)
    blocked: list[Evidence] = field(default_factory=list)
    blocked_reason: str = ""
    last_working: float | None = None  # when the path last worked / last failed, when known
    last_blocked: float | None = None

    def work(self, ev: Evidence, at: float | None = None) -> None:
        self.working.append(ev)
        at = ev.timestamp if at is None else at
        if at is not None and (self.last_working is None or at > self.last_working):
            self.last_working = at

    def block(self, reason: str, ev: Evidence, at: float | None = None) -> None:
        if not self.blocked_reason:
            self.blocked_reason = reason
        self.blocked.append(ev)
        at = ev.timestamp if at is None else at
        if at is not None and (self.last_blocked is None or at > self.last_blocked):
            self.last_blocked = at


def _probe_target(p: ProbeResult) -> tuple[str, int] | None:
    host, sep, port = p.target.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        return None
    return host.strip("[]"), int(port)


def _probe_evidence(p: ProbeResult) -> Evidence:
    line = p.transcript[-1] if p.transcript else ""
    state = "succeeded" if p.success else f"failed: {p.reason}"
    text = f"probe {p.probe} to {p.target} {state}" + (f" ({line})" if line and not p.success else "")
    return Evidence(text, timestamp=p.ts, source=f"probe:{p.probe}")


def probe_failed_at_connect(p: ProbeResult) -> bool:
    """A failed probe that never got a transport connection (or TLS) up: points at a firewall.

    Probes record the phases they completed; a failure with no ``request``/``response`` phase and a
    reason naming connect/TLS/timeout/refused/unreachable is a connect-level failure.
    """
    if p.success:
        return False
    phase = str(p.details.get("failed_phase", "")).lower()
    if phase:
        return phase in {"connect", "tls", "resolve", "handshake"}
    reason = p.reason.lower()
    if "certificate" in reason:
        return False  # the handshake reached the server; its certificate is the problem, not the path
    return any(w in reason for w in ("connect", "tls", "handshake", "refused", "unreachable", "timed out", "timeout"))


def _tcp_obs(
    analysis: AnalysisResult | None,
    probes: Sequence[ProbeResult],
    host: str,
    port: int,
) -> _Obs:
    """Evidence for a TCP flow to host:port from flows, TLS flows and probes."""
    obs = _Obs()
    if analysis is not None:
        for f in analysis.flows:
            if f.proto != "tcp" or f.dst != host or f.dst_port != port:
                continue
            _tcp_flow_evidence(obs, f, analysis.flows)
        for t in analysis.tls_flows:
            if t.server != host or t.server_port != port:
                continue
            where = f"TLS {t.client}:{t.client_port} → {t.server}:{t.server_port}"
            if t.syn_answered is False and t.reset_by == "server":
                # RST/ACK to the SYN: nothing listens there, or a firewall rejects — refused is blocked.
                obs.block("connection refused (SYN answered by RST)",
                          Evidence(f"{where}: SYN answered by RST", packets=(t.first_frame,), timestamp=t.first_ts),
                          t.last_ts)
            elif t.syn_answered is False:
                obs.block("TCP SYN unanswered", Evidence(f"{where}: SYN unanswered", packets=(t.first_frame,), timestamp=t.first_ts), t.last_ts)
            elif t.handshake == "ok":
                obs.work(Evidence(f"{where}: TLS handshake completed ({t.version or 'TLS'})", packets=(t.first_frame,), timestamp=t.first_ts), t.last_ts)
            elif t.handshake == "failed" or (t.handshake == "incomplete" and t.reset_by == "server"):
                alerts = f", alerts {', '.join(t.alerts)}" if t.alerts else ""
                reset = f", reset by {t.reset_by}" if t.reset_by else ""
                obs.block("TLS handshake failure", Evidence(f"{where}: TLS handshake {t.handshake}{alerts}{reset}", packets=(t.first_frame,), timestamp=t.first_ts), t.last_ts)
            elif t.syn_answered:
                obs.work(Evidence(f"{where}: TCP connection answered", packets=(t.first_frame,), timestamp=t.first_ts), t.last_ts)
    for ev in syns_without_connection(analysis, host, port):
        obs.block("TCP SYN unanswered", ev)
    for p in probes:
        if p.probe not in TCP_PROBES or _probe_target(p) != (host, port):
            continue
        if p.success or not probe_failed_at_connect(p):
            # A probe that got past connect proves the path even if the service answered badly.
            obs.work(_probe_evidence(p))
        else:
            obs.block(f"probe {p.probe} failed: {p.reason}", _probe_evidence(p))
    return obs


#: SYNs beyond the connections that came up, per flow, before they count as unanswered: a lost
#: SYN is retransmitted (RFC 6298 §5) and one or two retransmissions are ordinary loss.
SPARE_SYNS = 2


def syns_without_connection(analysis: AnalysisResult | None, host: str, port: int,
                            sources: Collection[str] = ()) -> list[Evidence]:
    """SYNs to host:port that led to no connection, when some other connection did come up.

    Flows are aggregated per destination port, so a fault that begins mid-capture hides behind the
    connection that worked before it; the TLS analyser's per-connection records tell how many
    connections came up, and the SYNs beyond those (and their retransmissions) went unanswered.
    Evidence timestamps are the flow's last packet. ``sources`` limits the clients looked at.
    """
    if analysis is None:
        return []
    # Counted per client address: the service's own probes open connections of their own from
    # another address, and their SYNs must not be weighed against the OSBiz's connections.
    up: dict[str, int] = {}
    for t in analysis.tls_flows:
        if t.server == host and t.server_port == port and (t.syn_answered or t.handshake == "ok"):
            up[t.client] = up.get(t.client, 0) + 1
    return [
        Evidence(f"TCP {f.src} → {host}:{port}: {f.syn} SYN but only {up[f.src]} connection(s) came up; "
                 f"{f.syn - up[f.src]} SYN unanswered", packets=(f.first_frame,) if f.first_frame else (),
                 timestamp=f.last_ts)
        for f in analysis.flows
        # Without a connection of that client the flow's own verdict says it all.
        if f.proto == "tcp" and f.dst == host and f.dst_port == port and up.get(f.src)
        and f.syn - up[f.src] > SPARE_SYNS and (not sources or f.src in sources)
    ]


def _tcp_flow_evidence(obs: _Obs, f: FlowInfo, flows: Sequence[FlowInfo]) -> None:
    """Judge one client → server TCP flow (aggregated over its connections).

    Flows are keyed by destination port, so the server's SYN-ACKs and RSTs sit in reverse flows
    keyed by the client's ephemeral ports. The client's own packets tell more reliably: after a
    SYN-ACK it always sends an ACK, so a flow made of SYNs only was never answered. A flow without
    SYNs is a connection that was up before the capture began.
    """
    where = f"TCP {f.src} → {f.dst}:{f.dst_port}"
    frames = (f.first_frame,) if f.first_frame else ()
    answered = f.syn_ack > 0 or f.packets > f.syn + f.rst
    if f.icmp_unreachable:
        obs.block("ICMP destination unreachable", Evidence(f"{where}: {f.icmp_unreachable} ICMP unreachable", packets=frames, timestamp=f.first_ts), f.last_ts)
    if answered:
        what = f"{f.syn} SYN, {f.packets} packets" if f.syn else f"established connection, {f.packets} packets"
        # An aggregate says that some connection was answered, not when: only its start counts.
        obs.work(Evidence(f"{where}: answered ({what})", packets=frames, timestamp=f.first_ts), f.first_ts)
    elif f.syn:
        reset = any(r.proto == "tcp" and r.src == f.dst and r.dst == f.src and r.rst and not r.syn_ack
                    and r.packets == r.rst for r in flows)
        if reset:
            obs.block("connection refused (SYN answered by RST)",
                      Evidence(f"{where}: {f.syn} SYN answered by RST", packets=frames, timestamp=f.first_ts), f.last_ts)
        else:
            obs.block("TCP SYN unanswered", Evidence(f"{where}: {f.syn} SYN, no SYN-ACK", packets=frames, timestamp=f.first_ts), f.last_ts)


def _verdict(
    flow: str, description: str, proto: str, source: str, destination: str, obs: _Obs, notes: Iterable[str] = (),
    working_reason: str = "answered",
) -> FlowVerdict:
    if obs.working and obs.blocked and obs.last_blocked is not None and obs.last_working is not None \
            and obs.last_blocked > obs.last_working:
        # The path worked before and fails now (a fault began): the latest observation decides.
        worked = datetime.fromtimestamp(obs.last_working, UTC).isoformat().replace("+00:00", "Z")
        return FlowVerdict(flow, description, proto, source, destination, Verdict.BLOCKED, False,
                           obs.blocked_reason, tuple(obs.blocked + obs.working),
                           (f"answered earlier, last at {worked}", *notes))
    if obs.working:
        # Otherwise working wins: a flow that got through is open; failures stay as a note
        # (intermittent loss, a fault that has been lifted).
        extra = (f"also seen: {obs.blocked_reason}",) if obs.blocked else ()
        return FlowVerdict(flow, description, proto, source, destination, Verdict.WORKING, True,
                           working_reason, tuple(obs.working + obs.blocked), (*extra, *notes))
    if obs.blocked:
        return FlowVerdict(flow, description, proto, source, destination, Verdict.BLOCKED, False,
                           obs.blocked_reason, tuple(obs.blocked), tuple(notes))
    return FlowVerdict(flow, description, proto, source, destination, Verdict.NOT_OBSERVED, True,
                       "no packets or probes for this flow", (), tuple(notes))


def _stun_obs(analysis: AnalysisResult | None, probes: Sequence[ProbeResult], host: str, port: int, transport: str) -> _Obs:
    obs = _Obs()
    if analysis is not None:
        for s in analysis.stun:
            if s.server != host or s.server_port != port or s.transport != transport:
                continue
            where = f"STUN {s.method} {s.client}:{s.client_port} → {s.server}:{s.server_port}/{s.transport}"
            frames = (s.request_frame,) + ((s.response_frame,) if s.response_frame else ())
            if s.response_frame is not None:
                obs.work(Evidence(f"{where}: {s.response_class or 'response'}", packets=frames))
            else:
                obs.block("STUN request unanswered", Evidence(f"{where}: no response", packets=frames))
        if transport == "tcp":
            for f in analysis.flows:
                if f.proto == "tcp" and f.dst == host and f.dst_port == port:
                    _tcp_flow_evidence(obs, f, analysis.flows)
        else:
            for f in analysis.flows:
                if f.proto == "udp" and f.dst == host and f.dst_port == port and f.icmp_unreachable:
                    obs.block("ICMP destination unreachable", Evidence(
                        f"UDP {f.src} → {f.dst}:{f.dst_port}: {f.icmp_unreachable} ICMP unreachable",
                        packets=(f.first_frame,) if f.first_frame else (), timestamp=f.first_ts))
    for p in probes:
        if _probe_target(p) != (host, port):
            continue
        # The STUN probe over TCP records a "connect" phase (even when the connect fails).
        tcp = p.details.get("transport") == "tcp" or "connect" in p.phases
        ptransport = "tcp" if tcp else "udp"
        relevant = (p.probe in STUN_PROBES and ptransport == transport) or (
            transport == "tcp" and p.probe == ProbeModule.TCP_CONNECT)
        if not relevant:
            continue
        if p.success:
            obs.work(_probe_evidence(p))
        else:
            obs.block(f"probe {p.probe} failed: {p.reason}", _probe_evidence(p))
    return obs


@dataclass(frozen=True, slots=True)
class MediaDirections:
    """RTP streams split by direction relative to the OSBiz, with the unanswered ones."""

    egress: tuple[RtpStreamStats, ...]
    ingress: tuple[RtpStreamStats, ...]
    unpaired_egress: tuple[RtpStreamStats, ...]


@dataclass(frozen=True, slots=True)
class CloudPeers:
    """Which media peers are "the cloud": an address in the GCP ranges (never a private or other
    non-global one), or an endpoint the site file (or the user) names — the lab's connector on
    127.0.0.1 is the cloud for the lab's site."""

    gcp: GcpRanges
    named: frozenset[str] = frozenset()

    def has(self, address: str) -> bool:
        return address in self.named or self.gcp.contains(address)

    def describe(self) -> str:
        where = f"GCP {self.gcp.scope} ranges ({self.gcp.source} of {self.gcp.created})"
        return where + (" or the site's connector/STUN" if self.named else "")


def cloud_peers(ep: Endpoints, gcp: GcpRanges | None) -> CloudPeers:
    named = frozenset({ep.connector[0], ep.stun[0]}) if ep.connector_named else frozenset()
    return CloudPeers(gcp if gcp is not None else default_gcp_ranges(), named)


def _in_range(port: int, rng: tuple[int, int]) -> bool:
    return rng[0] <= port <= rng[1]


def split_media(streams: Sequence[RtpStreamStats], ep: Endpoints, cloud: CloudPeers | None = None) -> MediaDirections:
    """Classify RTP streams as egress (OSBiz → peer) or ingress (peer → OSBiz).

    With distinct addresses the OSBiz address decides; without it (no site file) the cloud does:
    a stream to a cloud peer from elsewhere goes out. When both ends share one address (a capture
    on loopback) a stream whose reverse (same two address:port ends swapped) exists is a pair: the
    one with the OSBiz media port as source is egress. A stream without a reverse is counted as
    egress: at the OSBiz we always see what it sends, so a lone stream is media that never came
    back.
    """
    keys = {(s.src, s.src_port, s.dst, s.dst_port) for s in streams}
    egress: list[RtpStreamStats] = []
    ingress: list[RtpStreamStats] = []
    unpaired: list[RtpStreamStats] = []
    for s in streams:
        paired = (s.dst, s.dst_port, s.src, s.src_port) in keys
        src_is, dst_is = ep.is_osbiz(s.src), ep.is_osbiz(s.dst)
        to_cloud, from_cloud = (cloud.has(s.dst), cloud.has(s.src)) if cloud is not None else (False, False)
        if src_is != dst_is:
            out = src_is
        elif to_cloud != from_cloud:
            out = to_cloud
        elif paired:
            # Same address both ends: the lower (src, port) of the pair is called egress so the two
            # directions are split deterministically; by port range when that disambiguates.
            src_in, dst_in = _in_range(s.src_port, ep.media_ports), _in_range(s.dst_port, ep.media_ports)
            out = src_in and not dst_in if src_in != dst_in else (s.src, s.src_port) < (s.dst, s.dst_port)
        else:
            out = True
        (egress if out else ingress).append(s)
        if out and not paired:
            unpaired.append(s)
    return MediaDirections(tuple(egress), tuple(ingress), tuple(unpaired))


def _stream_evidence(s: RtpStreamStats) -> Evidence:
    return Evidence(
        f"RTP {s.src}:{s.src_port} → {s.dst}:{s.dst_port} SSRC 0x{s.ssrc:08x} {s.codec}: {s.packets} packets",
        packets=(s.first_frame, s.last_frame), timestamp=s.first_ts, call_id=s.call_id,
    )


def check_firewall(
    ep: Endpoints,
    analysis: AnalysisResult | None,
    probes: Sequence[ProbeResult] = (),
    gcp: GcpRanges | None = None,
    one_way: OneWayThresholds = OneWayThresholds(),
) -> tuple[FlowVerdict, ...]:
    """One verdict per expected flow, in the order of ``expected_flows``; ``one_way`` are the
    thresholds of the one-way audio judgement (the diagnosis passes its own)."""
    osbiz = " / ".join(ep.osbiz) or "OSBiz"
    out: list[FlowVerdict] = []
    ch, cp = ep.connector
    out.append(_verdict("sip-tls", "SIP over TLS to the connector (answers return on the established connection)",
                        "tcp", osbiz, f"{ch}:{cp}", _tcp_obs(analysis, probes, ch, cp)))
    rh, rp = ep.rest
    out.append(_verdict("rest-api", "REST API (provisioning, phoneapp.unify.com)", "tcp", osbiz, f"{rh}:{rp}",
                        _tcp_obs(analysis, probes, rh, rp)))
    sh, sp = ep.stun
    out.append(_verdict("stun-udp", "STUN/TURN", "udp", osbiz, f"{sh}:{sp}", _stun_obs(analysis, probes, sh, sp, "udp")))
    out.append(_verdict("stun-tcp", "STUN/TURN", "tcp", osbiz, f"{sh}:{sp}", _stun_obs(analysis, probes, sh, sp, "tcp")))
    out.extend(_media_verdicts(ep, analysis, gcp, osbiz, one_way))
    out.append(_inbound_443(ep, analysis, probes, osbiz))
    return tuple(out)


def _far_ends(s: RtpStreamStats, ep: Endpoints) -> tuple[str, ...]:
    """The stream's end that is not the OSBiz; both ends when the OSBiz address is not known."""
    if ep.is_osbiz(s.src):
        return (s.dst,)
    if ep.is_osbiz(s.dst):
        return (s.src,)
    return (s.src, s.dst)


def _media_verdicts(ep: Endpoints, analysis: AnalysisResult | None, gcp: GcpRanges | None, osbiz: str,
                    thresholds: OneWayThresholds) -> list[FlowVerdict]:
    """RTP out and in, with the cloud only: streams with any other peer (a LAN phone, another
    ITSP) are listed as "not the cloud" and judge neither flow."""
    streams = analysis.rtp_streams if analysis is not None else ()
    cloud = cloud_peers(ep, gcp)
    media = split_media(streams, ep, cloud)
    out = [s for s in media.egress if cloud.has(s.dst)]
    back = [s for s in media.ingress if cloud.has(s.src)]
    others = sorted({a for s in streams if not (cloud.has(s.src) or cloud.has(s.dst)) for a in _far_ends(s, ep)})
    rng = f"UDP {ep.media_ports[0]}–{ep.media_ports[1]}"
    notes: list[str] = []
    if others:
        shown = ", ".join(others[:8]) + (f" … and {len(others) - 8} more" if len(others) > 8 else "")
        notes.append(f"not the cloud — outside the {cloud.describe()}: {shown}")
    elif out or back:
        notes.append(f"all RTP peers are in the {cloud.describe()}")
    where = f"GCP {cloud.gcp.scope}" + (" / the site's endpoints" if cloud.named else "")
    egress = _verdict("rtp-egress", "RTP from the OSBiz media ports to the cloud", "udp", osbiz, f"{where} {rng}",
                      _Obs(working=[_stream_evidence(s) for s in out]), notes, f"{len(out)} RTP stream(s) out")
    ingress = _verdict("rtp-ingress", "RTP from the cloud to the OSBiz media ports", "udp", where, f"{osbiz} {rng}",
                       _Obs(working=[_stream_evidence(s) for s in back]), notes, f"{len(back)} RTP stream(s) in")
    if others and not out and not back:
        reason = f"no RTP with the cloud; {len(streams)} RTP stream(s) with other peers"
        egress = dataclasses.replace(egress, reason=reason)
        ingress = dataclasses.replace(ingress, reason=reason)
    judged = judge_media(analysis.calls, streams, thresholds) if analysis is not None else OneWayMedia()
    # The same verdict as the media.one-way-audio finding, for the calls and streams with the cloud.
    calls = [v for v in judged.calls if any(cloud.has(x.src) or cloud.has(x.dst) for x in v.streams)]
    loose = [x for x in judged.loose if cloud.has(x.src) or cloud.has(x.dst)]
    if calls or loose:
        one_way = OneWayMedia(tuple(calls), tuple(loose))
        ev = tuple(_stream_evidence(x) for x in one_way.streams())
        parts = [f"{len(calls)} call(s) with RTP one way only"] if calls else []
        parts += [f"{len(loose)} RTP stream(s) of no call with no stream back"] if loose else []
        ingress = dataclasses.replace(ingress, verdict=Verdict.ONE_WAY, ok=False, reason="; ".join(parts),
                                      evidence=ev + ingress.evidence)
    return [egress, ingress]


def _inbound_443(ep: Endpoints, analysis: AnalysisResult | None, probes: Sequence[ProbeResult], osbiz: str) -> FlowVerdict:
    """Anything → OSBiz TCP 443 must stay closed (never open from the internet): answered means open.

    Unlike a flow that must work, no later failure closes it again: a SYN-ACK (or a probe that
    connected) proves the port open, whatever became of the connection after — a client leaving
    before the ServerHello, a reset, a failed handshake."""
    answered: list[Evidence] = []
    refused: list[Evidence] = []
    # The REST endpoint itself is not the OSBiz (both can be one address in a lab or a test).
    targets = {(a, p) for a in ep.osbiz for p in ep.osbiz_https_ports} - {ep.rest}
    for host, port in sorted(targets):
        sub = _tcp_obs(analysis, probes, host, port)
        answered += sub.working
        refused += sub.blocked
    ports = ",".join(str(p) for p in ep.osbiz_https_ports)
    head = ("inbound-443", "inbound HTTPS to the OSBiz (must stay closed)", "tcp", "anything", f"{osbiz}:{ports}")
    if answered:
        notes = ("also seen: connections that failed or were reset after the answer",) if refused else ()
        return FlowVerdict(*head, Verdict.WORKING, False, "answered: port 443 is open", tuple(answered + refused),
                           notes, must_be_closed=True)
    if refused:
        return FlowVerdict(*head, Verdict.BLOCKED, True, "closed (no answer or reset)", tuple(refused),
                           must_be_closed=True)
    return FlowVerdict(*head, Verdict.NOT_OBSERVED, True, "no packets or probes for this flow", must_be_closed=True)
