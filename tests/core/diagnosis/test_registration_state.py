"""The registration state that outlives the live window: the ledger, the grace after expiry, silent
evidence (unknown, not "expired") and a connector lost after the last 2xx."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime

from diag_builders import CONNECTOR, CPORT, OSBIZ, T0, analysis, reg_ok, site, tls_ok
from hypothesis import given, settings
from hypothesis import strategies as st

from core.analysis import FlowInfo, RegistrationInfo, RegistrationState
from core.diagnosis import DiagnosisInputs, diagnose
from core.diagnosis.itsp import evaluate_registration
from core.probes import ProbeResult
from core.registrations import MAX_EVENTS, RegistrationLedger
from core.snapshot import ItspState


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def view(reg: RegistrationInfo, since: float, until: float) -> RegistrationInfo:
    """What one analysis cycle of the service sees of ``reg``: its events in [since, until]."""
    timeline = tuple(e for e in reg.timeline if since <= e.ts <= until)
    successes = [e.ts for e in timeline if e.state == "registered"]
    last = max(successes) if successes else None
    return dataclasses.replace(reg, timeline=timeline, last_success_ts=last,
                               expiry_ts=last + reg.granted_expiry_s if last and reg.granted_expiry_s else None,
                               registered=last is not None)


def refreshed(granted: int, periods: int) -> RegistrationInfo:
    """A healthy trunk: 401 → 200 at T0, then a refresh (401 → 200) every granted/2 seconds."""
    tl: list[RegistrationState] = []
    for i in range(periods):
        t = T0 + i * granted / 2
        tl += [RegistrationState(t, 10 * i, "trying", None), RegistrationState(t + 0.02, 10 * i + 1, "challenged", 401),
               RegistrationState(t + 0.05, 10 * i + 3, "registered", 200)]
    return dataclasses.replace(reg_ok(granted=granted), timeline=tuple(tl), last_success_ts=tl[-1].ts,
                               expiry_ts=tl[-1].ts + granted)


def live_state(ledger: RegistrationLedger, now: float, evidence_until: float) -> ItspState:
    d = diagnose(DiagnosisInputs(site=site(), analysis=analysis(registrations=(), last_ts=evidence_until),
                                 registrations=ledger.registrations(), now=datetime.fromtimestamp(now, UTC)))
    return d.itsp.state


def test_a_registration_outlives_the_window_that_held_its_register() -> None:
    """Expires 120 s, refresh at half, a 60-s window analysed every 5 s for three refresh periods:
    registered in every cycle, although most cycles hold no REGISTER at all."""
    reg = refreshed(120, 6)
    ledger = RegistrationLedger()
    states = []
    for t in range(0, 300, 5):
        now = T0 + t + 1
        ledger.merge([v] if (v := view(reg, now - 60, now)).timeline else [])
        states.append(live_state(ledger, now, now))
    assert states[0] is ItspState.REGISTERED
    assert set(states) == {ItspState.REGISTERED}
    assert len(ledger) == 1


def test_the_window_alone_would_have_lost_it() -> None:
    """The defect the ledger fixes: the window's analysis of a healthy trunk without a REGISTER."""
    d = diagnose(DiagnosisInputs(site=site(), analysis=analysis(registrations=(), tls_flows=(tls_ok(),)),
                                 now=at(100)))
    assert d.itsp.state is ItspState.UNKNOWN


def test_expiry_then_grace_then_not_registered_when_evidence_covers_it() -> None:
    reg = reg_ok(refreshes=1, granted=120)  # 2xx at T0 + 0.05
    ledger = RegistrationLedger()
    ledger.merge([reg])
    assert live_state(ledger, T0 + 130, T0 + 130) is ItspState.REGISTERED  # inside the 30-s grace
    assert live_state(ledger, T0 + 151, T0 + 151) is ItspState.NOT_REGISTERED


def test_silent_evidence_after_expiry_is_unknown_not_expired() -> None:
    """The trace log stopped at T0 + 100 (a stalled source): past the expiry nothing says whether a
    refresh came, so the status is unknown with the reason — never a false "not registered"."""
    reg = reg_ok(refreshes=1, granted=120)
    outcome = evaluate_registration(reg, T0 + 400, 30.0, evidence_until=T0 + 100)
    assert outcome.state is ItspState.UNKNOWN
    assert "no evidence since" in outcome.reason and outcome.since == T0 + 100
    assert evaluate_registration(reg, T0 + 400, 30.0, evidence_until=T0 + 399).state is ItspState.NOT_REGISTERED


def test_a_late_refresh_within_the_grace_keeps_the_run_unbroken() -> None:
    reg = reg_ok(refreshes=1, granted=60)
    tl = (*reg.timeline, RegistrationState(T0 + 60.05, 0, "expired", None),
          RegistrationState(T0 + 70, 40, "registered", 200))
    late = dataclasses.replace(reg, timeline=tl, last_success_ts=T0 + 70, expiry_ts=T0 + 130)
    outcome = evaluate_registration(late, T0 + 80, 30.0)
    assert outcome.state is ItspState.REGISTERED and outcome.since == T0 + 0.05
    # Without a grace the same refresh starts a new run.
    assert evaluate_registration(late, T0 + 80, 0.0).since == T0 + 70


