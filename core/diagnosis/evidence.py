"""Evidence rules: the finding ids (docs/findings.md) that need observations (captures, trace logs, probes), not only
the site file. Each rule is a pure function ``Context → list[Finding]``; every finding carries the
packet numbers, timestamps, config paths or probe transcript lines it rests on.

==================================  ============================================================
id                                  fires on
==================================  ============================================================
itsp.not-registered.firewall        ITSP not registered and: the SIP/TLS flow to the connector is
                                    blocked (SYN unanswered, ICMP unreachable, RST, TLS handshake
                                    failure, probe failing at connect), SYNs beyond the connections
                                    that came up, or REGISTERs unanswered past Timer F / 408
itsp.not-registered.auth            a registration ending in 403, or 401/407 to credentials
rest-api.api-key-invalid            REST probe 401/403 not about the JWT; the registrar's 403 (the
                                    trunk's credential is the API key)
calls.trunk-lines-busy              INVITE rejected 486/503 (or Q.850 34) while the calls holding
                                    lines reach connectivity.simultaneous_calls
calls.license-missing, …            a rejected call whose reason phrase / Reason header names the
not-trusted-external-user,          cause (``DiagnosisOptions.call_reject_reasons``), or whose user
route-flag-off, numbering-mismatch  the site shows unlicensed / not a TEU / the route flag off
provisioning.jwt-missing            the REST API refusing a request for a missing JWT
clone.duplicate-connector           the registrar's 2xx listing bindings of the AOR from two hosts;
                                    REGISTERs of one AOR from two sources interleaving, or accepted
                                    from two addresses
media.one-way-audio                 an answered call with RTP to one side only, or one side silent
                                    while the other keeps sending; lone streams of no call
                                    (``core.one_way``: the same verdict as the analyser's flag)
media.poor-quality                  loss / jitter / MOS beyond the thresholds, per stream or in a
                                    10-s interval
security.port-443-open              the inbound-443 flow verdict: answered
==================================  ============================================================

JWT findings from a token handed in (``--jwt-file``) or the REST probe live in ``jwt_rules``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from core.analysis import CallInfo, RegistrationInfo, RtpStreamStats, SipMessageInfo
from core.findings import Evidence, Finding, make
from core.firewall import Verdict, syns_without_connection
from core.one_way import OneWayThresholds, judge_media
from core.probes import ProbeResult
from core.snapshot import ItspState

from .context import BUSY_CODES, BUSY_Q850, DiagnosisOptions, Rule, RuleContext
from .itsp import AUTH_CODES, RegistrationOutcome, connector_registrations, evaluate_registration

MAX_EVIDENCE = 8  # evidence items per finding: enough to find the packets, short enough to read


def _cap(items: Iterable[Evidence]) -> list[Evidence]:
    out = list(items)
    if len(out) > MAX_EVIDENCE:
        rest = len(out) - MAX_EVIDENCE + 1
        out = [*out[: MAX_EVIDENCE - 1], Evidence(f"… and {rest} more")]
    return out


def _outcomes(ctx: RuleContext) -> list[RegistrationOutcome]:
    regs = connector_registrations(ctx.registrations, ctx.endpoints, ctx.site is not None)
    return [evaluate_registration(r, ctx.evidence_ts, ctx.options.registration_grace_s, ctx.evidence_until) for r in regs]


def _reg_events(reg: RegistrationInfo, codes: Iterable[int], now: float) -> list[Evidence]:
    wanted = set(codes)
    return [
        Evidence(f"REGISTER {reg.aor} from {reg.client} to {reg.registrar}: {e.state} ({e.code})",
                 packets=(e.frame,), timestamp=e.ts)
        for e in reg.timeline if e.code in wanted and e.ts <= now
    ]


# --------------------------------------------------------------------------- registration


def rule_not_registered_firewall(ctx: RuleContext) -> list[Finding]:
    """Not registered and the path to the connector is blocked, or REGISTERs go unanswered."""
    if ctx.itsp.state is not ItspState.NOT_REGISTERED:
        return []
    ev: list[Evidence] = []
    sip = ctx.verdict("sip-tls")
    if sip is not None and sip.verdict is Verdict.BLOCKED:
        ev += sip.evidence
    subject = sip.destination if sip is not None and ev else None
    for o in _outcomes(ctx):
        unanswered = _unanswered(o.registration, ctx.evidence_ts)
        if o.state is ItspState.NOT_REGISTERED and o.last_failure_code in (None, 408) and unanswered:
            reg = o.registration
            ev.append(Evidence(f"REGISTER {reg.aor} to {reg.registrar}: {unanswered} without response",
                               packets=reg.frames[-3:], timestamp=o.since))
            ev += _reg_events(reg, (408,), ctx.evidence_ts)
            subject = subject or reg.registrar
    if not ev and not any(_auth_failed(o, ctx.options.auth_challenge_loop) for o in _outcomes(ctx)):
        host, port = ctx.endpoints.connector
        since = ctx.itsp.since
        ev += [e for e in syns_without_connection(ctx.analysis, host, port)
               if since is None or e.timestamp is None or e.timestamp >= since]
        subject = subject or (sip.destination if sip is not None and ev else None)
    if not ev:
        return []
    ev.insert(0, Evidence(f"ITSP status: not registered — {ctx.itsp.reason}", timestamp=ctx.itsp.since))
    return [make("itsp.not-registered.firewall", _cap(ev), subject=subject)]


#: RFC 3261 §17.1.2.2 Timer F (64·T1): a non-INVITE request without an answer this long timed out.
TIMER_F_S = 32.0


def _unanswered(reg: RegistrationInfo, now: float) -> int:
    """REGISTERs without a response, not counting the last one while it may still be answered."""
    events = [e for e in reg.timeline if e.ts <= now]
    pending = bool(events) and events[-1].state == "trying" and now - events[-1].ts < TIMER_F_S
    return max(0, reg.unanswered - pending)


def _auth_failed(o: RegistrationOutcome, loop: int) -> bool:
    return o.state is ItspState.NOT_REGISTERED and (
        o.last_failure_code == 403
        or (o.last_failure_code in AUTH_CODES and (o.credentials_refused or o.trailing_challenges >= loop))
    )


def rule_not_registered_auth(ctx: RuleContext) -> list[Finding]:
    """REGISTER answered 403, or 401/407 repeating after credentials (RFC 3261 §22)."""
    out = []
    for o in _outcomes(ctx):
        if not _auth_failed(o, ctx.options.auth_challenge_loop):
            continue
        reg = o.registration
        ev = [Evidence(f"{reg.aor} at {reg.registrar}: {o.reason}", timestamp=o.since)]
        ev += _reg_events(reg, (403, *AUTH_CODES), ctx.evidence_ts)[-(MAX_EVIDENCE - 1):]
        out.append(make("itsp.not-registered.auth", _cap(ev), subject=f"{reg.aor} from {reg.client}"))
    return out


def _rest_probes(ctx: RuleContext) -> list[ProbeResult]:
    return [p for p in ctx.inputs.probes if "rest" in p.probe or p.probe.startswith("https")]


def _probe_mentions_jwt(p: ProbeResult) -> bool:
    text = " ".join((p.reason, *p.transcript, str(p.details.get("error", "")))).lower()
    return "jwt" in text or "token" in text


def _probe_ev(p: ProbeResult) -> Evidence:
    lines = "; ".join(p.transcript[-2:])
    return Evidence(f"probe {p.probe} {p.target}: {p.reason or 'ok'}" + (f" — {lines}" if lines else ""),
                    timestamp=p.ts, source=f"probe:{p.probe}")


def rule_api_key_invalid(ctx: RuleContext) -> list[Finding]:
    """The REST API answers 401/403 to the API key, or the registrar forbids the trunk.

    The trunk registers with the tenant's API key as its credential, so a registrar's
    403 means the same as a REST 401/403: the key is invalid or was regenerated. A 401 loop is
    left to ``itsp.not-registered.auth`` alone (it can also be a digest/realm mismatch).
    """
    ev: list[Evidence] = []
    for p in _rest_probes(ctx):
        code = p.details.get("status_code")
        if code in (401, 403) and not _probe_mentions_jwt(p):
            ev.append(_probe_ev(p))
    for o in _outcomes(ctx):
        if o.state is ItspState.NOT_REGISTERED and o.last_failure_code == 403:
            reg = o.registration
            ev.append(Evidence(f"registrar {reg.registrar} answered 403 to the trunk's API-key credentials",
                               config_path="connectivity.api_key", timestamp=o.since))
            ev += _reg_events(reg, (403,), ctx.evidence_ts)[-3:]
    return [make("rest-api.api-key-invalid", _cap(ev))] if ev else []


# --------------------------------------------------------------------------- calls


def _occupying_at(calls: Sequence[CallInfo], t: float, exclude: str) -> list[CallInfo]:
    """Calls holding a trunk line at ``t``: a line is taken from the INVITE until the call ends
    (the PBX counts ringing calls too), for calls that were not themselves rejected."""
    return [
        c for c in calls
        if c.call_id != exclude and c.start_ts <= t and (c.answered or c.state in ("in-progress", "ringing"))
        and (c.end_ts is None or c.end_ts > t)
    ]


def _is_busy(c: CallInfo) -> bool:
    return not c.answered and (c.final_code in BUSY_CODES or c.q850_cause in BUSY_Q850)


def _call_ev(c: CallInfo, what: str) -> Evidence:
    frames = c.frames[:1] + c.frames[-1:] if c.frames else (c.first_frame,)
    return Evidence(f"call {c.caller} → {c.callee}: {what}", packets=tuple(dict.fromkeys(frames)),
                    timestamp=c.start_ts, call_id=c.call_id)


def rule_trunk_lines_busy(ctx: RuleContext) -> list[Finding]:
    """INVITEs rejected 486/503 (or Q.850 34) while the answered calls fill the trunk lines."""
    if ctx.analysis is None:
        return []
    calls = ctx.analysis.calls
    limit = ctx.site.connectivity.simultaneous_calls if ctx.site is not None else None
    shared = ctx.site is not None and ctx.site.connectivity.shared_trunk_lines
    ev: list[Evidence] = []
    for c in calls:
        if not _is_busy(c):
            continue
        active = len(_occupying_at(calls, c.start_ts, c.call_id))
        at_limit = isinstance(limit, int) and limit > 0 and active >= limit
        # Shared lines are also taken by ITSP/Device@Home calls we cannot see; without a site the
        # Q.850 cause 34 ("no circuit available") is the only statement that lines ran out.
        if at_limit or (shared and active > 0) or (limit is None and c.q850_cause in BUSY_Q850):
            what = f"rejected {c.final_code} {c.final_reason}".strip() + f" with {active} call(s) active"
            ev.append(_call_ev(c, what))
    if not ev:
        return []
    if isinstance(limit, int):
        ev.insert(0, Evidence(f"simultaneous circuit calls = {limit}" + (" (shared)" if shared else ""),
                              config_path="connectivity.simultaneous_calls"))
    return [make("calls.trunk-lines-busy", _cap(ev))]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if (ch.isascii() and ch.isdigit()))


def _user_of(ctx: RuleContext, c: CallInfo) -> int | None:
    """The index of the site user a call is for: matched by callno, DID or call number against
    caller/callee."""
    users = ctx.site.users if ctx.site is not None else ()
    parties = {_digits(c.caller), _digits(c.callee)} - {""}
    for i, u in enumerate(users):
        numbers = {_digits(u.callno), _digits(u.call_number or "")}
        did = u.did or ""
        if any(n and n in parties for n in numbers):
            return i
        if did and any(p.endswith(did) and len(p) > len(did) for p in parties):
            return i
    return None


def _cause_by_site(ctx: RuleContext, c: CallInfo) -> tuple[str, str] | None:
    """(finding id, config path) when the site explains why this user's call was rejected."""
    index = _user_of(ctx, c)
    if index is None or ctx.site is None:
        return None
    user, path = ctx.site.users[index], f"users[{index}]"
    if not {"ip-user", "unify-phone"} <= set(user.licenses):
        return "calls.license-missing", f"{path}.licenses"
    if user.station_type != "trusted-external-user":
        return "calls.not-trusted-external-user", f"{path}.station_type"
    if ctx.site.route.trusted_external_users is False:
        return "calls.route-flag-off", "route.trusted_external_users"
    return None


