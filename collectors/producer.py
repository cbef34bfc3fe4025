"""The one producer of Snapshots: ``build_snapshot(inputs, now)``.

Theory of operation. Everything a face shows is judged here, once: the diagnosis (ITSP status,
findings, firewall verdicts, the JWT in use), the licences and call numbers of the site, the
Software Support state, the trunk lines in use, the media verdict and the running totals. The
live service calls it every cycle with its live inputs (the window's analysis, the registration
ledger, the probe history, its running totals) and then applies its hold-down and history; the
offline commands (``diagnose``, ``firewall``, ``bundle``, ``analyze --site``) and the dashboard's
capture mode load their inputs with ``load_inputs`` and call it once. No face runs a rule.

Times. The site file, its licences and the JWT are judged *now* (the clock, or ``--now``); the
evidence of captures and trace logs as of its last packet (or ``--now``): an old capture still
says whether its trunk was registered, and a Software Support that ended yesterday is expired
whatever capture comes with it. Live, both are the clock. ``judgement_times`` is that rule.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from collectors.runtime.totals import STREAM_IDLE_S, RunningTotals
from core.analysis import AnalysisResult, RegistrationInfo
from core.diagnosis import Diagnosis, DiagnosisInputs, DiagnosisOptions, diagnose
from core.findings import Finding
from core.gcp_ranges import default_gcp_ranges
from core.licensing import evaluate_licenses
from core.numbering import derive_all
from core.probes import ProbeResult
from core.site.model import Site
from core.snapshot import (
    CollectorStatus,
    MediaSummary,
    OpenFinding,
    Snapshot,
    SupportState,
    Totals,
    TrunkLines,
    Verdict,
)

#: The rule for "now", as the offline commands state it in their --help.
NOW_HELP = ("Judge at this ISO 8601 time (no zone = UTC). Default: the site file, licences and JWT "
            "as of now, captures and trace logs as of their last packet.")

#: Software Support ending within this many days is a warning on the Overview.
SUPPORT_WARN_DAYS = 30


@dataclass(frozen=True, slots=True)
class Inputs:
    """What one Snapshot is built from. ``jwt_text`` is a secret: never logged or shown."""

    site: Site | None = None
    site_error: str = ""
    analysis: AnalysisResult | None = None
    probes: tuple[ProbeResult, ...] = ()  # results of the probes, oldest first (live: the recent ones)
    jwt_text: str | None = field(default=None, repr=False)
    options: DiagnosisOptions = field(default_factory=DiagnosisOptions)
    #: Live only: the registration ledger (outlives the window) and how far the evidence reaches.
    registrations: tuple[RegistrationInfo, ...] | None = None
    evidence_until: float | None = None
    collectors: tuple[CollectorStatus, ...] = ()
    totals: Totals | None = None  # live: the service's running totals; None = the analysis's own
    sources: tuple[str, ...] = ()


def judgement_times(now: datetime | None, analysis: AnalysisResult | None) -> tuple[float, float]:
    """(when the site is judged, when the evidence is judged) for an offline run: ``now`` for both
    when given (naive = UTC), else the clock for the site and the last packet for the evidence."""
    if now is not None:
        ts = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).timestamp()
        return ts, ts
    clock = time.time()
    last = analysis.last_ts if analysis is not None else None
    return clock, last if last is not None and _representable(last) else clock


def _representable(ts: float) -> bool:
    try:
        datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return False
    return True


def build_snapshot(inputs: Inputs, now: float, evidence_at: float | None = None) -> Snapshot:
    """The Snapshot of ``inputs``: the site judged at ``now``, the evidence at ``evidence_at``
    (default ``now``)."""
    at = now if evidence_at is None else evidence_at
    latest = _latest_per_probe(inputs.probes)
    diag = diagnose(DiagnosisInputs(
        site=inputs.site, analysis=inputs.analysis, probes=latest, probe_history=inputs.probes,
        jwt_token_text=inputs.jwt_text,
        now=datetime.fromtimestamp(at, UTC), site_now=datetime.fromtimestamp(now, UTC), options=inputs.options,
        registrations=inputs.registrations, evidence_until=inputs.evidence_until,
    ))
    site = inputs.site
    site_at = datetime.fromtimestamp(now, UTC)
    return Snapshot(
        now=now,
        evidence_until=at if inputs.analysis is not None or inputs.evidence_until is not None else None,
        system=site.system.name if site is not None else _name_of(inputs.sources),
        itsp=diag.itsp,
        findings=tuple(OpenFinding(f, _first_evidence(f)) for f in diag.findings),
        firewall=diag.firewall,
        other_registrations=diag.other_registrations,
        jwt=diag.jwt,
        jwt_required=site is not None and site.tenant.flavour == "unify-video",
        licenses=evaluate_licenses(site, site_at) if site is not None else None,
        support=support_state(site, site_at),
        numbering=derive_all(site) if site is not None else (),
        trunk=trunk_lines(site, inputs.analysis),
        media=media_summary(inputs.analysis, diag, inputs.options),
        analysis=inputs.analysis,
        site=site,
        site_error=inputs.site_error,
        probes=latest,
        collectors=inputs.collectors,
        totals=inputs.totals if inputs.totals is not None else totals_of(inputs.analysis, at),
        sources=inputs.sources or (inputs.analysis.sources if inputs.analysis is not None else ()),
    )


def _name_of(sources: Sequence[str]) -> str:
    return Path(sources[0]).name if sources else "unknown"


def _first_evidence(f: Finding) -> float | None:
    stamps = [e.timestamp for e in f.evidence if e.timestamp is not None]
    return min(stamps) if stamps else None


def _latest_per_probe(probes: Sequence[ProbeResult]) -> tuple[ProbeResult, ...]:
    latest: dict[tuple[str, str], ProbeResult] = {}
    for p in sorted(probes, key=lambda p: p.ts):
        latest[(p.probe, p.target)] = p
    return tuple(latest.values())


def support_state(site: Site | None, at: datetime) -> SupportState:
    until = site.licenses.software_support_until if site is not None else None
    if until is None:
        return SupportState(None, None, Verdict.NONE)
    days = (until - at.astimezone(UTC).date()).days
    verdict = Verdict.BAD if days < 0 else Verdict.WARN if days <= SUPPORT_WARN_DAYS else Verdict.OK
    return SupportState(until.isoformat(), days, verdict)


def _holding_line(state: str, answered: bool, end_ts: float | None) -> bool:
    return state in ("in-progress", "ringing") or (answered and end_ts is None)


def trunk_lines(site: Site | None, analysis: AnalysisResult | None) -> TrunkLines:
    used = sum(1 for c in analysis.calls if _holding_line(c.state, c.answered, c.end_ts)) if analysis else 0
    configured = site.connectivity.simultaneous_calls if site is not None else None
    if configured is None:
        return TrunkLines(None, used, Verdict.NONE)
    return TrunkLines(configured, used, Verdict.BAD if configured == 0 or used >= configured else Verdict.OK)


def media_summary(analysis: AnalysisResult | None, diag: Diagnosis, options: DiagnosisOptions) -> MediaSummary:
    """Streams judged with the rules' thresholds; calls with one-way audio (the finding's calls and
    the analyser's flag, which agree) are bad whatever the MOS of the direction that arrived."""
    streams = analysis.rtp_streams if analysis is not None else ()
    if not streams:
        return MediaSummary(0, (), None, 0.0, Verdict.NONE, "no RTP streams seen")
    one_way = {e.call_id for f in diag.findings if f.id == "media.one-way-audio" for e in f.evidence if e.call_id}
    one_way |= {c.call_id for c in analysis.calls if c.one_way_audio} if analysis is not None else set()
    moses = [s.mos for s in streams if s.mos is not None and s.call_id not in one_way]
    worst = min(moses) if moses else None
    expected = sum(max(0, s.expected) for s in streams)
    lost = sum(max(0, s.lost) for s in streams)
    loss = 100.0 * lost / expected if expected else 0.0
    if one_way:
        verdict, reason = Verdict.BAD, f"one-way audio on {len(one_way)} call(s)"
    elif (worst is not None and worst < options.min_mos) or loss > options.max_loss_pct:
        verdict, reason = Verdict.WARN, f"worst MOS {worst:.2f}, loss {loss:.1f} %" if worst is not None \
            else f"loss {loss:.1f} %"
    else:
        verdict, reason = Verdict.OK, f"{len(streams)} streams, loss {loss:.1f} %"
    return MediaSummary(len(streams), tuple(sorted(one_way)), worst, loss, verdict, reason)


