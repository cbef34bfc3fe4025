"""The check-site report: the site part of a Snapshot, as JSON-able data.

``upscope check-site --format json`` prints it and its table output renders it. Every value comes
from the Snapshot the one producer built (findings, licences, call numbers, the JWT state), so the
report says what ``diagnose``, ``/metrics`` and the dashboard say. Secrets appear as source +
fingerprint only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.bandwidth import check_bandwidth
from core.jwt_status import JwtState, JwtStatus
from core.snapshot import Snapshot

REPORT_SCHEMA = "upscope.check-site/1"


def site_report(snap: Snapshot) -> dict[str, Any]:
    """The site of ``snap`` as judged at ``snap.now``; a Snapshot without a site has no report."""
    site, lic = snap.site, snap.licenses
    if site is None or lic is None:
        raise ValueError("site_report needs a Snapshot built with a site file")
    now = datetime.fromtimestamp(snap.now, UTC)
    findings = snap.finding_list
    conn, tenant = site.connectivity, site.tenant
    numbers = snap.numbering
    jwt = snap.jwt or JwtState(JwtStatus.NOT_SET, "no JWT configured")
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
            "api_key": conn.api_key.to_public_dict() if conn.api_key else None,
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
