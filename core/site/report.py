"""The check-site report: a site judged at ``now``, as JSON-able data.

One shape for every face: ``upscope check-site --format json`` prints it, the table output and
the dashboard render it. Secrets appear as source + fingerprint only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.bandwidth import check_bandwidth
from core.findings import Finding
from core.jwt_status import jwt_state_for_ref
from core.licensing import evaluate_licenses
from core.numbering import derive_all
from core.rules import RuleContext, evaluate
from core.site.model import Site

REPORT_SCHEMA = "upscope.check-site/1"


def site_report(
    site: Site, now: datetime, *, environ: Mapping[str, str] | None = None,
    findings: list[Finding] | None = None,
) -> dict[str, Any]:
    """Judge ``site`` at ``now`` (tz-aware); ``findings`` defaults to every registered rule's."""
    if findings is None:
        findings = evaluate(RuleContext(now=now, site=site, environ=environ))
    conn, tenant = site.connectivity, site.tenant
    numbers = derive_all(site)
    lic = evaluate_licenses(site, now)
    jwt = jwt_state_for_ref(tenant.jwt, now, key_ref=tenant.jwt_verify_key,
                            algorithms=tenant.jwt_algorithms, environ=environ)
    users = []
    for user, number, licenses in zip(site.users, numbers, lic.users, strict=True):
        users.append({
            "callno": user.callno,
            "did": user.did,
            "name": user.display_name,
            "email": user.email,
            "station_type": user.station_type,
            "team": number.team,
            "call_number": number.derived,
            "call_number_source": number.source,
            "configured_call_number": number.configured,
            "numbering": number.verdict,
            "numbering_problems": [p.value for p in number.problems],
            "numbering_detail": number.detail,
            "licenses": licenses.to_dict(),
            "directory": user.directory,
            "alternative_number_in_use": user.alternative_number_in_use,
        })
    counts = {s: sum(1 for f in findings if f.severity.value == s) for s in ("critical", "warning", "info")}
    return {
        "schema": REPORT_SCHEMA,
        "now": now.isoformat(),
        "system": {
            "name": site.system.name,
            "model": site.system.model,
            "version": site.system.version,
            "mainboard": site.system.mainboard,
        },
        "connectivity": {
            "enabled": conn.enabled,
            "domain": conn.domain,
            "api_key": conn.api_key.to_public_dict(environ) if conn.api_key else None,
            "simultaneous_calls": conn.simultaneous_calls,
            "shared_trunk_lines": conn.shared_trunk_lines,
            "upstream_kbps": conn.upstream_kbps,
            "numbering_schema": conn.numbering_schema,
            "route_location_number": conn.route_location_number,
            "gateway_location_number": conn.gateway_location_number,
            "trusted_external_users": site.route.trusted_external_users,
        },
        "jwt": {"flavour": tenant.flavour, "required": tenant.flavour == "unify-video", **jwt.to_dict()},
        "licenses": lic.to_dict(),
        "bandwidth": check_bandwidth(site).to_dict(),
        "users": users,
        "teams": [
            {"name": t.name, "callno": t.callno,
             "members": [{"callno": m.callno, "device": m.device} for m in t.members]}
            for t in site.teams
        ],
        "findings": [f.to_dict() for f in findings],
        "summary": {"findings": len(findings), **counts},
    }
