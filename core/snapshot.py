"""The Snapshot: everything upscope knows about one site at one moment, fully typed.

One producer builds it (``collectors.producer.build_snapshot``) — for the live service every few
seconds, for the offline commands once — and every face only renders it: the CLI, ``/metrics``,
``/api/snapshot`` and the dashboard. Whatever a face shows is a field here, judged once: the ITSP
status, the findings (with since when they are open), the firewall verdicts, the JWT state, the
licences and call numbers, the trunk lines, the media verdict, probes, collectors and the running
totals behind the Prometheus counters.

``snapshot_to_dict`` is its JSON form (``SNAPSHOT_SCHEMA``, documented in docs/snapshot-json.md).
Secrets never appear: the site in its public form (secret references, no values), the JWT as
status and fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.analysis import AnalysisResult, to_jsonable
from core.findings import Finding
from core.firewall import FlowVerdict
from core.jwt_status import JwtState
from core.licensing import LicenseReport
from core.numbering import UserNumber
from core.probes import ProbeResult
from core.site.model import Site

SNAPSHOT_SCHEMA = "upscope.snapshot/2"


class ItspState(StrEnum):
    """ITSP status of "Unify Phone (Cloud)" as the OSBiz Service Center shows it (its exact
    strings are unconfirmed, hence the mapping in ``ITSP_LABELS``)."""

    REGISTERED = "registered"
    NOT_REGISTERED = "not-registered"
    UNKNOWN = "unknown"
    DISABLED = "disabled"


ITSP_LABELS: dict[ItspState, tuple[str, str]] = {
    # state → (English label, German label of the OSBiz Assistant)
    ItspState.REGISTERED: ("Registered", "Registriert"),
    ItspState.NOT_REGISTERED: ("Not registered", "Nicht registriert"),
    ItspState.UNKNOWN: ("Unknown", "Unbekannt"),
    ItspState.DISABLED: ("Disabled", "Deaktiviert"),
}


@dataclass(frozen=True, slots=True)
class ItspStatus:
    state: ItspState
    since: float | None  # UNIX seconds of the last state change, when known
    reason: str  # why (e.g. "TCP SYN to 35.246.178.13:65061 unanswered")
    registrar: str | None = None
    expiry_ts: float | None = None
    last_success_ts: float | None = None

    @property
    def label(self) -> str:
        return ITSP_LABELS[self.state][0]

    @property
    def label_de(self) -> str:
        return ITSP_LABELS[self.state][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "label": self.label,
            "label_de": self.label_de,
            "since": self.since,
            "reason": self.reason,
            "registrar": self.registrar,
            "expiry_ts": self.expiry_ts,
            "last_success_ts": self.last_success_ts,
        }


@dataclass(frozen=True, slots=True)
class OtherRegistration:
    """A registration seen that is not the trunk to the Unify Phone connector (a LAN registrar,
    another ITSP, a test account), with its state."""

    aor: str
    registrar: str
    client: str
    state: ItspState
    since: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"aor": self.aor, "registrar": self.registrar, "client": self.client, "state": self.state.value,
                "since": self.since, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CollectorStatus:
    name: str
    up: bool
    reason: str
    last_run_ts: float | None


@dataclass(frozen=True, slots=True)
class OpenFinding:
    """A finding and since when it is open (the live service's first sighting; offline: the
    earliest evidence timestamp, when the finding has one)."""

    finding: Finding
    since: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.finding.to_dict(), "since": self.since}


@dataclass(frozen=True, slots=True)
class Histogram:
    """A cumulative histogram as Prometheus exposes it: ``counts[i]`` observations ≤ ``bounds[i]``."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"buckets": {repr(b): n for b, n in zip(self.bounds, self.counts, strict=True)},
                "sum": self.sum, "count": self.count}


@dataclass(frozen=True, slots=True)
class Totals:
    """Monotonic totals behind the Prometheus counters and histograms: the live service counts
    each call, stream and response once although its window sees them again and again; offline
    they are the totals of the analysis."""

    calls: dict[str, int]  # completed calls by state
    sip_responses: dict[str, int]  # "METHOD CODE" → responses
    rtp_streams: int
    rtp_packets_lost: int
    one_way_audio_calls: int
    keepalive_rtt_seconds: Histogram
    call_setup_seconds: Histogram
    rtp_jitter_seconds: Histogram
    rtp_mos: Histogram

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls), "sip_responses": dict(self.sip_responses), "rtp_streams": self.rtp_streams,
            "rtp_packets_lost": self.rtp_packets_lost, "one_way_audio_calls": self.one_way_audio_calls,
            "histograms": {name: getattr(self, name).to_dict() for name in HISTOGRAMS},
        }


