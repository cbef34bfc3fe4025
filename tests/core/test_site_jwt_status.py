"""JWT status (DOMAIN §4): the five statuses, calendar-month "Expiring", signatures, garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from core.jwt_status import JwtStatus, jwt_state, jwt_state_for_ref, minus_one_month
from core.secrets import SecretRef, fingerprint

KEY = "upscope-test-hmac-key-000000000000000"


def token(exp: datetime | None = None, **claims: object) -> str:
    payload: dict[str, object] = {"iss": "lab", "sub": "client", **claims}
    if exp is not None:
        payload["exp"] = int(exp.timestamp())
    return pyjwt.encode(payload, KEY, algorithm="HS256")


def at(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("exp", "month_before"),
    [
        (at(2027, 3, 31), at(2027, 2, 28)),  # clamp to the end of a 28-day February
        (at(2028, 3, 31), at(2028, 2, 29)),  # leap year
        (at(2028, 3, 30), at(2028, 2, 29)),
        (at(2028, 3, 29), at(2028, 2, 29)),
        (at(2027, 3, 28), at(2027, 2, 28)),
        (at(2026, 5, 31), at(2026, 4, 30)),
        (at(2026, 3, 15), at(2026, 2, 15)),
        (at(2027, 1, 31), at(2026, 12, 31)),  # across the year boundary
        (at(2100, 3, 31), at(2100, 2, 28)),  # 2100 is not a leap year
        (at(2000, 3, 31), at(2000, 2, 29)),  # 2000 is
    ],
)
def test_minus_one_month(exp: datetime, month_before: datetime) -> None:
    assert minus_one_month(exp) == month_before


def test_minus_one_month_keeps_zone_and_time() -> None:
    cet = timezone(timedelta(hours=1))
    assert minus_one_month(datetime(2027, 3, 31, 23, 59, tzinfo=cet)) == datetime(2027, 2, 28, 23, 59, tzinfo=cet)


@pytest.mark.parametrize(
    ("exp", "now", "status"),
    [
        # exp 31 March 2027 12:00 → Expiring from 28 February 2027 12:00
        (at(2027, 3, 31), at(2027, 2, 28, 11, 59), JwtStatus.ACTIVE),
        (at(2027, 3, 31), at(2027, 2, 28, 12, 0), JwtStatus.EXPIRING),
        (at(2027, 3, 31), at(2027, 3, 1), JwtStatus.EXPIRING),
        # leap year: from 29 February 2028
        (at(2028, 3, 31), at(2028, 2, 28, 23, 0), JwtStatus.ACTIVE),
        (at(2028, 3, 31), at(2028, 2, 29, 12, 0), JwtStatus.EXPIRING),
        (at(2028, 3, 31), at(2028, 3, 31, 11, 59), JwtStatus.EXPIRING),
        (at(2028, 3, 31), at(2028, 3, 31, 12, 0), JwtStatus.EXPIRED),  # exp ≤ now
        (at(2028, 3, 31), at(2028, 4, 1), JwtStatus.EXPIRED),
        (at(2027, 1, 15), at(2026, 12, 14), JwtStatus.ACTIVE),
        (at(2027, 1, 15), at(2026, 12, 15), JwtStatus.EXPIRING),
    ],
)
def test_status_at_month_boundaries(exp: datetime, now: datetime, status: JwtStatus) -> None:
    state = jwt_state(token(exp), now)
    assert state.status is status
    assert state.expires_at == exp
    assert state.expiring_from == minus_one_month(exp)


def test_days_left_and_fingerprint() -> None:
    t = token(at(2026, 12, 20))
    state = jwt_state(t, at(2026, 11, 26))
    assert state.status is JwtStatus.EXPIRING
    assert state.days_left == 24
    assert state.fingerprint == fingerprint(t)
    assert t not in str(state.to_dict()) and t not in repr(state)
    assert jwt_state(t, at(2026, 12, 21)).days_left == -1


def test_not_set_and_no_expiry() -> None:
    assert jwt_state(None, at(2026, 1, 1)).status is JwtStatus.NOT_SET
    assert jwt_state("  ", at(2026, 1, 1)).status is JwtStatus.NOT_SET
    state = jwt_state(token(), at(2026, 1, 1))
    assert (state.status, state.expires_at, state.days_left) == (JwtStatus.ACTIVE, None, None)


@pytest.mark.parametrize(
    "garbage",
    ["not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.sig", "x" * 20000,
     "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjF9."],  # alg none: {"alg":"none"}.{"exp":1}.
)
def test_garbage_is_invalid(garbage: str) -> None:
    state = jwt_state(garbage, at(2026, 1, 1))
    assert state.status is JwtStatus.INVALID
    assert state.fingerprint == fingerprint(garbage)


@pytest.mark.parametrize("exp", ["tomorrow", True, None, [1], 1e300])
def test_bad_exp_claim_is_invalid(exp: object) -> None:
    t = pyjwt.encode({"exp": exp} if exp is not None else {"exp": {"a": 1}}, KEY, algorithm="HS256")
    assert jwt_state(t, at(2026, 1, 1)).status is JwtStatus.INVALID


def test_signature_checked_with_key() -> None:
    t = token(at(2027, 6, 1))
    good = jwt_state(t, at(2026, 1, 1), key=KEY, algorithms=["HS256"])
    assert (good.status, good.signature_checked) == (JwtStatus.ACTIVE, True)
    bad = jwt_state(t, at(2026, 1, 1), key="another-key-000000000000000000000000", algorithms=["HS256"])
    assert bad.status is JwtStatus.INVALID and "signature" in bad.reason
    alg = jwt_state(t, at(2026, 1, 1), key=KEY, algorithms=["RS256"])
    assert alg.status is JwtStatus.INVALID


def test_rs256_signature() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    t = pyjwt.encode({"exp": int(at(2027, 6, 1).timestamp())}, private, algorithm="RS256")
    assert jwt_state(t, at(2026, 1, 1), key=public_pem).status is JwtStatus.ACTIVE
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert jwt_state(t, at(2026, 1, 1), key=other).status is JwtStatus.INVALID
    unusable = jwt_state(t, at(2026, 1, 1), key="not a pem key")
    assert unusable.status is JwtStatus.INVALID and "key unusable" in unusable.reason


def test_reference_resolution(tmp_path: Path) -> None:
    t = token(at(2027, 6, 1))
    now = at(2026, 1, 1)
    assert jwt_state_for_ref(None, now).status is JwtStatus.NOT_SET
    ref = SecretRef.parse("env:UPSCOPE_JWT")
    unresolved = jwt_state_for_ref(ref, now, environ={})
    assert unresolved.status is JwtStatus.INVALID and "env:UPSCOPE_JWT" in unresolved.reason
    resolved = jwt_state_for_ref(ref, now, environ={"UPSCOPE_JWT": t})
    assert (resolved.status, resolved.source) == (JwtStatus.ACTIVE, "env:UPSCOPE_JWT")
    f = tmp_path / "jwt"
    f.write_text(t)
    key_ref = SecretRef.parse(f"file:{tmp_path / 'missing-key'}")
    no_key = jwt_state_for_ref(SecretRef.parse(f"file:{f}"), now, key_ref=key_ref, algorithms=["HS256"])
    assert no_key.status is JwtStatus.ACTIVE and "signature not checked" in no_key.reason


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        jwt_state(token(), datetime(2026, 1, 1))


@settings(max_examples=300, deadline=None)
@given(
    exp=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)),
    offset=st.integers(-40 * 86400, 40 * 86400),
)
def test_status_matches_the_calendar_rule(exp: datetime, offset: int) -> None:
    exp = exp.replace(microsecond=0)
    now = exp + timedelta(seconds=offset)
    state = jwt_state(token(exp), now)
    start = minus_one_month(exp)
    # the month before is 28–31 days long and on the previous month's calendar
    assert timedelta(days=28) <= exp - start <= timedelta(days=31)
    assert (start.year, start.month) == ((exp.year, exp.month - 1) if exp.month > 1 else (exp.year - 1, 12))
    expected = JwtStatus.EXPIRED if exp <= now else JwtStatus.EXPIRING if now >= start else JwtStatus.ACTIVE
    assert state.status is expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_string_gives_a_status(text: str) -> None:
    state = jwt_state(text, at(2026, 1, 1))
    assert state.status in (JwtStatus.NOT_SET, JwtStatus.INVALID, JwtStatus.ACTIVE, JwtStatus.EXPIRED,
                            JwtStatus.EXPIRING)
