"""Unify Phone user call numbers (as the Unify Phone wizards derive them).

Derivation, as the user instance and team wizards do it:

* international schema: ``+`` route location number digits (country code included) + the
  user's DID; a user without DID gets the location + callno (only legal where DID-less users
  are allowed, see ``did_less_allowed``); a team's Unify Phone member gets location + the team's
  callno ("the Team wizard will update the Unify Phone User call number fitting to the Team
  internal Call Number");
* internal schema: the callno, or the team's callno for a team member.

E.164 rules: at most 15 digits, country code 1–3 digits taken from ``phonenumbers``' table of real
country codes, and the number must be of a possible length for that country (``phonenumbers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, ValidationResult

from core.site.model import Site, User

E164_MAX_DIGITS = 15  # ITU-T E.164 §6.1
#: First release with the numbering schema choice and DID-less users (V3R3 FR1).
DID_LESS_MIN_VERSION = (3, 3, 1)


class NumberingProblem(StrEnum):
    LOCATION_MISSING = "location-missing"
    TOO_LONG = "too-long"
    NOT_POSSIBLE = "not-possible"
    MISMATCH = "mismatch"
    NO_DID_NOT_ALLOWED = "no-did-not-allowed"


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed route location number: ``digits`` includes the country code."""

    digits: str
    country_code: int


@dataclass(frozen=True, slots=True)
class LocationCheck:
    location: Location | None
    problem: str | None  # why the location is unusable, None when fine


@dataclass(frozen=True, slots=True)
class UserNumber:
    """The derived call number of one user and what is wrong with it."""

    index: int  # position in site.users (for config paths)
    callno: str
    schema: str
    derived: str | None  # "+49897007100" (international) or "100" (internal); None without location
    source: str  # "did" | "callno" | "team-callno"
    team: str | None
    configured: str | None
    problems: tuple[NumberingProblem, ...]
    details: tuple[str, ...] = ()  # one human-readable reason per problem, same order

    @property
    def detail(self) -> str:
        return "; ".join(self.details)

    def detail_of(self, problem: NumberingProblem) -> str:
        return next((d for p, d in zip(self.problems, self.details, strict=True) if p is problem), "")

    @property
    def digits(self) -> int:
        return sum((c.isascii() and c.isdigit()) for c in self.derived or "")

    @property
    def verdict(self) -> str:
        return self.problems[0].value if self.problems else "ok"


def _digits(text: str) -> str:
    # ASCII only: str.isdigit() also accepts "²" or Arabic-Indic digits, which are no E.164 digits.
    return "".join(c for c in text if "0" <= c <= "9")


def parse_location(text: str | None) -> LocationCheck:
    """Parse a route location number written ``+CC …`` or ``00CC …``; the country code is mandatory."""
    if text is None or not _digits(text):
        return LocationCheck(None, "no route location number")
    stripped = text.strip()
    digits = _digits(stripped)
    if stripped.startswith("+"):
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    else:
        return LocationCheck(None, "route location number without country code (write +CC…)")
    if not digits or digits[0] == "0":
        return LocationCheck(None, "route location number without country code (write +CC…)")
    # Country codes are prefix-free (E.164), so the first known 1–3 digit prefix is the one.
    for n in range(1, min(3, len(digits)) + 1):
        cc = int(digits[:n])
        if cc in COUNTRY_CODE_TO_REGION_CODE:
            return LocationCheck(Location(digits, cc), None)
    return LocationCheck(None, f"route location number has no valid country code (+{digits[:3]}…)")


def is_team_member(site: Site, callno: str) -> bool:
    return site.team_of(callno) is not None


def did_less_allowed(site: Site) -> tuple[bool, str]:
    """Users without DID: Unify Phone for OpenScape, V3R3 FR1 or later, internal schema."""
    reasons = []
    if site.tenant.flavour != "openscape":
        reasons.append("needs Unify Phone for OpenScape (not Unify Video)")
    if site.connectivity.numbering_schema != "internal":
        reasons.append("needs the internal numbering schema")
    version = site.system.version_tuple
    if version is None:
        reasons.append(f"needs V3R3 FR1 or later (version {site.system.version!r} not recognised)")
    elif version < DID_LESS_MIN_VERSION:
        reasons.append(f"needs V3R3 FR1 or later (system runs {site.system.version})")
    return (not reasons, "; ".join(reasons))


def _e164_problem(digits: str) -> tuple[NumberingProblem | None, str]:
    if len(digits) > E164_MAX_DIGITS:
        return NumberingProblem.TOO_LONG, f"{len(digits)} digits, E.164 allows {E164_MAX_DIGITS}"
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return NumberingProblem.NOT_POSSIBLE, "not an E.164 number"
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        return None, ""
    why = {
        ValidationResult.TOO_SHORT: "too short",
        ValidationResult.TOO_LONG: "too long",
        ValidationResult.INVALID_LENGTH: "of an invalid length",
        ValidationResult.INVALID_COUNTRY_CODE: "of an unknown country code",
    }.get(reason, "not possible")
    return NumberingProblem.NOT_POSSIBLE, f"{len(digits)} digits is {why} for country code +{number.country_code}"


def _same_number(configured: str, derived: str, schema: str) -> bool:
    a, b = configured.strip(), derived
    if schema == "international" and not a.startswith("+") and _digits(a).startswith("00"):
        a = _digits(a)[2:]
    return _digits(a) == _digits(b)


def derive_user(site: Site, index: int, user: User, location: LocationCheck | None = None) -> UserNumber:
    schema = site.connectivity.numbering_schema
    membership = site.team_of(user.callno)
    team = membership[1] if membership else None
    if team is not None:
        local, source = team.callno, "team-callno"
    elif user.did is not None and schema == "international":
        local, source = user.did, "did"
    else:
        local, source = user.callno, "callno"

    problems: list[NumberingProblem] = []
    details: list[str] = []
    if team is None and user.did is None:
        allowed, why = did_less_allowed(site)
        if not allowed:
            problems.append(NumberingProblem.NO_DID_NOT_ALLOWED)
            details.append(why)

    derived: str | None
    if schema == "internal":
        derived = local
    else:
        loc = location or parse_location(site.connectivity.route_location_number)
        if loc.location is None:
            derived = None
            problems.insert(0, NumberingProblem.LOCATION_MISSING)
            details.insert(0, loc.problem or "")
        else:
            digits = loc.location.digits + local
            derived = "+" + digits
            problem, why = _e164_problem(digits)
            if problem is not None:
                problems.insert(0, problem)
                details.insert(0, why)
    if derived is not None and user.call_number is not None and not _same_number(user.call_number, derived, schema):
        problems.append(NumberingProblem.MISMATCH)
        details.append(f"configured {user.call_number}, numbering plan gives {derived}")
    return UserNumber(
        index=index,
        callno=user.callno,
        schema=schema,
        derived=derived,
        source=source,
        team=team.name if team else None,
        configured=user.call_number,
        problems=tuple(problems),
        details=tuple(details),
    )


def derive_all(site: Site) -> tuple[UserNumber, ...]:
    """Derived call numbers of every user, in file order."""
    loc = parse_location(site.connectivity.route_location_number)
    return tuple(derive_user(site, i, u, loc) for i, u in enumerate(site.users))