def test_deregistration_and_403_change_the_state_at_once() -> None:
    reg = reg_ok(refreshes=1, granted=600)
    gone = dataclasses.replace(reg, timeline=(*reg.timeline, RegistrationState(T0 + 50, 30, "unregistered", 200)))
    assert evaluate_registration(gone, T0 + 51, 30.0).state is ItspState.NOT_REGISTERED
    refused = dataclasses.replace(reg, timeline=(*reg.timeline, RegistrationState(T0 + 300, 31, "failed", 403)))
    # The binding itself lasts until its expiry (RFC 3261 §10.2.4), the failure is remembered after.
    assert evaluate_registration(refused, T0 + 301, 30.0).state is ItspState.REGISTERED
    after = evaluate_registration(refused, T0 + 631, 30.0, evidence_until=T0 + 400)
    assert after.state is ItspState.NOT_REGISTERED and "403" in after.reason


def test_syns_unanswered_after_the_last_2xx_lose_the_connector_at_once() -> None:
    """The OSBiz reconnecting in vain after its last 2xx: the trunk is down although the binding's
    expiry is minutes away."""
    a = analysis(
        registrations=(reg_ok(refreshes=1, granted=600),),
        tls_flows=(tls_ok(),),
        flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 40, 3000, T0 - 1, T0 + 90, syn=8, syn_ack=1, first_frame=1),),
    )
    d = diagnose(DiagnosisInputs(site=site(), analysis=a, now=at(95)))
    assert d.itsp.state is ItspState.NOT_REGISTERED and "lost" in d.itsp.reason
    assert "itsp.not-registered.firewall" in {f.id for f in d.findings}


def _probe(ts: float, ok: bool) -> ProbeResult:
    return ProbeResult(probe="sip_options_tls", target=f"{CONNECTOR}:{CPORT}", ts=ts, success=ok,
                       reason="" if ok else "TLS handshake timed out", duration_s=0.1,
                       details={} if ok else {"failed_phase": "tls"})


def test_probe_failures_must_span_the_outage_time() -> None:
    reg = reg_ok(refreshes=1, granted=600)
    a = analysis(registrations=(reg,), flows=(), tls_flows=())

    def state(*probes: ProbeResult) -> ItspState:
        return diagnose(DiagnosisInputs(site=site(), analysis=a, probes=probes, now=at(100))).itsp.state

    assert state(_probe(T0 + 30, False)) is ItspState.REGISTERED
    # A 45-s stall of the connector (probes every 15 s): no outage yet.
    assert state(*(_probe(T0 + t, False) for t in (30, 45, 60, 75))) is ItspState.REGISTERED
    assert state(*(_probe(T0 + t, False) for t in (30, 45, 60, 75, 90))) is ItspState.NOT_REGISTERED
    assert state(*(_probe(T0 + t, False) for t in (30, 45, 60, 75)), _probe(T0 + 90, True)) is ItspState.REGISTERED


def test_ledger_deduplicates_cycles_and_refutes_a_cycles_premature_expiry() -> None:
    reg = refreshed(60, 4)
    ledger = RegistrationLedger()
    ledger.merge([view(reg, T0 - 1, T0 + 20)])
    ledger.merge([view(reg, T0 - 1, T0 + 20)])  # the same span again: nothing doubles
    premature = dataclasses.replace(view(reg, T0 - 1, T0 + 20),
                                    timeline=(*view(reg, T0 - 1, T0 + 20).timeline,
                                              RegistrationState(T0 + 60.05, 0, "expired", None)))
    ledger.merge([premature, view(reg, T0 + 20, T0 + 100)])
    (merged,) = ledger.registrations()
    assert [e.state for e in merged.timeline].count("registered") == 4  # T0, +30, +60, +90
    assert all(e.state != "expired" for e in merged.timeline)
    assert evaluate_registration(merged, T0 + 100, 30.0).state is ItspState.REGISTERED


def test_ledger_is_bounded_and_survives_a_restart() -> None:
    reg = refreshed(60, MAX_EVENTS)  # 3 events per refresh: three times the bound
    ledger = RegistrationLedger()
    for i in range(0, MAX_EVENTS * 30, 300):
        ledger.merge([view(reg, T0 + i, T0 + i + 300)])
    (merged,) = ledger.registrations()
    assert len(merged.timeline) == MAX_EVENTS
    restored = RegistrationLedger.from_rows(ledger.to_rows())
    assert restored.registrations() == ledger.registrations()
    assert len(RegistrationLedger.from_rows([{"aor": "x"}, {"timeline": "junk"}])) == 0


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), min_size=1, max_size=12), shuffle=st.randoms(use_true_random=False))
def test_any_cycling_of_the_evidence_gives_the_same_state(cuts: list[int], shuffle) -> None:  # type: ignore[no-untyped-def]
    """However the service's cycles slice the evidence, and in whatever order they arrive, the
    ledger reaches the state of the whole evidence at once."""
    reg = refreshed(120, 6)
    bounds = sorted({0, 330, *cuts})
    views = [view(reg, T0 + a - 1, T0 + b) for a, b in itertools.pairwise(bounds)]
    shuffle.shuffle(views)
    ledger = RegistrationLedger()
    ledger.merge([v for v in views if v.timeline])
    for now in (T0 + 10, T0 + 200, T0 + 330, T0 + 420):
        (merged,) = ledger.registrations()
        assert evaluate_registration(merged, now, 30.0).state is evaluate_registration(reg, now, 30.0).state
