"""Findings: what upscope concludes, with evidence, remedy and traces to switch on.

The catalogue below holds every stable id (docs/findings.md) with its symptom, severity, title, remedy
and trace family (``core.trace_profiles``). Rules produce ``Finding`` values through ``make`` so
titles and remedies are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.trace_profiles import TRACE_SETS, TraceSet


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"critical": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence: a config path, packet numbers, a timestamp, a probe transcript line."""

    text: str
    config_path: str | None = None
    packets: tuple[int, ...] = ()
    timestamp: float | None = None
    call_id: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text}
        if self.config_path is not None:
            d["config_path"] = self.config_path
        if self.packets:
            d["packets"] = list(self.packets)
        if self.timestamp is not None:
            d["timestamp"] = self.timestamp
        if self.call_id is not None:
            d["call_id"] = self.call_id
        if self.source is not None:
            d["source"] = self.source
        return d


@dataclass(frozen=True, slots=True)
class FindingSpec:
    id: str
    symptom: str
    severity: Severity
    title: str
    remedy: str
    trace_family: str

    @property
    def traces(self) -> TraceSet:
        return TRACE_SETS[self.trace_family]


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    severity: Severity
    title: str
    evidence: tuple[Evidence, ...]
    remedy: str
    trace_profiles: tuple[str, ...]
    trace_components: tuple[str, ...] = ()
    symptom: str = ""
    subject: str | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "symptom": self.symptom,
            "subject": self.subject,
            "evidence": [e.to_dict() for e in self.evidence],
            "remedy": self.remedy,
            "trace_profiles": list(self.trace_profiles),
            "trace_components": list(self.trace_components),
        }


NOT_REGISTERED = "ITSP status of Unify Phone (Cloud): not registered"
NO_REST = "no connection to REST API"
NO_CALLS = "no calls with the Unify Phone client"
NO_PROVISIONING = "provisioning of new users not possible"
CLONE = "hardware replacement / clone / restore"
MEDIA = "audio problems"
CONFIG = "configuration check"

_C, _W, _I = Severity.CRITICAL, Severity.WARNING, Severity.INFO

