"""JWT findings from a token handed in directly (``--jwt-file``, the runtime's token collector) and
from the REST probe's answer. The token text is judged by ``core.jwt_status`` and never leaves it:
evidence names the fingerprint only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.findings import Evidence, Finding, make
from core.jwt_status import DEFAULT_ALGORITHMS, JwtState, JwtStatus, jwt_state, jwt_state_for_ref
from core.secrets import SecretRef, SecretUnavailable

from .context import Context, site_get

#: Ids a token judged here replaces when the site-only rules judged the site's token source.
JWT_IDS = frozenset({"rest-api.jwt-missing", "rest-api.jwt-expired", "rest-api.jwt-invalid", "jwt.expiring",
                     "provisioning.jwt-missing"})

_STATUS_TO_ID = {
    JwtStatus.EXPIRED: "rest-api.jwt-expired",
    JwtStatus.INVALID: "rest-api.jwt-invalid",
    JwtStatus.EXPIRING: "jwt.expiring",
}


def judge_jwt(site: object, token_text: str | None, now: float) -> JwtState | None:
    """The JWT in use at ``now``: the handed-in token (``--jwt-file``, the service's token
    collector) when there is one, else the site's ``tenant.jwt``; None when neither exists.

    A handed-in token is checked with the site's ``tenant.jwt_verify_key`` and
    ``tenant.jwt_algorithms`` exactly as the site's own token would be: the key says which
    tokens this tenant accepts, wherever the token came from.
    """
    at = datetime.fromtimestamp(now, UTC)
    tenant = site_get(site, "tenant")
    key_ref = site_get(tenant, "jwt_verify_key")
    algorithms = tuple(site_get(tenant, "jwt_algorithms") or DEFAULT_ALGORITHMS)
    if token_text is not None:
        key: str | None = None
        if isinstance(key_ref, SecretRef):
            try:
                key = key_ref.resolve()
            except SecretUnavailable as exc:
                state = jwt_state(token_text, at, algorithms=algorithms)
                return JwtState(state.status, f"{state.reason}; signature not checked: {exc}", state.expires_at,
                                state.expiring_from, state.days_left, state.fingerprint, False, "jwt-file")
        state = jwt_state(token_text, at, key=key, algorithms=algorithms)
        return JwtState(state.status, state.reason, state.expires_at, state.expiring_from, state.days_left,
                        state.fingerprint, state.signature_checked, "jwt-file")
    ref = site_get(tenant, "jwt")
    if isinstance(ref, SecretRef):
        return jwt_state_for_ref(ref, at, key_ref=key_ref if isinstance(key_ref, SecretRef) else None,
                                 algorithms=algorithms)
    return None


def rule_jwt_token(ctx: Context) -> list[Finding]:
    """Status of the handed-in token at ``now`` (DOMAIN §4); an empty token on the Unify Video
    flavour is a missing JWT."""
    if ctx.inputs.jwt_token_text is None or ctx.jwt is None:
        return []
    state = ctx.jwt
    if state.status is JwtStatus.NOT_SET:
        if site_get(ctx.site, "tenant", "flavour") != "unify-video":
            return []
        empty = [Evidence("the JWT file is empty", config_path="tenant.jwt")]
        return [make("rest-api.jwt-missing", empty), make("provisioning.jwt-missing", empty)]
    fid = _STATUS_TO_ID.get(state.status)
    if fid is None:
        return []
    ev = Evidence(f"JWT {state.fingerprint}: {state.status.value} — {state.reason}",
                  timestamp=state.expires_at.timestamp() if state.expires_at else None, source="jwt")
    return [make(fid, [ev])]


def rule_jwt_rest_probe(ctx: Context) -> list[Finding]:
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
