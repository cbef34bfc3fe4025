"""Inputs, options and the per-run context shared by the evidence rules and the ITSP status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.analysis import AnalysisResult, RegistrationInfo
from core.firewall import Endpoints, FlowVerdict, GcpRanges
from core.jwt_status import JwtState
from core.probes import ProbeResult
from core.snapshot import ItspStatus

#: SIP response codes the PBX rejects an INVITE with, mapped to the FAQ cause (DOMAIN §5 "no calls").
#: The OSBiz's exact codes are not documented in the seed; these are the ones the lab's PBX side
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


@dataclass(frozen=True, slots=True)
class DiagnosisInputs:
    """Everything the engine looks at. ``jwt_token_text`` is a secret: never logged or shown."""

    site: Any = None  # core.site model (or an equivalent mapping); None = no site file
    analysis: AnalysisResult | None = None
    probes: tuple[ProbeResult, ...] = ()
    jwt_token_text: str | None = field(default=None, repr=False)
    now: datetime | None = None
    options: DiagnosisOptions = DiagnosisOptions()
    #: The registration state when it outlives ``analysis`` (the live service's ledger: its window
    #: analysis no longer holds a REGISTER from minutes ago); None = the analysis's registrations.
    registrations: tuple[RegistrationInfo, ...] | None = None
    #: Until when the evidence reaches (the last packet or trace line read); None = the analysis's
    #: last packet. After a registration's expiry, silence up to here is no proof it lapsed.
    evidence_until: float | None = None

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


def site_get(obj: Any, *names: str) -> Any:
    """Nested attribute/key access into the site model; None when a step is missing.

    The site model lives in ``core.site`` (another team's contract); reading it this way keeps the
    engine working on plain mappings too (tests, a site file without the optional sections).
    """
    for name in names:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return obj


@dataclass(frozen=True, slots=True)
class Context:
    """One diagnosis run: the inputs plus what is derived once and read by several rules."""

    inputs: DiagnosisInputs
    now: float
    endpoints: Endpoints
    itsp: ItspStatus
    firewall: tuple[FlowVerdict, ...]
    jwt: JwtState | None = None  # the token in use, judged once (``jwt_rules.judge_jwt``)

    @property
    def site(self) -> Any:
        return self.inputs.site

    @property
    def analysis(self) -> AnalysisResult | None:
        return self.inputs.analysis

    @property
    def options(self) -> DiagnosisOptions:
        return self.inputs.options

    @property
    def registrations(self) -> tuple[RegistrationInfo, ...]:
        return self.inputs.registration_state()

    @property
    def evidence_until(self) -> float | None:
        return self.inputs.evidence_end()

    def verdict(self, flow: str) -> FlowVerdict | None:
        return next((v for v in self.firewall if v.flow == flow), None)