def _cause_by_reason(ctx: RuleContext, c: CallInfo) -> str | None:
    text = f"{c.final_reason} {c.reason_header or ''}".lower()
    return next((fid for phrase, fid in ctx.options.call_reject_reasons if phrase in text), None)


def rule_rejected_calls(ctx: RuleContext) -> list[Finding]:
    """Calls rejected for a FAQ cause: license, station type, route flag, numbering plan.

    The reason phrase / Reason header names the cause (``DiagnosisOptions.call_reject_reasons``);
    otherwise the site explains it (the user's licenses and station type, the route flag).
    """
    if ctx.analysis is None:
        return []
    by_id: dict[str, list[Evidence]] = defaultdict(list)
    for c in ctx.analysis.calls:
        if c.answered or c.cancelled or c.final_code is None or c.final_code < 400 or _is_busy(c) or c.final_code == 487:
            continue
        fid = _cause_by_reason(ctx, c)
        path = None
        if fid is None and ctx.site is not None:
            found = _cause_by_site(ctx, c)
            if found is not None:
                fid, path = found
        if fid is None:
            continue
        by_id[fid].append(_call_ev(c, f"rejected {c.final_code} {c.final_reason}".strip()))
        if path is not None:
            by_id[fid].append(Evidence("site file says so", config_path=path))
    return [make(fid, _cap(dict.fromkeys(ev))) for fid, ev in sorted(by_id.items())]


