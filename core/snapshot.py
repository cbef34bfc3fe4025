"""The Snapshot: everything upscope knows about one site at one moment.

Collectors emit observations; the runtime reduces them into a new immutable Snapshot; rules are
pure functions ``Snapshot → [Finding]``; the faces (CLI, dashboard, /metrics) only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.analysis import AnalysisResult, to_jsonable
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


def _public(value: Any) -> Any:
    """Site, JWT and probe values expose ``to_public_dict``/``to_dict`` that never hold a secret."""
    if value is None:
        return None
    for name in ("to_public_dict", "to_dict"):
        method = getattr(value, name, None)
        if callable(method):
            return method()
    return to_jsonable(value)


def snapshot_to_dict(snap: Snapshot) -> dict[str, Any]:
    """The JSON shape of a Snapshot: what ``/api/snapshot`` serves and the dashboard reads."""
    return {
        "now": snap.now,
        "system": snap.system,
        "itsp_status": snap.itsp.to_dict(),
        "findings": [f.to_dict() for f in snap.findings],
        "analysis": to_jsonable(snap.analysis) if snap.analysis is not None else None,
        "site": _public(snap.site),
        "probes": [_public(p) for p in snap.probes],
        "collectors": [to_jsonable(c) for c in snap.collectors],
        "jwt": _public(snap.jwt),
        "extra": to_jsonable(snap.extra),
    }