#: One row per stable id; docs/findings.md is generated from it (``upscope runbook``).
CATALOGUE: dict[str, FindingSpec] = {
    s.id: s
    for s in (
        FindingSpec(
            "itsp.not-registered.firewall", NOT_REGISTERED, _C,
            "Trunk not registered: SIP/TLS to the connector is blocked or unanswered",
            "Open these egress rules: TCP 65061 to the connector (allow established "
            "connections back), STUN/TURN 3478 TCP/UDP, REST 443 to phoneapp.unify.com; check the "
            "external router/NAT in front of the OSBiz.",
            "registration",
        ),
        FindingSpec(
            "itsp.not-registered.auth", NOT_REGISTERED, _C,
            "Trunk not registered: the connector rejects the credentials (401 loop / 403)",
            "Copy the current API key from the Unify Phone administration app (Telephony connector "
            "→ API key) and run the Unify Phone Connectivity wizard again with it.",
            "registration",
        ),
        FindingSpec(
            "rest-api.api-key-invalid", NO_REST, _C,
            "REST API rejects the API key (invalid or regenerated)",
            "Enter the tenant's current API key in the Unify Phone Connectivity wizard; if it was "
            "regenerated, every OSBiz of the tenant needs the new key.",
            "rest-api",
        ),
        FindingSpec(
            "rest-api.jwt-missing", NO_REST, _C,
            "Unify Video flavour without a JWT: Unify Phone is not functional",
            "Create a JWT in the JWT creation portal and paste it into the Unify Phone administration "
            "app.",
            "rest-api",
        ),
        FindingSpec(
            "rest-api.jwt-expired", NO_REST, _C,
            "JWT expired: Unify Phone is not functional for the tenant",
            "Create a new JWT in the JWT creation portal and replace the expired one.",
            "rest-api",
        ),
        FindingSpec(
            "rest-api.jwt-invalid", NO_REST, _C,
            "JWT invalid: cannot be decoded, bad signature or rejected",
            "Create a new JWT in the JWT creation portal for the Unify Phone client ID and paste it "
            "whole.",
            "rest-api",
        ),
        FindingSpec(
            "jwt.expiring", NO_REST, _W,
            "JWT expires within one month",
            "Create a new JWT before the expiry date and replace the current one.",
            "rest-api",
        ),
        FindingSpec(
            "calls.software-support-expired", NO_CALLS, _C,
            "OpenScape Business is not under Software Support",
            "Renew OpenScape Business Software Support and activate the license.",
            "license",
        ),
        FindingSpec(
            "calls.no-trunk-lines", NO_CALLS, _C,
            "No Unify Phone trunk lines configured",
            "Set 'Number of simultaneous circuit calls' in the Unify Phone Connectivity wizard.",
            "calls",
        ),
        FindingSpec(
            "calls.trunk-lines-busy", NO_CALLS, _W,
            "All Unify Phone (or shared) trunk lines are busy: calls are rejected",
            "Raise 'Number of simultaneous circuit calls' in the Connectivity wizard (within the "
            "upstream bandwidth) or reduce the load on shared trunk lines.",
            "calls",
        ),
        FindingSpec(
            "calls.license-missing", NO_CALLS, _C,
            "A Unify Phone user lacks an IP User (Mobility User) or Unify Phone license",
            "License Management → Local User licenses → Mobility User: activate an IP User (Mobility "
            "User) and a Unify Phone license for the user.",
            "license",
        ),
        FindingSpec(
            "calls.not-trusted-external-user", NO_CALLS, _C,
            "A Unify Phone user is not a station of type Trusted External User",
            "Create or edit the user with the Unify Phone user instance wizard; Expert Mode cannot "
            "configure a Trusted External User.",
            "calls",
        ),
        FindingSpec(
            "calls.route-flag-off", NO_CALLS, _C,
            "Route parameter 'Trusted external User' is deactivated",
            "Run the Unify Phone Connectivity wizard again; it sets 'Trusted External Users' on the "
            "Unify Phone route.",
            "calls",
        ),
        FindingSpec(
            "calls.numbering-mismatch", NO_CALLS, _C,
            "A user's call number does not match the Unify Phone numbering plan",
            "Open the Unify Phone user instance wizard and click [Validate Numbers]; check the route "
            "location number and numbering schema.",
            "calls",
        ),
        FindingSpec(
            "calls.expert-mode-drift", NO_CALLS, _W,
            "Wizard-managed settings were changed in Expert Mode",
            "Redo the change with the Unify Phone Connectivity / user instance wizard; Expert Mode "
            "changes are not propagated to the connector.",
            "calls",
        ),
        FindingSpec(
            "provisioning.jwt-missing", NO_PROVISIONING, _C,
            "User provisioning needs a JWT (the bot method was replaced)",
            "Create a JWT in the JWT creation portal and set it in the Unify Phone administration app.",
            "rest-api",
        ),
        FindingSpec(
            "clone.duplicate-connector", CLONE, _C,
            "Two systems register with the same connector configuration (clone/restore)",
            "Uninstall the Unify Phone connector on the cloned/restored system (or the old one) and run "
            "the Connectivity wizard on the system that should own the trunk.",
            "registration",
        ),
        FindingSpec(
            "media.one-way-audio", MEDIA, _C,
            "One-way audio: RTP flows in one direction only",
            "Allow UDP 10000–49999 to and from the GCP europe-west3 ranges and STUN 3478; "
            "check NAT on the external router.",
            "media",
        ),
        FindingSpec(
            "media.poor-quality", MEDIA, _W,
            "Poor media quality: loss, jitter or MOS beyond thresholds",
            "Check upstream bandwidth and queueing (QoS) on the internet link; reduce simultaneous "
            "calls if the link is saturated.",
            "media",
        ),
        FindingSpec(
            "bandwidth.too-low", CONFIG, _W,
            "Upstream bandwidth does not carry the configured simultaneous calls",
            "Enter the correct upstream value or lower 'Number of simultaneous circuit "
            "calls' in the Connectivity wizard.",
            "config",
        ),
        FindingSpec(
            "security.port-443-open", CONFIG, _C,
            "Inbound TCP 443 to the OpenScape Business is open",
            "Close inbound port 443 to the OSBiz on the firewall (OSBiz Security Checklist).",
            "config",
        ),
        FindingSpec(
            "numbering.too-long", CONFIG, _C,
            "A derived E.164 call number exceeds 15 digits",
            "Change the Unify Phone route location number and click [Validate Numbers].",
            "config",
        ),
        FindingSpec(
            "numbering.location-missing", CONFIG, _C,
            "International schema without a route location number with country code",
            "Fill in the Unify Phone route location number incoming, country code included.",
            "config",
        ),
        FindingSpec(
            "team.invalid", CONFIG, _W,
            "Team (MULAP) with Unify Phone violates the twinning rules",
            "A team holds exactly one Unify Phone user and one IP or TDM desk phone, no cordless "
            "phones, and the Unify Phone member has an empty DID.",
            "config",
        ),
        FindingSpec(
            "mailbox.alt-number-target", CONFIG, _W,
            "Alternative Number used without target 2 '** User defined'",
            "Set target 2 of the user's call destination list to '** User defined'.",
            "config",
        ),
        FindingSpec(
            "users.no-did-not-allowed", CONFIG, _C,
            "User without DID where it is not supported",
            "Users without DID need Unify Phone for OpenScape, V3R3 FR1 or later and the internal "
            "numbering schema; otherwise give the user a DID.",
            "config",
        ),
        FindingSpec(
            "software-update.rerun-wizard", CONFIG, _W,
            "Software update detected since the last Connectivity wizard run",
            "Run the Unify Phone Connectivity wizard without changing the configuration.",
            "config",
        ),
    )
}


def make(
    finding_id: str,
    evidence: list[Evidence] | tuple[Evidence, ...],
    *,
    subject: str | None = None,
    title: str | None = None,
    severity: Severity | None = None,
) -> Finding:
    """Build a Finding from the catalogue; ``title`` may add detail to the catalogue title."""
    spec = CATALOGUE[finding_id]
    traces = spec.traces
    return Finding(
        id=spec.id,
        severity=severity or spec.severity,
        title=title or spec.title,
        evidence=tuple(evidence),
        remedy=spec.remedy,
        trace_profiles=tuple(p.value for p in traces.profiles),
        trace_components=tuple(f"{c.name} level {c.level}" for c in traces.components),
        symptom=spec.symptom,
        subject=subject,
    )


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by id and subject, so reports are stable (golden files)."""
    return sorted(findings, key=lambda f: (f.severity.rank, f.id, f.subject or ""))