# --------------------------------------------------------------------------- clone


def _register_sources(msgs: Sequence[SipMessageInfo], reg: RegistrationInfo) -> list[tuple[str, SipMessageInfo]]:
    """The REGISTER requests of one registration (AOR at a registrar) as (source key, message).

    The key is the sender address and Call-ID: one PBX keeps its Call-ID across refreshes and TLS
    reconnects (RFC 3261 §10.2.4) while a second system uses its own."""
    frames = set(reg.frames)
    return [(f"{m.src}|{m.call_id}", m) for m in msgs
            if m.frame in frames and m.method == "REGISTER" and not m.retransmission]


def _accepted_sources(msgs: Sequence[SipMessageInfo], reg: RegistrationInfo,
                      seq: list[tuple[str, SipMessageInfo]]) -> dict[str, SipMessageInfo]:
    """Source key → first 2xx the registrar sent it (matched by Call-ID)."""
    frames = set(reg.frames)
    key_of = {m.call_id: k for k, m in seq}
    out: dict[str, SipMessageInfo] = {}
    for m in msgs:
        if m.frame in frames and m.status is not None and 200 <= m.status < 300 and m.call_id in key_of:
            out.setdefault(key_of[m.call_id], m)
    return out


def _binding_host(uri: str) -> str:
    """Host of a Contact URI (``sip:user@host:port;params``), lower-cased; "" when there is none."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.split("@", 1)[-1].split(";", 1)[0]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0].lower()
    return rest.rsplit(":", 1)[0].lower() if rest.count(":") == 1 else rest.lower()


def rule_duplicate_connector(ctx: RuleContext) -> list[Finding]:
    """Two systems register the same connector configuration (one AOR at one registrar).

    Evidence: the registrar's 2xx lists bindings of the AOR from two hosts (RFC 3261 §10.3: it
    returns every current binding, so the clone shows even in this system's own trace log);
    REGISTERs from two sources (address + Call-ID) that alternate — a restart or
    reconnect switches source once (A…A B…B), a clone interleaves (A B A B) — or two sources from
    different addresses both accepted with a 2xx; or the analyser's registrations name two
    clients for one AOR that both succeeded.
    """
    if ctx.analysis is None:
        return []
    ev: list[Evidence] = []
    # Clones are judged on the analysed span only: the live registration state keeps the
    # client of a connection that a reconnect replaced, which is no second system.
    regs = connector_registrations(ctx.analysis.registrations, ctx.endpoints, ctx.site is not None)
    by_aor: dict[str, list[RegistrationInfo]] = defaultdict(list)
    for r in regs:
        by_aor[r.aor].append(r)
    for aor, group in by_aor.items():
        clients = {r.client for r in group if r.last_success_ts is not None}
        if len(clients) >= 2:
            ev.append(Evidence(f"AOR {aor} registered by {len(clients)} clients: {', '.join(sorted(clients))}",
                               packets=tuple(sorted({f for r in group for f in r.frames[:2]}))))
    for r in regs:
        hosts = sorted({_binding_host(b) for b in r.bindings} - {""})
        if r.registered and len(hosts) >= 2:
            ev.append(Evidence(f"{r.registrar} lists {len(r.bindings)} bindings for {r.aor} in its last 2xx, "
                               f"from {len(hosts)} hosts: {', '.join(hosts[:4])}",
                               packets=tuple(f for f in r.frames[-1:] if f), timestamp=r.last_success_ts))
    msgs = ctx.analysis.sip_messages
    for r in regs:
        seq = _register_sources(msgs, r)
        keys = [k for k, _ in seq]
        switches = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
        # Returning to a source seen before, after another one, is the interleaving of a clone.
        first_seen: dict[str, int] = {}
        for i, k in enumerate(keys):
            first_seen.setdefault(k, i)
        returns = [i for i in switches if first_seen[keys[i]] < i]
        accepted = _accepted_sources(msgs, r, seq)
        accepted_ips = {k.split("|", 1)[0] for k in accepted}
        if returns:
            frames = tuple(seq[i][1].frame for i in switches[:6])
            srcs = sorted({f"{m.src}:{m.src_port}" for _, m in seq})
            ev.append(Evidence(f"REGISTERs for {r.aor} to {r.registrar} alternate between {len(set(keys))} "
                               f"sources ({len(switches)} switches): {', '.join(srcs[:4])}", packets=frames,
                               timestamp=seq[switches[0]][1].ts))
        elif len(accepted_ips) >= 2:
            oks = sorted(accepted.values(), key=lambda m: m.frame)
            ev.append(Evidence(f"{r.registrar} accepted REGISTERs for {r.aor} from {len(accepted_ips)} "
                               f"addresses: {', '.join(sorted(accepted_ips))}",
                               packets=tuple(m.frame for m in oks[:6]), timestamp=oks[0].ts))
    if not ev:
        return []
    return [make("clone.duplicate-connector", _cap(ev))]


# --------------------------------------------------------------------------- media


def one_way_thresholds(o: DiagnosisOptions) -> OneWayThresholds:
    return OneWayThresholds(o.one_way_min_s, o.min_stream_packets, o.one_way_silence_s)


def _call_span(c: CallInfo) -> str:
    if c.state == "answered-open":
        return f"answered, still up at the end of the capture after {c.duration_s or 0:.1f} s"
    return f"answered, {c.duration_s or 0:.1f} s"


def _stream_line(s: RtpStreamStats, what: str) -> Evidence:
    return Evidence(f"RTP {s.src}:{s.src_port} → {s.dst}:{s.dst_port}: {s.packets} packets, {what}",
                    packets=(s.first_frame, s.last_frame), timestamp=s.first_ts, call_id=s.call_id)


def rule_one_way_audio(ctx: RuleContext) -> list[Finding]:
    """An answered call whose RTP reached one side only, or one side fell silent while the other
    kept sending (docs/diagnosis-evidence.md, One-way audio); streams of no call that never came back. The judgement is
    ``core.one_way`` — the same that sets ``CallInfo.one_way_audio`` and the firewall's RTP
    verdict."""
    if ctx.analysis is None:
        return []
    verdicts = judge_media(ctx.analysis.calls, ctx.analysis.rtp_streams, one_way_thresholds(ctx.options))
    out: list[Finding] = []
    for v in verdicts.calls:
        c = v.call
        if v.kind == "silent-side":
            quiet = v.streams[0]
            ev = [_call_ev(c, f"{_call_span(c)}; RTP from {quiet.src}:{quiet.src_port} stopped "
                              f"{v.silent_for_s or 0:.1f} s before the other direction"),
                  Evidence(f"RTP {quiet.src}:{quiet.src_port} → {quiet.dst}:{quiet.dst_port}: last packet",
                           packets=(quiet.last_frame,), timestamp=quiet.last_ts, call_id=quiet.call_id)]
        else:
            unheard = f"; nothing reached {', '.join(v.unheard)}" if v.unheard else ""
            ev = [_call_ev(c, f"{_call_span(c)}, RTP in one direction only{unheard}")]
            ev += [_stream_line(s, "no stream back") for s in v.streams]
        out.append(make("media.one-way-audio", _cap(ev), subject=c.call_id))
    if verdicts.loose:
        ev = [_stream_line(s, "no stream back") for s in verdicts.loose]
        out.append(make("media.one-way-audio", _cap(ev), subject="streams without call"))
    return out


def _beyond(o: DiagnosisOptions, loss_pct: float, jitter_ms: float, mos: float | None) -> list[str]:
    why = []
    if loss_pct > o.max_loss_pct:
        why.append(f"loss {loss_pct:.1f} % > {o.max_loss_pct:g} %")
    if jitter_ms > o.max_jitter_ms:
        why.append(f"mean jitter {jitter_ms:.1f} ms > {o.max_jitter_ms:g} ms")
    if mos is not None and mos < o.min_mos:
        why.append(f"MOS {mos:.2f} < {o.min_mos:g}")
    return why


def rule_poor_quality(ctx: RuleContext) -> list[Finding]:
    """Streams beyond the loss / jitter / MOS thresholds (docs/analysis-rtp-media.md), over the whole
    stream or in one of its 10-s intervals (a burst of loss in a long call is diluted overall)."""
    if ctx.analysis is None:
        return []
    o = ctx.options
    ev: list[Evidence] = []
    for s in ctx.analysis.rtp_streams:
        if s.packets < o.min_stream_packets:
            continue
        where = f"RTP {s.src}:{s.src_port} → {s.dst}:{s.dst_port} SSRC 0x{s.ssrc:08x}"
        why = _beyond(o, s.loss_pct, s.mean_jitter_ms, s.mos)
        if why:
            ev.append(Evidence(f"{where}: " + ", ".join(why), packets=(s.first_frame, s.last_frame),
                               timestamp=s.first_ts, call_id=s.call_id))
            continue
        for iv in s.intervals:
            if iv.expected < o.min_stream_packets:
                continue  # a short (first or last) interval: too few packets to judge
            why = _beyond(o, 100.0 * iv.lost / iv.expected, iv.mean_jitter_ms, iv.mos)
            if why:
                ev.append(Evidence(f"{where}, 10-s interval from {_iso(iv.start)}: " + ", ".join(why),
                                   timestamp=iv.start, call_id=s.call_id))
                break
    return [make("media.poor-quality", _cap(ev))] if ev else []


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- security, provisioning


def rule_port_443_open(ctx: RuleContext) -> list[Finding]:
    v = ctx.verdict("inbound-443")
    if v is None or v.ok:
        return []
    return [make("security.port-443-open", _cap([Evidence(f"{v.destination}: {v.reason}"), *v.evidence]))]


def rule_provisioning_jwt_missing(ctx: RuleContext) -> list[Finding]:
    """The REST API refusing a provisioning request for a missing JWT. (A Unify Video site with no
    JWT at all is the site rule's ``provisioning.jwt-missing``.)"""
    ev = []
    for p in _rest_probes(ctx):
        text = " ".join((p.reason, *p.transcript, str(p.details.get("error", "")))).lower()
        if not p.success and "jwt" in text and ("missing" in text or "not set" in text or "required" in text):
            ev.append(_probe_ev(p))
    return [make("provisioning.jwt-missing", _cap(ev))] if ev else []


#: The evidence rules, in catalogue order of the ids they produce.
EVIDENCE_RULES: tuple[Rule, ...] = (
    rule_not_registered_firewall,
    rule_not_registered_auth,
    rule_api_key_invalid,
    rule_trunk_lines_busy,
    rule_rejected_calls,
    rule_provisioning_jwt_missing,
    rule_duplicate_connector,
    rule_one_way_audio,
    rule_poor_quality,
    rule_port_443_open,
)