HISTOGRAMS = ("keepalive_rtt_seconds", "call_setup_seconds", "rtp_jitter_seconds", "rtp_mos")


class Verdict(StrEnum):
    """How an Overview figure stands; the faces only colour it."""

    OK = "ok"
    WARN = "warn"
    BAD = "bad"
    NONE = "none"  # nothing to judge (no site file, no streams …)


@dataclass(frozen=True, slots=True)
class TrunkLines:
    configured: int | None  # connectivity.simultaneous_calls; None without a site file
    used: int  # calls holding a line now (answered and not ended, ringing, in progress)
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class MediaSummary:
    """The media verdict of the streams in view, judged once with the rules' thresholds: a call
    whose other direction never arrived is one-way audio, and has no MOS to show."""

    streams: int
    one_way_calls: tuple[str, ...]  # Call-IDs of calls with one-way audio
    worst_mos: float | None  # over streams of two-way calls
    loss_pct: float  # lost / expected over all streams
    verdict: Verdict
    reason: str


@dataclass(frozen=True, slots=True)
class SupportState:
    until: str | None  # ISO date of the last valid day
    days_left: int | None  # negative once expired
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float  # when the site file, licences and JWT were judged
    evidence_until: float | None  # the last packet / trace line the evidence reaches
    system: str
    itsp: ItspStatus
    findings: tuple[OpenFinding, ...]
    firewall: tuple[FlowVerdict, ...] = ()
    other_registrations: tuple[OtherRegistration, ...] = ()  # registrations that are not the trunk
    jwt: JwtState | None = None
    jwt_required: bool = False  # Unify Video flavour
    licenses: LicenseReport | None = None
    support: SupportState = SupportState(None, None, Verdict.NONE)
    numbering: tuple[UserNumber, ...] = ()
    trunk: TrunkLines = TrunkLines(None, 0, Verdict.NONE)
    media: MediaSummary = MediaSummary(0, (), None, 0.0, Verdict.NONE, "no RTP streams seen")
    analysis: AnalysisResult | None = None
    site: Site | None = None
    site_error: str = ""
    probes: tuple[ProbeResult, ...] = ()
    collectors: tuple[CollectorStatus, ...] = ()
    totals: Totals | None = None
    sources: tuple[str, ...] = field(default=())

    @property
    def finding_list(self) -> tuple[Finding, ...]:
        return tuple(f.finding for f in self.findings)


def snapshot_to_dict(snap: Snapshot) -> dict[str, Any]:
    """The JSON shape of a Snapshot: what ``/api/snapshot`` serves, ``diagnose --format json``
    prints and the dashboard reads (docs/snapshot-json.md)."""
    return {
        "schema": SNAPSHOT_SCHEMA,
        "now": snap.now,
        "evidence_until": snap.evidence_until,
        "system": snap.system,
        "sources": list(snap.sources),
        "itsp_status": snap.itsp.to_dict(),
        "other_registrations": [o.to_dict() for o in snap.other_registrations],
        "findings": [f.to_dict() for f in snap.findings],
        "firewall": [v.to_dict() for v in snap.firewall],
        "jwt": {**snap.jwt.to_dict(), "required": snap.jwt_required} if snap.jwt is not None
        else {"status": "Not set", "required": snap.jwt_required},
        "licenses": _licenses(snap.licenses) if snap.licenses is not None else None,
        "software_support": to_jsonable(snap.support),
        "numbering": [_number(n) for n in snap.numbering],
        "trunk_lines": to_jsonable(snap.trunk),
        "media": to_jsonable(snap.media),
        "analysis": to_jsonable(snap.analysis) if snap.analysis is not None else None,
        "site": snap.site.to_public_dict() if snap.site is not None else None,
        "site_error": snap.site_error,
        "probes": [p.to_dict() for p in snap.probes],
        "collectors": [to_jsonable(c) for c in snap.collectors],
        "totals": snap.totals.to_dict() if snap.totals is not None else None,
    }


def _licenses(report: LicenseReport) -> dict[str, Any]:
    return {**report.to_dict(),
            "users": [{"index": u.index, "callno": u.callno, **u.to_dict()} for u in report.users]}


def _number(n: UserNumber) -> dict[str, Any]:
    return {"index": n.index, "callno": n.callno, "schema": n.schema, "derived": n.derived, "source": n.source,
            "team": n.team, "configured": n.configured, "verdict": n.verdict,
            "problems": [p.value for p in n.problems], "detail": n.detail}
