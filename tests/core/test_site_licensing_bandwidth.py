"""Licensing (seed §3.5) and bandwidth (DOMAIN §8): pure functions of the site and ``now``."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.bandwidth import check_bandwidth, max_concurrent_calls
from core.licensing import evaluate_licenses, software_support_valid
from core.site import Site

ROOT = Path(__file__).resolve().parents[2]
HEALTHY: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "site-healthy.yaml").read_text(encoding="utf-8"))


def variant(**sections: Any) -> Site:
    data = copy.deepcopy(HEALTHY)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return Site.model_validate(data)


def at(y: int, m: int, d: int, hh: int = 12) -> datetime:
    return datetime(y, m, d, hh, tzinfo=UTC)


def test_pool_usage_counted_from_users_and_teams() -> None:
    report = evaluate_licenses(variant(), at(2026, 11, 26))
    assert {k: (p.total, p.needed, p.used) for k, p in report.pools.items()} == {
        "ip_user_mobility": (10, 3, 3),
        "unify_phone": (10, 3, 3),
        "voicemail": (5, 1, 1),
        "ip_user_desk": (20, 1, 1),  # one IP desk phone in team "Clara desk"; used as stated
    }
    assert [u.state for u in report.users] == ["ok", "ok", "ok"]
    assert [u.voicemail for u in report.users] == [False, True, False]


def test_missing_and_expired_user_licenses() -> None:
    users = copy.deepcopy(HEALTHY["users"])
    users[0]["licenses"] = ["unify-phone"]
    users[1]["licenses"] = []
    site = variant(users=users, licenses={"unify_phone": {"total": 10, "expires": "2026-06-30"}})
    report = evaluate_licenses(site, at(2026, 11, 26))
    assert [(u.state, u.missing, u.expired) for u in report.users] == [
        ("missing", ("ip-user",), ("unify-phone",)),
        ("missing", ("ip-user", "unify-phone"), ()),
        ("expired", (), ("unify-phone",)),
    ]
    # valid through the expiry day itself
    assert not evaluate_licenses(site, at(2026, 6, 30, 23)).pools["unify_phone"].expired
    assert evaluate_licenses(site, at(2026, 7, 1, 0)).pools["unify_phone"].expired


def test_shortfall() -> None:
    site = variant(licenses={"unify_phone": {"total": 2}})
    assert evaluate_licenses(site, at(2026, 1, 1)).pools["unify_phone"].shortfall == 1


@pytest.mark.parametrize(
    ("until", "now", "valid"),
    [
        ("2027-12-31", at(2027, 12, 31, 23), True),
        ("2027-12-31", at(2028, 1, 1, 0), False),
        (None, at(2026, 1, 1), False),
    ],
)
def test_software_support(until: str | None, now: datetime, valid: bool) -> None:
    assert software_support_valid(variant(licenses={"software_support_until": until}), now) is valid


def test_software_support_is_judged_in_utc() -> None:
    from datetime import timedelta, timezone

    site = variant(licenses={"software_support_until": "2027-12-31"})
    # 1 January 00:30 in UTC+1 is still 31 December in UTC
    assert software_support_valid(site, datetime(2028, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))


@pytest.mark.parametrize(
    ("kbps", "per_call", "share", "calls"),
    [
        (1000, 87.2, 0.5, 5),  # the seed's rule of thumb: 1 Mbit/s → 5 G.711 trunks
        (2000, 87.2, 0.5, 11),
        (872, 87.2, 1.0, 10),  # exact multiple survives float rounding
        (1000, 31.2, 0.5, 16),
        (0, 87.2, 0.5, 0),
        (80, 87.2, 1.0, 0),
    ],
)
def test_max_concurrent_calls(kbps: int, per_call: float, share: float, calls: int) -> None:
    assert max_concurrent_calls(kbps, per_call, share) == calls


def test_bad_bandwidth_parameters() -> None:
    with pytest.raises(ValueError):
        max_concurrent_calls(1000, 0, 0.5)
    with pytest.raises(ValueError):
        max_concurrent_calls(1000, 87.2, 0)


def test_site_bandwidth_uses_configured_codec_and_share() -> None:
    base = check_bandwidth(variant())
    assert (base.codec, base.max_calls, base.configured_calls, base.ok) == ("g711", 11, 8, True)
    low = check_bandwidth(variant(connectivity={"upstream_kbps": 1000}))
    assert (low.max_calls, low.ok, low.needed_kbps) == (5, False, 1395.2)
    g729 = check_bandwidth(variant(connectivity={"upstream_kbps": 1000}, bandwidth={"codec": "g729"}))
    assert (g729.max_calls, g729.ok) == (16, True)
    tuned = check_bandwidth(variant(bandwidth={"per_call_kbps": {"g711": 100}, "voice_share": 0.8}))
    assert tuned.max_calls == 16


@given(st.integers(0, 10_000_000), st.floats(1, 500), st.floats(0.01, 1))
def test_max_calls_fit_the_share(kbps: int, per_call: float, share: float) -> None:
    n = max_concurrent_calls(kbps, per_call, share)
    assert n >= 0
    assert n * per_call <= kbps * share + 1e-6 * per_call
    assert (n + 1) * per_call > kbps * share - 1e-6 * per_call
