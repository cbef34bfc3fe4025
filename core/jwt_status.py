"""JWT status for the Unify Video flavour (a RingCentral JWT credential, RFC 7523).

The five statuses at time ``now``:

=============  ==============================================================================
Not set        no token configured
Invalid token  cannot be decoded, is unsigned (``alg: none``), has a non-numeric ``exp``, or the
               signature is bad when a verification key is given
Expired        ``exp`` ≤ now
Expiring       now ≥ ``exp`` minus one calendar month (see ``minus_one_month``)
Active         otherwise; a token without ``exp`` is Active with no countdown (RingCentral JWT
               credentials need not expire)
=============  ==============================================================================

The token itself never leaves this module: the result carries its fingerprint only.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import jwt

from core.secrets import SecretRef, SecretUnavailable, fingerprint

#: A RingCentral JWT is well under 2 KB; refuse to parse megabytes of "token".
MAX_TOKEN_CHARS = 16 * 1024
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256",)


class JwtStatus(StrEnum):
    NOT_SET = "Not set"
    ACTIVE = "Active"
    INVALID = "Invalid token"
    EXPIRING = "Expiring"
    EXPIRED = "Expired"


def minus_one_month(when: datetime) -> datetime:
    """The same day and time one calendar month earlier, clamped to the end of that month.

    31 March → 28 February (29 in a leap year); 30 March → 28/29 February; 31 May → 30 April;
    15 March → 15 February; 31 January → 31 December of the year before. The time of day and the
    time zone are kept. This is how "one month before the expiration date" reads
    on a calendar: the warning starts on the day with the same number in the previous month, or
    that month's last day when it has no such day.
    """
    year, month = (when.year, when.month - 1) if when.month > 1 else (when.year - 1, 12)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


@dataclass(frozen=True, slots=True)
class JwtState:
    status: JwtStatus
    reason: str
    expires_at: datetime | None = None
    expiring_from: datetime | None = None
    days_left: int | None = None  # whole days until expiry (floor); negative once expired
    fingerprint: str | None = None
    signature_checked: bool = False
    source: str | None = None  # "inline", "env:NAME", "file:PATH" — never the token

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "expiring_from": self.expiring_from.isoformat() if self.expiring_from else None,
            "days_left": self.days_left,
            "fingerprint": self.fingerprint,
            "signature_checked": self.signature_checked,
            "source": self.source,
        }


def _invalid(reason: str, fp: str | None, checked: bool = False) -> JwtState:
    return JwtState(JwtStatus.INVALID, reason, fingerprint=fp, signature_checked=checked)


def jwt_state(
    token: str | None,
    now: datetime,
    *,
    key: str | None = None,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
) -> JwtState:
    """Status of ``token`` at ``now`` (tz-aware); with ``key`` the signature is checked too."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if token is None or not token.strip():
        return JwtState(JwtStatus.NOT_SET, "no JWT configured")
    token = token.strip()
    fp = fingerprint(token)
    if len(token) > MAX_TOKEN_CHARS:
        return _invalid(f"longer than {MAX_TOKEN_CHARS} characters", fp)
    try:
        header = jwt.get_unverified_header(token)
        if str(header.get("alg", "")).lower() == "none":
            return _invalid("unsigned token (alg none)", fp)
        if key is None:
            claims = jwt.decode(token, options={"verify_signature": False})
        else:
            claims = jwt.decode(
                token, key, algorithms=list(algorithms),
                # Expiry is judged below against the injected ``now``, not the wall clock.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_aud": False, "verify_iss": False, "verify_sub": False,
                         "verify_jti": False},
            )
    except jwt.InvalidSignatureError:
        return _invalid("signature does not match the verification key", fp, checked=True)
    except jwt.InvalidAlgorithmError:
        return _invalid(f"algorithm not allowed (allowed: {', '.join(algorithms)})", fp, checked=True)
    except jwt.InvalidKeyError:
        return _invalid("cannot check the signature: verification key unusable", fp)
    except (jwt.PyJWTError, ValueError, TypeError):
        # pyjwt wraps most malformations in DecodeError; the others guard hostile input.
        return _invalid("cannot be decoded", fp)
    if not isinstance(claims, dict):
        return _invalid("payload is not a JSON object", fp)
    checked = key is not None
    exp = claims.get("exp")
    if exp is None:
        return JwtState(JwtStatus.ACTIVE, "no expiry (exp) set", fingerprint=fp, signature_checked=checked)
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return _invalid("exp is not a number", fp, checked)
    try:
        expires = datetime.fromtimestamp(exp, UTC)
        expiring_from = minus_one_month(expires)
    except (OverflowError, OSError, ValueError):
        return _invalid("exp is out of range", fp, checked)
    days_left = math.floor((expires - now).total_seconds() / 86400)
    if expires <= now:
        status, reason = JwtStatus.EXPIRED, f"expired {expires.date().isoformat()}"
    elif now >= expiring_from:
        status, reason = JwtStatus.EXPIRING, f"expires {expires.date().isoformat()} (within one month)"
    else:
        status, reason = JwtStatus.ACTIVE, f"valid until {expires.date().isoformat()}"
    return JwtState(status, reason, expires, expiring_from, days_left, fp, checked)


def jwt_state_for_ref(
    ref: SecretRef | None,
    now: datetime,
    *,
    key_ref: SecretRef | None = None,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    environ: Mapping[str, str] | None = None,
) -> JwtState:
    """Resolve the site's JWT reference (and key) lazily, then judge it.

    A reference that cannot be resolved (variable unset, file unreadable) is reported as Invalid
    with the reason, since upscope cannot vouch for a token it cannot read.
    """
    if ref is None:
        return JwtState(JwtStatus.NOT_SET, "no JWT configured")
    try:
        token = ref.resolve(environ)
    except SecretUnavailable as exc:
        return JwtState(JwtStatus.INVALID, str(exc), source=ref.source)
    return jwt_state_from(token, now, ref.source, key_ref=key_ref, algorithms=algorithms, environ=environ)


def jwt_state_from(
    token: str,
    now: datetime,
    source: str,
    *,
    key_ref: SecretRef | None = None,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    environ: Mapping[str, str] | None = None,
) -> JwtState:
    """Judge ``token`` (which came from ``source``) with the key ``key_ref`` names; a key that
    cannot be resolved leaves the signature unchecked and says why in the reason."""
    key: str | None = None
    if key_ref is not None:
        try:
            key = key_ref.resolve(environ)
        except SecretUnavailable as exc:
            state = jwt_state(token, now, algorithms=algorithms)
            return _with(state, source, f"{state.reason}; signature not checked: {exc}")
    state = jwt_state(token, now, key=key, algorithms=algorithms)
    return _with(state, source, state.reason)


def _with(state: JwtState, source: str, reason: str) -> JwtState:
    return JwtState(state.status, reason, state.expires_at, state.expiring_from, state.days_left,
                    state.fingerprint, state.signature_checked, source)
