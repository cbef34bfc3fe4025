"""Inputs, options and the one context every rule reads (``RuleContext``, ``Rule``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.analysis import AnalysisResult, RegistrationInfo
from core.findings import Finding
from core.firewall import Endpoints, FlowVerdict
from core.gcp_ranges import GcpRanges
from core.jwt_status import JwtState
from core.probes import ProbeResult
from core.site.model import Site
from core.snapshot import ItspStatus

#: SIP response codes the PBX rejects an INVITE with, mapped to the FAQ cause ("No calls with the Unify Phone client" in docs/findings.md).
#: The OSBiz's exact codes are not documented; these are the ones the lab's PBX side
#: uses (``core/lab``), kept as an option so a site can map what its OSBiz really sends. The Q.850
#: cause in a ``Reason`` header, when present, wins over the status code (``CALL_REJECT_CAUSES``).
DEFAULT_CALL_REJECT_REASONS: tuple[tuple[str, str], ...] = (
    # (lower-case phrase in the reason phrase or Reason header text, finding id); first match wins.
    # Phrases are specific on purpose: Q.850 texts such as "No route to destination" or
    # "Unallocated number" are ordinary rejections, not FAQ causes.
    ("license", "calls.license-missing"),
    ("route flag", "calls.route-flag-off"),
    ("trusted external user", "calls.not-trusted-external-user"),
    ("trusted-external-user", "calls.not-trusted-external-user"),
    ("numbering plan", "calls.numbering-mismatch"),
    ("number does not match", "calls.numbering-mismatch"),
)

#: Codes that mean "no line free" when the trunk is at its limit (RFC 3261 486 Busy Here, 503
#: Service Unavailable; Q.850 cause 34 "no circuit/channel available").
BUSY_CODES = frozenset({486, 503})
BUSY_Q850 = frozenset({34})


@dataclass(frozen=True, slots=True)
class DiagnosisOptions:
    """Thresholds of the evidence rules (all configurable; defaults documented per field)."""

    max_loss_pct: float = 3.0  # packet loss of a stream beyond this is poor quality
    max_jitter_ms: float = 30.0  # mean interarrival jitter (RFC 3550 A.8) beyond this
    min_mos: float = 3.6  # E-model MOS below this (G.107; 3.6 ≈ "some users dissatisfied")
    min_stream_packets: int = 50  # shorter streams (1 s of 20-ms packets) are not judged
    one_way_min_s: float = 2.0  # an answered call must last this long before one-way audio counts
    one_way_silence_s: float = 5.0  # one side silent this long while the other keeps sending
    auth_challenge_loop: int = 2  # this many 401/407 in a row without a 2xx is an auth failure
    #: A binding still counts this long after its granted expiry: a refresh that is late or read
    #: late (the service reads its sources every few seconds) is no lost registration.
    registration_grace_s: float = 30.0
    #: Connector probes failing (with no capture evidence) must span this long before a
    #: registered trunk counts as lost: a probe lost now and then, or a connector that stalls
    #: for a few seconds, is no outage.
    probe_outage_s: float = 60.0
    call_reject_reasons: tuple[tuple[str, str], ...] = DEFAULT_CALL_REJECT_REASONS
    gcp_ranges: GcpRanges | None = None
    osbiz_https_ports: tuple[int, ...] = (443,)  # where the OSBiz's inbound HTTPS would answer
    #: The connector the user named (``--connector HOST:PORT``): overrides the site file's, and
    #: without a site makes registrations to it the trunk instead of any registrar on 65061.
    connector: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class DiagnosisInputs:
    """Everything the engine looks at. ``jwt_token_text`` is a secret: never logged or shown."""

    site: Site | None = None  # None = no site file
    analysis: AnalysisResult | None = None
    probes: tuple[ProbeResult, ...] = ()
    jwt_token_text: str | None = field(default=None, repr=False)
    now: datetime | None = None
    options: DiagnosisOptions = DiagnosisOptions()
    #: Earlier results of the probes (oldest first), for outages that must last: the rules judge
    #: ``probes``, the latest result of each probe, only.
    probe_history: tuple[ProbeResult, ...] = ()
    #: When the site file, its licences and the JWT are judged; None = ``now``. Offline, the site
    #: is judged at the clock while an old capture's evidence is judged at its own end.
    site_now: datetime | None = None
    #: The registration state when it outlives ``analysis`` (the live service's ledger: its window
    #: analysis no longer holds a REGISTER from minutes ago); None = the analysis's registrations.
    registrations: tuple[RegistrationInfo, ...] | None = None
    #: Until when the evidence reaches (the last packet or trace line read); None = the analysis's
    #: last packet. After a registration's expiry, silence up to here is no proof it lapsed.
    evidence_until: float | None = None
    #: Resolves ``env:`` secrets of the site (None = the process environment).
    environ: Mapping[str, str] | None = field(default=None, repr=False)

    def site_now_ts(self) -> float:
        if self.site_now is None:
            return self.now_ts()
        at = self.site_now if self.site_now.tzinfo is not None else self.site_now.replace(tzinfo=UTC)
        return at.timestamp()

    def registration_state(self) -> tuple[RegistrationInfo, ...]:
        if self.registrations is not None:
            return self.registrations
        return self.analysis.registrations if self.analysis is not None else ()

    def evidence_end(self) -> float | None:
        if self.evidence_until is not None:
            return self.evidence_until
        return self.analysis.last_ts if self.analysis is not None else None

    def now_ts(self) -> float:
        """``now`` as UNIX seconds (a naive datetime is UTC); without it, the end of the capture."""
        if self.now is not None:
            now = self.now if self.now.tzinfo is not None else self.now.replace(tzinfo=UTC)
            return now.timestamp()
        if self.analysis is not None and self.analysis.last_ts is not None:
            return self.analysis.last_ts
        raise ValueError("DiagnosisInputs.now is required without a capture")


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What every rule sees: the inputs and what is derived once for all rules. Rules do not read
    the clock or the network.

    ``now`` (aware) is when the site file, its licences and the JWT are judged; ``evidence_ts``
    (UNIX seconds) when the evidence of captures, trace logs and probes is judged — the same
    moment live, the capture's end offline (``collectors.producer.judgement_times``).
    """

    inputs: DiagnosisInputs
    now: datetime
    evidence_ts: float
    endpoints: Endpoints
    itsp: ItspStatus
    firewall: tuple[FlowVerdict, ...]
    jwt: JwtState | None = None  # the token in use, judged once (``jwt_rules.judge_jwt``)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("RuleContext.now must be timezone-aware")

    @property
    def site(self) -> Site | None:
        return self.inputs.site

    @property
    def analysis(self) -> AnalysisResult | None:
        return self.inputs.analysis

    @property
    def options(self) -> DiagnosisOptions:
        return self.inputs.options

    @property
    def environ(self) -> Mapping[str, str] | None:
        return self.inputs.environ

    @property
    def registrations(self) -> tuple[RegistrationInfo, ...]:
        return self.inputs.registration_state()

    @property
    def evidence_until(self) -> float | None:
        return self.inputs.evidence_end()

    def verdict(self, flow: str) -> FlowVerdict | None:
        return next((v for v in self.firewall if v.flow == flow), None)


#: A rule: a pure function of the context. Each is silent when its input is absent (a site rule
#: without a site, an evidence rule without an analysis).
Rule = Callable[[RuleContext], list[Finding]]