def totals_of(analysis: AnalysisResult | None, at: float) -> Totals:
    """The totals of one analysis (offline): every item counted once, as the service would."""
    running = RunningTotals(forget_after_s=float("inf"))
    if analysis is not None:
        running.observe(analysis, max(at, analysis.last_ts or at) + STREAM_IDLE_S)
    return running.snapshot()


# --------------------------------------------------------------------------- offline inputs


@dataclass(frozen=True, slots=True)
class OfflineFiles:
    """The evidence files of an offline run (the CLI options, an upload, ``--capture``)."""

    site: Path | None = None
    captures: tuple[Path, ...] = ()
    trace_log: Path | None = None
    keylog: Path | None = None
    jwt_file: Path | None = None
    gcp_ranges: Path | None = None
    tls_ports: tuple[int, ...] = ()  # SIP/TLS server ports besides the site's connector port


def load_inputs(files: OfflineFiles, options: DiagnosisOptions = DiagnosisOptions()) -> Inputs:
    """Load the site, the JWT, the GCP ranges and analyse the captures and trace log: the inputs
    of ``build_snapshot`` for every offline face. Unusable input raises ``UpscopeError``."""
    from collectors.inputs import analyse, load_gcp_ranges_file, load_site_file, read_jwt_file

    site = load_site_file(files.site)
    gcp = load_gcp_ranges_file(files.gcp_ranges, site, files.site)
    # Without a file of the user's, the copy shipped with upscope (every face names it).
    options = replace(options, gcp_ranges=gcp if gcp is not None else default_gcp_ranges())
    ports = files.tls_ports + ((site.endpoints.connector.port,) if site is not None else ())
    ports += (options.connector[1],) if options.connector is not None else ()
    analysis = analyse([*files.captures, *([files.trace_log] if files.trace_log else [])], files.keylog, ports)
    return Inputs(site=site, analysis=analysis, jwt_text=read_jwt_file(files.jwt_file), options=options,
                  sources=analysis.sources if analysis is not None else ())
