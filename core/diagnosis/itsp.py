"""ITSP status of "Unify Phone (Cloud)" at a given ``now`` (README "How the ITSP status is derived").

Theory of operation. The trunk is *registered* from a 2xx to a REGISTER until the granted expiry
passes without a refreshing 2xx; a failed refresh does not end the binding early (the registrar
keeps it until it expires). It is *not registered* when the last binding expired, or when attempts
only failed (403, a 401/407 loop, 408/timeouts, 5xx, unanswered), or when the path to the
connector is blocked and no REGISTER could even be sent. *Disabled* comes from the site file
(connectivity.enabled false). Without any of this evidence the status is *unknown* — never a guess.
Each status says since when and why, with the registrar and expiry when known.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core.analysis import RegistrationInfo, RegistrationState
from core.findings import Evidence
from core.firewall import TCP_PROBES, Endpoints, FlowVerdict, Verdict, probe_failed_at_connect
from core.probes import ProbeResult
from core.site.model import Site
from core.snapshot import ItspState, ItspStatus, OtherRegistration

#: A trunk with no usable granted expiry is treated as holding its binding this long; RFC 3261
#: §10.2.1.1 suggests 3600 s as the default a registrar grants.
DEFAULT_EXPIRY_S = 3600
AUTH_CODES = frozenset({401, 407})


@dataclass(frozen=True, slots=True)
class RegistrationOutcome:
    """The state of one registration (AOR at a registrar, from one client) at ``now``."""

    registration: RegistrationInfo
    state: ItspState
    since: float | None
    reason: str
    expiry_ts: float | None
    last_success_ts: float | None
    trailing_challenges: int  # 401/407 since the last 2xx (a loop when ≥ the option)
    last_failure_code: int | None
    credentials_refused: bool = False  # a 401/407 answered a REGISTER that carried credentials


def _failure_text(code: int | None, challenges: int, unanswered: int, refused: bool = False) -> str:
    if code == 403:
        return "REGISTER answered 403 Forbidden"
    if code in AUTH_CODES and refused:
        return f"REGISTER with credentials answered {code} again: credentials rejected"
    if code in AUTH_CODES and challenges >= 2:
        return f"REGISTER challenged {challenges} times in a row ({code}): credentials rejected"
    if code == 408:
        return "REGISTER timed out (408)"
    if code is not None and code >= 300 and code not in AUTH_CODES:
        return f"REGISTER answered {code}"
    if unanswered:
        return f"REGISTER unanswered ({unanswered} without response)"
    if code in AUTH_CODES:
        return f"REGISTER challenged ({code}), no successful retry seen"
    return "no successful REGISTER"


def _effective(events: list[RegistrationState], now: float, grace_s: float) -> list[RegistrationState]:
    """The timeline as judged with a grace after each expiry: the analyser's "expired" event (frame
    0, dated at the expiry) takes effect only once the grace has passed, and not at all when a
    refreshing 2xx arrived within the grace (a late refresh keeps the run unbroken)."""
    if grace_s <= 0:
        return events
    successes = [e.ts for e in events if e.state == "registered"]
    return [e for e in events
            if not (e.state == "expired" and e.frame == 0
                    and (e.ts + grace_s > now or any(e.ts <= t <= e.ts + grace_s for t in successes)))]


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def evaluate_registration(reg: RegistrationInfo, now: float, grace_s: float = 0.0,
                          evidence_until: float | None = None) -> RegistrationOutcome:
    """Walk the registration timeline up to ``now``.

    The binding holds until its granted expiry plus ``grace_s``. When that has passed but the
    evidence (``evidence_until``: the last packet or trace line analysed) ends before it, nothing
    tells whether a refresh came: the outcome is *unknown*, never "expired" — a stalled capture or
    trace log is no evidence of a lost registration.
    """
    granted = reg.granted_expiry_s if reg.granted_expiry_s else DEFAULT_EXPIRY_S
    since: float | None = None  # start of the current unbroken registered run
    expiry: float | None = None
    last_success: float | None = None
    first_failure: float | None = None  # first failure after the last success
    challenges = 0
    refused = False
    ended: RegistrationState | None = None  # last "unregistered"/"expired" event
    last_code: int | None = None
    events = _effective([e for e in reg.timeline if e.ts <= now], now, grace_s)
    if events and reg.last_success_ts is not None and reg.last_success_ts < events[0].ts:
        # A trimmed timeline (the live service's window) starts after the last 2xx: the binding
        # it granted still counts until its expiry.
        since = last_success = reg.last_success_ts
        expiry = reg.expiry_ts or reg.last_success_ts + granted
    for ev in events:
        if ev.state == "registered":
            if since is None or (expiry is not None and ev.ts > expiry + grace_s):
                since = ev.ts
            last_success, expiry = ev.ts, ev.ts + granted
            first_failure, challenges, last_code, refused, ended = None, 0, ev.code, False, None
        elif ev.state == "challenged":
            challenges += 1
            last_code = ev.code
            first_failure = first_failure if first_failure is not None else ev.ts
        elif ev.state == "failed":
            last_code = ev.code
            # The analyser marks a 401/407 to a REGISTER with credentials as "failed" (refused).
            refused = refused or ev.code in AUTH_CODES
            challenges += ev.code in AUTH_CODES
            first_failure = first_failure if first_failure is not None else ev.ts
        elif ev.state in ("expired", "unregistered"):
            # The binding ended on purpose (Expires: 0) or ran out; later failures still count.
            since, expiry, ended = None, None, ev
            first_failure, challenges, last_code, refused = None, 0, None, False
    if not events:
        # No timeline from the analyser: fall back to its summary fields.
        last_success, last_code = reg.last_success_ts, reg.last_code
        expiry = reg.expiry_ts or (last_success + granted if last_success is not None else None)
        since = last_success if reg.registered else None
        challenges = reg.challenges if last_success is None else 0
        if last_success is not None and last_success > now:
            last_success = expiry = since = None
    if expiry is not None and last_success is not None and since is not None and now < expiry + grace_s:
        return RegistrationOutcome(reg, ItspState.REGISTERED, since, f"registered at {reg.registrar}",
                                   expiry, last_success, challenges, last_code)
    if (expiry is not None and since is not None and first_failure is None and evidence_until is not None
            and evidence_until < expiry + grace_s):
        return RegistrationOutcome(reg, ItspState.UNKNOWN, evidence_until,
                                   f"registered at {reg.registrar} until {_hms(expiry)}; no evidence since "
                                   f"{_hms(evidence_until)} (capture or trace log silent)",
                                   expiry, last_success, challenges, last_code)
    failure = _failure_text(last_code if last_code and last_code >= 300 else None, challenges,
                            reg.unanswered if last_success is None or first_failure is not None else 0, refused)
    if expiry is not None and since is not None:
        # Was registered; the binding ran out at ``expiry`` without a refreshing 2xx.
        reason = f"registration expired without a refreshing 2xx; {failure}" if failure != "no successful REGISTER" \
            else "registration expired without a refreshing 2xx"
        return RegistrationOutcome(reg, ItspState.NOT_REGISTERED, expiry, reason, expiry, last_success,
                                   challenges, last_code, refused)
    if ended is not None and first_failure is None:
        what = "deregistered (REGISTER with Expires 0 accepted)" if ended.state == "unregistered" \
            else "registration expired"
        return RegistrationOutcome(reg, ItspState.NOT_REGISTERED, ended.ts, what, None, last_success, 0, None)
    start = first_failure if first_failure is not None else (events[0].ts if events else None)
    return RegistrationOutcome(reg, ItspState.NOT_REGISTERED, start, failure, None, last_success, challenges,
                               last_code, refused)


#: The Unify Phone connector's SIP/TLS port: without a site file or a named
#: connector, a registrar on this port is taken for the connector.
CONNECTOR_TLS_PORT = 65061


def _host_port(registrar: str) -> tuple[str, int | None]:
    host, sep, port = registrar.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        return registrar.strip("[]").lower(), None
    return host.strip("[]").lower(), int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_connector_registration(reg: RegistrationInfo, ep: Endpoints, named: bool) -> bool:
    """Is this registration the trunk to the Unify Phone connector?

    ``named``: the connector is known (the site file's, or one the user named): the REGISTERs
    must go to its address and port — to its port, or name its host in the AOR, when the site
    gives a host name rather than an address. Otherwise a registrar on the connector's TLS port
    65061 (or the default connector address) is taken for it. Everything else — a LAN
    registrar, an ITSP, a test account — is another registration, never "Unify Phone (Cloud)".
    """
    host, port = _host_port(reg.registrar)
    chost, cport = ep.connector[0].strip("[]").lower(), ep.connector[1]
    if named:
        if _is_ip(chost):
            return host == chost and port == cport
        domain = reg.aor.rsplit("@", 1)[-1].split(";", 1)[0].split(":", 1)[0].lower()
        return port == cport or domain == chost
    return port == CONNECTOR_TLS_PORT or (host == chost and port == cport)


def connector_registrations(registrations: tuple[RegistrationInfo, ...], ep: Endpoints,
                            has_site: bool) -> tuple[RegistrationInfo, ...]:
    """The registrations to the Unify Phone connector (``is_connector_registration``)."""
    named = has_site or ep.connector_named
    return tuple(r for r in registrations if is_connector_registration(r, ep, named))


def other_registrations(registrations: tuple[RegistrationInfo, ...], ep: Endpoints, has_site: bool, now: float,
                        grace_s: float = 0.0, evidence_until: float | None = None) -> tuple[OtherRegistration, ...]:
    """The registrations that are not the trunk to the connector, each judged at ``now``."""
    named = has_site or ep.connector_named
    out = []
    for r in registrations:
        if is_connector_registration(r, ep, named):
            continue
        o = evaluate_registration(r, now, grace_s, evidence_until)
        out.append(OtherRegistration(r.aor, r.registrar, r.client, o.state, o.since, o.reason))
    return tuple(out)


def _others_text(others: Sequence[OtherRegistration]) -> str:
    shown = "; ".join(f"{o.aor} at {o.registrar}: {o.state.value}" for o in others[:3])
    more = f"; … and {len(others) - 3} more" if len(others) > 3 else ""
    return f"{len(others)} other registration(s) ({shown}{more})"


def connector_lost(unanswered_syns: Sequence[Evidence], probes: Sequence[ProbeResult], connector: tuple[str, int],
                   last_success: float | None, probe_outage_s: float) -> tuple[float, str] | None:
    """Since when and why the connector counts as lost after the last 2xx, or None.

    A binding is held by the registrar until it expires, but the OSBiz's trunk is gone as soon as
    its connection is: the OSBiz's own SYNs to the connector beyond the connections that came up
    (reconnecting in vain), or one of the service's connector probes failing to connect (TCP or
    TLS) in every run for ``probe_outage_s`` — a probe lost now and then, or a connector that
    stalls for a few seconds, is no outage. Probes judge per module: a bare TCP connect that the
    kernel accepts does not prove the SIP service behind it answers.
    """
    if last_success is None:
        return None
    syns = [e.timestamp for e in unanswered_syns if e.timestamp is not None and e.timestamp > last_success]
    if syns:
        return min(syns), f"connector lost since {_hms(min(syns))}: TCP SYN unanswered"
    target = f"{connector[0]}:{connector[1]}"
    by_module: dict[str, list[ProbeResult]] = {}
    for p in sorted(probes, key=lambda p: p.ts):
        if p.target == target and p.probe in TCP_PROBES and p.ts > last_success:
            by_module.setdefault(p.probe, []).append(p)
    for module, results in sorted(by_module.items()):
        run: list[ProbeResult] = []
        for p in results:
            run = [*run, p] if probe_failed_at_connect(p) else []
        if len(run) >= 2 and run[-1].ts - run[0].ts >= probe_outage_s:
            return run[0].ts, f"connector {target} lost since {_hms(run[0].ts)}: probe {module} failing " \
                              f"({run[-1].reason})"
    return None


def derive_itsp_status(
    site: Site | None,
    registrations: tuple[RegistrationInfo, ...],
    ep: Endpoints,
    sip_verdict: FlowVerdict | None,
    now: float,
    grace_s: float = 0.0,
    evidence_until: float | None = None,
    unanswered_syns: Sequence[Evidence] = (),
    probes: Sequence[ProbeResult] = (),
    probe_outage_s: float = 60.0,
) -> ItspStatus:
    """The ITSP status at ``now`` from the site, the REGISTER outcomes and the SIP/TLS flow verdict
    (which already folds in the probes of the connector)."""
    if site is not None and site.connectivity.enabled is False:
        return ItspStatus(ItspState.DISABLED, None, "connectivity.enabled is false in the site file")
    outcomes = [evaluate_registration(r, now, grace_s, evidence_until)
                for r in connector_registrations(registrations, ep, site is not None)]
    registered = [o for o in outcomes if o.state is ItspState.REGISTERED]
    if registered:
        best = max(registered, key=lambda o: o.last_success_ts or 0.0)
        lost = connector_lost(unanswered_syns, probes, ep.connector, best.last_success_ts, probe_outage_s)
        if lost is not None:
            return ItspStatus(ItspState.NOT_REGISTERED, lost[0], lost[1], best.registration.registrar,
                              best.expiry_ts, best.last_success_ts)
        return ItspStatus(ItspState.REGISTERED, best.since, best.reason, best.registration.registrar,
                          best.expiry_ts, best.last_success_ts)
    if outcomes:
        last = max(outcomes, key=lambda o: (o.since or 0.0))
        reason = last.reason
        if last.state is ItspState.NOT_REGISTERED and sip_verdict is not None \
                and sip_verdict.verdict is Verdict.BLOCKED:
            reason = f"{reason}; {sip_verdict.reason} to {sip_verdict.destination}"
        return ItspStatus(last.state, last.since, reason, last.registration.registrar,
                          last.expiry_ts, last.last_success_ts)
    if sip_verdict is not None and sip_verdict.verdict is Verdict.BLOCKED:
        stamps = [e.timestamp for e in sip_verdict.evidence if e.timestamp is not None]
        return ItspStatus(ItspState.NOT_REGISTERED, min(stamps) if stamps else None,
                          f"{sip_verdict.reason} to {sip_verdict.destination}", sip_verdict.destination)
    others = other_registrations(registrations, ep, site is not None, now, grace_s, evidence_until)
    if others:
        return ItspStatus(ItspState.UNKNOWN, None,
                          f"no registration to a Unify Phone connector seen; {_others_text(others)}")
    if sip_verdict is not None and sip_verdict.verdict is Verdict.WORKING:
        return ItspStatus(ItspState.UNKNOWN, None,
                          f"connector {sip_verdict.destination} reachable but no REGISTER seen "
                          "(encrypted without a key log or trace log?)", sip_verdict.destination)
    return ItspStatus(ItspState.UNKNOWN, None, "no REGISTER, connection or probe to the connector observed")
