"""The diagnosis engine: site rules + evidence rules + ITSP status + firewall check, in one pure call.

Theory of operation. ``diagnose`` takes what is known about a site at ``now`` (the site file, a
capture/trace analysis, probe results, a JWT) and returns the ITSP status, the findings of DOMAIN
§5 and one firewall verdict per expected flow of DOMAIN §7. Order matters only once: the firewall
verdicts come first because the ITSP status uses the SIP/TLS verdict (which folds in the connector
probes), and several rules read both. Site-only rules come from the registry in ``core.rules``;
the evidence rules live in ``core.diagnosis.evidence``. When an evidence rule confirms a finding
the site rules already made (same id), its evidence joins that finding instead of doubling it.
No I/O and no clock: the runtime (``upscope serve``) and ``upscope diagnose`` call the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.findings import Finding, sort_findings
from core.firewall import FlowVerdict, check_firewall, endpoints_from_site, syns_without_connection
from core.jwt_status import JwtState
from core.snapshot import ItspStatus

from .context import Context, DiagnosisInputs, DiagnosisOptions
from .evidence import EVIDENCE_RULES
from .itsp import derive_itsp_status
from .jwt_rules import JWT_IDS, judge_jwt, rule_jwt_rest_probe, rule_jwt_token
from .site_rules import site_findings

__all__ = ["Diagnosis", "DiagnosisInputs", "DiagnosisOptions", "diagnose"]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    itsp: ItspStatus
    findings: tuple[Finding, ...]
    firewall: tuple[FlowVerdict, ...]
    jwt: JwtState | None = None  # the JWT in use (handed in, else the site's), None when none is configured

    def to_dict(self) -> dict[str, Any]:
        return {
            "itsp_status": self.itsp.to_dict(),
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


def diagnose(inputs: DiagnosisInputs) -> Diagnosis:
    now = inputs.now_ts()
    ep = replace(endpoints_from_site(inputs.site), osbiz_https_ports=inputs.options.osbiz_https_ports)
    firewall = check_firewall(ep, inputs.analysis, inputs.probes, inputs.options.gcp_ranges)
    sip = next((v for v in firewall if v.flow == "sip-tls"), None)
    itsp = derive_itsp_status(inputs.site, inputs.registration_state(), ep, sip, now,
                              inputs.options.registration_grace_s, inputs.evidence_end(),
                              # the OSBiz's own SYNs: the service's probes are judged as probes
                              syns_without_connection(inputs.analysis, *ep.connector, sources=ep.osbiz),
                              inputs.probes, inputs.options.probe_outage_s)
    jwt = judge_jwt(inputs.site, inputs.jwt_token_text, now)
    ctx = Context(inputs, now, ep, itsp, firewall, jwt)

    found: list[Finding] = []
    if inputs.site is not None:
        site_made = site_findings(inputs.site, inputs.analysis, datetime.fromtimestamp(now, UTC))
        if inputs.jwt_token_text is not None:
            # The handed-in token is the one in use; the site's token source is not judged twice.
            site_made = [f for f in site_made if f.id not in JWT_IDS]
        found += site_made
    found += rule_jwt_token(ctx)
    found += rule_jwt_rest_probe(ctx)
    for rule in EVIDENCE_RULES:
        found += rule(ctx)
    return Diagnosis(itsp, tuple(sort_findings(_merge(found))), firewall, jwt)
