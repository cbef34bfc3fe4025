"""The Snapshot: everything upscope knows about one site at one moment.

Collectors emit observations; the runtime reduces them into a new immutable Snapshot; rules are
pure functions ``Snapshot → [Finding]``; the faces (CLI, dashboard, /metrics) only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.analysis import AnalysisResult
from core.findings import Finding


class ItspState(StrEnum):
    """ITSP status of "Unify Phone (Cloud)" as the OSBiz Service Center shows it (DOMAIN §12:
    exact strings unconfirmed, hence the mapping in ``ITSP_LABELS``)."""

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "label": self.label,
            "since": self.since,
            "reason": self.reason,
            "registrar": self.registrar,
            "expiry_ts": self.expiry_ts,
            "last_success_ts": self.last_success_ts,
        }


@dataclass(frozen=True, slots=True)
class CollectorStatus:
    name: str
    up: bool
    reason: str
    last_run_ts: float | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """``site`` is a ``core.site.Site`` (typed loosely here to keep this module import-light)."""

    now: float
    system: str
    itsp: ItspStatus
    findings: tuple[Finding, ...]
    analysis: AnalysisResult | None = None
    site: Any = None
    probes: tuple[Any, ...] = ()  # latest result per probe (collectors.probes.ProbeResult)
    collectors: tuple[CollectorStatus, ...] = ()
    jwt: Any = None  # core.jwt_status.JwtState
    extra: dict[str, Any] = field(default_factory=dict)
