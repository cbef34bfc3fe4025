"""The rule engine: one context, one registry of rules, one entry point (``diagnose``).

Theory of operation. ``diagnose`` takes what is known about a site (the site file, a capture or
trace-log analysis, probe results, the JWT in use) and returns the ITSP status, the findings of
the catalogue (``core.findings``) and one firewall verdict per expected flow. What several rules
read is derived once, in this order: the firewall verdicts (the ITSP status uses the SIP/TLS one,
which folds in the connector probes), the ITSP status, the JWT state; then every rule of
``RULES`` — the site rules, the JWT rules and the evidence rules, each a pure function of one
``RuleContext`` — adds its findings. When a rule confirms a finding another made (same id and
subject), its evidence joins that finding instead of doubling it. No I/O and no clock: the
producer (``collectors.producer``) calls it for the live service and every offline command.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.findings import Finding, sort_findings
from core.firewall import FlowVerdict, check_firewall, endpoints_from_site, syns_without_connection
from core.jwt_status import JwtState
from core.snapshot import ItspStatus, OtherRegistration

from .context import DiagnosisInputs, DiagnosisOptions, Rule, RuleContext
from .evidence import EVIDENCE_RULES, one_way_thresholds
from .itsp import derive_itsp_status, other_registrations
from .jwt_rules import JWT_RULES, judge_jwt
from .site_rules import SITE_RULES

__all__ = ["RULES", "Diagnosis", "DiagnosisInputs", "DiagnosisOptions", "Rule", "RuleContext", "context_of",
           "diagnose", "evaluate"]

#: Every rule, in one registry: the site rules, the JWT rules, the evidence rules.
RULES: tuple[Rule, ...] = (*SITE_RULES, *JWT_RULES, *EVIDENCE_RULES)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    itsp: ItspStatus
    findings: tuple[Finding, ...]
    firewall: tuple[FlowVerdict, ...]
    jwt: JwtState | None = None  # the JWT in use (handed in, else the site's), None when none is configured
    #: Registrations seen that are not the trunk to the connector (a LAN registrar, an ITSP …).
    other_registrations: tuple[OtherRegistration, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "itsp_status": self.itsp.to_dict(),
            "other_registrations": [o.to_dict() for o in self.other_registrations],
            "findings": [f.to_dict() for f in self.findings],
            "firewall": [v.to_dict() for v in self.firewall],
            "jwt": self.jwt.to_dict() if self.jwt is not None else None,
        }


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per (id, subject); a subject-less confirmation joins the first finding of its id."""
    out: list[Finding] = []
    for f in findings:
        twin = next((i for i, g in enumerate(out) if g.id == f.id and (g.subject == f.subject or f.subject is None)), None)
        if twin is None:
            out.append(f)
        else:
            g = out[twin]
            out[twin] = replace(g, evidence=g.evidence + tuple(e for e in f.evidence if e not in g.evidence))
    return out


def context_of(inputs: DiagnosisInputs) -> RuleContext:
    """The context of one run: what the rules read, each derived once."""
    now = inputs.now_ts()
    ep = replace(endpoints_from_site(inputs.site), osbiz_https_ports=inputs.options.osbiz_https_ports)
    if inputs.options.connector is not None:
        ep = replace(ep, connector=inputs.options.connector, connector_named=True)
    firewall = check_firewall(ep, inputs.analysis, inputs.probes, inputs.options.gcp_ranges,
                              one_way_thresholds(inputs.options))
    sip = next((v for v in firewall if v.flow == "sip-tls"), None)
    itsp = derive_itsp_status(inputs.site, inputs.registration_state(), ep, sip, now,
                              inputs.options.registration_grace_s, inputs.evidence_end(),
                              # the OSBiz's own SYNs: the service's probes are judged as probes
                              syns_without_connection(inputs.analysis, *ep.connector, sources=ep.osbiz),
                              (*inputs.probe_history, *inputs.probes), inputs.options.probe_outage_s)
    site_now = inputs.site_now_ts()
    jwt = judge_jwt(inputs.site, inputs.jwt_token_text, site_now, inputs.environ)
    return RuleContext(inputs, datetime.fromtimestamp(site_now, UTC), now, ep, itsp, firewall, jwt)


def evaluate(ctx: RuleContext, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """The findings of ``rules`` (default: every rule) in one context, merged and most severe first."""
    found: list[Finding] = []
    for rule in rules:
        found += rule(ctx)
    return sort_findings(_merge(found))


def diagnose(inputs: DiagnosisInputs) -> Diagnosis:
    """The one entry: the ITSP status, every rule's findings, the firewall verdicts, the JWT."""
    ctx = context_of(inputs)
    others = other_registrations(inputs.registration_state(), ctx.endpoints, inputs.site is not None,
                                 ctx.evidence_ts, inputs.options.registration_grace_s, inputs.evidence_end())
    return Diagnosis(ctx.itsp, tuple(evaluate(ctx)), ctx.firewall, ctx.jwt, others)
