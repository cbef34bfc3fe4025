"""JWT findings: the token in use (the site's ``tenant.jwt``, or one handed in with ``--jwt-file`` or
by the service's token collector) and the REST probe's answer. The token text is judged by
``core.jwt_status`` and never leaves it: evidence names the fingerprint only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from core.findings import Evidence, Finding, make
from core.jwt_status import DEFAULT_ALGORITHMS, JwtState, JwtStatus, jwt_state_for_ref, jwt_state_from
from core.site.model import Site

from .context import Rule, RuleContext

_STATUS_TO_ID = {
    JwtStatus.EXPIRED: "rest-api.jwt-expired",
    JwtStatus.INVALID: "rest-api.jwt-invalid",
    JwtStatus.EXPIRING: "jwt.expiring",
}


def judge_jwt(site: Site | None, token_text: str | None, now: float,
              environ: Mapping[str, str] | None = None) -> JwtState | None:
    """The JWT in use at ``now``: the handed-in token (``--jwt-file``, the service's token
    collector) when there is one, else the site's ``tenant.jwt``; None when neither exists.

    A handed-in token is checked with the site's ``tenant.jwt_verify_key`` and
    ``tenant.jwt_algorithms`` exactly as the site's own token would be: the key says which
    tokens this tenant accepts, wherever the token came from.
    """
    at = datetime.fromtimestamp(now, UTC)
    tenant = site.tenant if site is not None else None
    key_ref = tenant.jwt_verify_key if tenant is not None else None
    algorithms = tuple(tenant.jwt_algorithms) if tenant is not None else DEFAULT_ALGORITHMS
    if token_text is not None:
        return jwt_state_from(token_text, at, "jwt-file", key_ref=key_ref, algorithms=algorithms, environ=environ)
    if tenant is not None and tenant.jwt is not None:
        return jwt_state_for_ref(tenant.jwt, at, key_ref=key_ref, algorithms=algorithms, environ=environ)
    return None


def rule_jwt(ctx: RuleContext) -> list[Finding]:
    """The JWT in use (judged once, ``ctx.jwt``): missing on the Unify Video flavour, invalid,
    expired or expiring within a month. A handed-in token is judged whatever the flavour; the
    site's own token source only on the Unify Video flavour, which needs one."""
    state, site = ctx.jwt, ctx.site
    handed = ctx.inputs.jwt_token_text is not None
    video = site is not None and site.tenant.flavour == "unify-video"
    if not handed and not video:
        return []
    if state is None or state.status is JwtStatus.NOT_SET:
        if not video:
            return []
        text = "the JWT file is empty" if handed else "Unify Video flavour and no JWT configured"
        ev = [Evidence(text, config_path="tenant.jwt")]
        return [make("rest-api.jwt-missing", ev), make("provisioning.jwt-missing", ev)]
    fid = _STATUS_TO_ID.get(state.status)
    if fid is None:
        return []
    if handed:
        return [make(fid, [Evidence(f"JWT {state.fingerprint}: {state.status.value} — {state.reason}",
                                    timestamp=state.expires_at.timestamp() if state.expires_at else None,
                                    source="jwt")])]
    fp = f" (fingerprint {state.fingerprint})" if state.fingerprint else ""
    days = f", {state.days_left} days left" if state.status is JwtStatus.EXPIRING else ""
    return [make(fid, [Evidence(f"JWT {state.reason}{days}{fp}", config_path="tenant.jwt")])]


def rule_jwt_rest_probe(ctx: RuleContext) -> list[Finding]:
    """The REST API refusing the JWT (401/403 naming the token): expired or invalid."""
    out: list[Finding] = []
    for p in ctx.inputs.probes:
        if not ("rest" in p.probe or p.probe.startswith("https")) or p.details.get("status_code") not in (401, 403):
            continue
        text = " ".join((p.reason, *p.transcript, str(p.details.get("error", "")))).lower()
        if "jwt" not in text and "token" not in text:
            continue
        if "missing" in text or "not set" in text or "required" in text:
            fid = "rest-api.jwt-missing"
        elif "expired" in text:
            fid = "rest-api.jwt-expired"
        else:
            fid = "rest-api.jwt-invalid"
        line = "; ".join(p.transcript[-2:])
        out.append(make(fid, [Evidence(f"probe {p.probe} {p.target}: {p.reason}" + (f" — {line}" if line else ""),
                                       timestamp=p.ts, source=f"probe:{p.probe}")]))
    return out


JWT_RULES: tuple[Rule, ...] = (rule_jwt, rule_jwt_rest_probe)
