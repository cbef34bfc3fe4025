"""Unify Phone call number derivation and E.164 checks (DOMAIN §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from core.diagnosis import DiagnosisInputs, context_of, evaluate
from core.numbering import NumberingProblem, derive_all, did_less_allowed, parse_location
from core.site import Site, parse_version

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def site(users: list[dict[str, Any]], *, schema: str = "international", location: str | None = "+49 89 7007",
         version: str = "V3R3 FR1", flavour: str = "openscape", teams: list[dict[str, Any]] | None = None) -> Site:
    return Site.model_validate({
        "system": {"name": "t", "model": "X5", "version": version},
        "connectivity": {"simultaneous_calls": 4, "upstream_kbps": 2000, "numbering_schema": schema,
                         "route_location_number": location},
        "tenant": {"flavour": flavour},
        "users": users,
        "teams": teams or [],
    })


def test_international_did_and_team_member() -> None:
    s = site([{"callno": "100", "did": "100"}, {"callno": "102"}],
             teams=[{"name": "T", "callno": "300",
                     "members": [{"callno": "102", "device": "unify-phone"}, {"callno": "200", "device": "ip-phone"}]}])
    a, b = derive_all(s)
    assert (a.derived, a.source, a.problems) == ("+49897007100", "did", ())
    assert (b.derived, b.source, b.team, b.problems) == ("+49897007300", "team-callno", "T", ())


def test_internal_schema_uses_callno() -> None:
    s = site([{"callno": "100", "did": "555"}, {"callno": "101"}], schema="internal", location=None)
    a, b = derive_all(s)
    assert (a.derived, b.derived) == ("100", "101")
    assert a.problems == () and b.problems == ()  # DID-less allowed: openscape, internal, V3R3 FR1


@pytest.mark.parametrize(
    ("flavour", "schema", "version", "allowed"),
    [
        ("openscape", "internal", "V3R3 FR1", True),
        ("openscape", "internal", "V3R3 FR2", True),
        ("openscape", "internal", "V4R1", True),
        ("openscape", "internal", "V3R3", False),
        ("openscape", "internal", "V3R2 FR9", False),
        ("openscape", "international", "V3R3 FR1", False),
        ("unify-video", "internal", "V3R3 FR1", False),
        ("openscape", "internal", "latest", False),
    ],
)
def test_did_less_rules(flavour: str, schema: str, version: str, allowed: bool) -> None:
    s = site([{"callno": "101"}], schema=schema, version=version, flavour=flavour)
    assert did_less_allowed(s)[0] is allowed
    problems = derive_all(s)[0].problems
    assert (NumberingProblem.NO_DID_NOT_ALLOWED in problems) is (not allowed)


@pytest.mark.parametrize(
    ("text", "digits", "cc", "problem"),
    [
        ("+49 89 7007", "49897007", 49, None),
        ("0049 (89) 7007", "49897007", 49, None),
        ("+1 212 555", "1212555", 1, None),
        ("+358 9 123", "3589123", 358, None),
        ("+999 1234", None, None, "no valid country code"),
        ("+0 89", None, None, "without country code"),
        ("089 7007", None, None, "without country code"),
        (None, None, None, "no route location number"),
        ("+", None, None, "no route location number"),
    ],
)
def test_parse_location(text: str | None, digits: str | None, cc: int | None, problem: str | None) -> None:
    check = parse_location(text)
    if problem is None:
        assert check.location is not None and (check.location.digits, check.location.country_code) == (digits, cc)
    else:
        assert check.location is None and check.problem is not None and problem in check.problem


def test_sixteen_digits_is_too_long_fifteen_is_not() -> None:
    s = site([{"callno": "1", "did": "1234567"}, {"callno": "2", "did": "12345678"}])
    fifteen, sixteen = derive_all(s)
    assert fifteen.digits == 15 and NumberingProblem.TOO_LONG not in fifteen.problems
    assert sixteen.digits == 16 and sixteen.problems[0] is NumberingProblem.TOO_LONG


def test_impossible_length_for_country() -> None:
    # +33 1 2345: 7 digits cannot be a French number (phonenumbers' metadata: 9 national digits).
    s = site([{"callno": "1", "did": "2345"}], location="+33 1")
    assert derive_all(s)[0].problems == (NumberingProblem.NOT_POSSIBLE,)
    assert "too short" in derive_all(s)[0].detail


def test_configured_number_mismatch_ignores_formatting() -> None:
    s = site([{"callno": "100", "did": "100", "call_number": "+49 89 7007-100"},
              {"callno": "101", "did": "101", "call_number": "0049897007101"},
              {"callno": "102", "did": "102", "call_number": "+49897007199"}])
    a, b, c = derive_all(s)
    assert a.problems == () and b.problems == ()
    assert c.problems == (NumberingProblem.MISMATCH,) and "+49897007102" in c.detail


def test_location_missing_gives_no_number() -> None:
    s = site([{"callno": "100", "did": "100"}], location=None)
    un = derive_all(s)[0]
    assert un.derived is None and un.verdict == "location-missing"


COUNTRY_CODES = sorted(COUNTRY_CODE_TO_REGION_CODE)


@settings(max_examples=300, deadline=None)
@given(
    cc=st.sampled_from(COUNTRY_CODES),
    area=st.text("0123456789", max_size=10),
    did=st.text("0123456789", min_size=1, max_size=15),
)
def test_never_more_than_15_digits_without_too_long(cc: int, area: str, did: str) -> None:
    s = site([{"callno": "100", "did": did}], location=f"+{cc} {area}")
    un = derive_all(s)[0]
    assert un.derived == f"+{cc}{area}{did}"
    findings = evaluate(context_of(DiagnosisInputs(site=s, now=NOW)))
    too_long = [f for f in findings if f.id == "numbering.too-long"]
    if un.digits > 15:
        assert len(too_long) == 1 and too_long[0].subject == "user 100"
        assert too_long[0].evidence[0].config_path == "users[0].did"
    else:
        assert too_long == []


@given(st.text(max_size=60))
def test_parse_location_total(text: str) -> None:
    check = parse_location(text)
    assert (check.location is None) != (check.problem is None)
    if check.location is not None:
        assert check.location.digits.isdigit()
        assert check.location.digits.startswith(str(check.location.country_code))
        assert check.location.country_code in COUNTRY_CODE_TO_REGION_CODE


@given(st.text(max_size=40))
def test_parse_version_total(text: str) -> None:
    version = parse_version(text)
    assert version is None or (len(version) == 3 and all(n >= 0 for n in version))


@pytest.mark.parametrize(
    ("text", "version"),
    [("V3R3 FR1", (3, 3, 1)), ("V3R3FR1", (3, 3, 1)), ("v3 r3 fr 2", (3, 3, 2)), ("V3R2", (3, 2, 0)),
     ("V3R3.1.0_017", (3, 3, 1)), ("V3R3.0.0", (3, 3, 0)), ("3.3", None), ("", None)],
)
def test_parse_version(text: str, version: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == version
