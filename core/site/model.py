"""The site model: one OSBiz system and its Unify Phone connectivity.

The schema by example is ``examples/site-healthy.yaml``; every key there has a field here.
Models are strict (a callno written as a YAML integer is rejected, because ``0100`` would silently
become 64 in YAML 1.1) and frozen; unknown keys are rejected. Sequences are tuples marked lax so
a YAML list is accepted, while their items stay strictly typed. Defaults: the Unify Phone cloud's
published endpoint addresses, per-call kbps per codec (the OSBiz's own figures are unconfirmed,
hence configurable).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    field_validator,
    model_validator,
)

from core.secrets import SecretRef


def _parse_secret(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, str):
        # Never describe the value itself: it may be a secret written with the wrong YAML type.
        raise ValueError("a secret must be a string: inline, env:VARIABLE or file:PATH")
    return SecretRef.parse(value)


#: A secret reference; serialised as its source (``inline``, ``env:NAME``, ``file:PATH``), never the value.
Secret = Annotated[SecretRef, PlainValidator(_parse_secret), PlainSerializer(lambda s: s.source, return_type=str)]

Digits = Annotated[str, Field(pattern=r"^[0-9]{1,15}$")]
#: A phone number as typed in the OSBiz: digits with optional leading + or 00, spaces, -, /, ().
PhoneText = Annotated[str, Field(pattern=r"^\+?[0-9 ()/-]{1,40}$")]


def _location(value: str) -> str:
    # The wizard makes the country code mandatory; whether it is a *known* country
    # code is judged by the numbering rule (finding ``numbering.location-missing``).
    stripped = value.strip()
    if not (stripped.startswith("+") or stripped.startswith("00")):
        raise ValueError("must include the country code (write +CC…, e.g. +49 89 7007)")
    return value


#: A location number (route or gateway): a phone number written with its country code.
LocationNumber = Annotated[PhoneText, AfterValidator(_location)]
LaxDate = Annotated[date, Field(strict=False)]
LaxDatetime = Annotated[AwareDatetime, Field(strict=False)]

LicenseName = Literal["ip-user", "unify-phone", "voicemail"]
StationType = Literal["trusted-external-user", "mobility-user", "ip-user", "sip-user", "tdm-user"]
DeviceType = Literal["unify-phone", "ip-phone", "tdm-phone", "cordless"]
Target2 = Literal["user-defined", "voicemail", "none", "other"]
NumberingSchema = Literal["international", "internal"]
Codec = Literal["g711", "g722", "g729"]
JwtAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                       "EdDSA", "HS256", "HS384", "HS512"]


def _timezone(value: str | None) -> str | None:
    """An IANA time zone name the time zone database knows (``Europe/Berlin``, ``UTC``)."""
    if value is None:
        return None
    if len(value) > 64 or not re.fullmatch(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", value):
        raise ValueError("must be an IANA time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (IANA names such as Europe/Berlin)") from None
    return value


def _ip(value: str | None) -> str | None:
    if value is not None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("not an IPv4 or IPv6 address") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class System(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    model: Literal["X1", "X3", "X5", "X8", "S"]
    version: Annotated[str, Field(min_length=1, max_length=40)]
    mainboard: Literal["V2", "V3"] | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    #: IANA time zone of the site (e.g. ``Europe/Berlin``): pages show times in it.
    timezone: str | None = None

    _check_ips = field_validator("public_ip", "private_ip")(_ip)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        return _timezone(value)

    @property
    def version_tuple(self) -> tuple[int, int, int] | None:
        return parse_version(self.version)


_VERSION = re.compile(r"^\s*V\s*(\d+)\s*R\s*(\d+)(?:[\s_-]*FR\s*(\d+)|\.(\d+))?", re.IGNORECASE)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``V3R3 FR1`` → (3, 3, 1), ``V3R2`` → (3, 2, 0); None when the text is not of that form.

    The dotted build form ``V3R3.1.0`` is read as FR1 (assumption: the first number after the
    release is the feature release, as in the Assistant's version string; unconfirmed).
    """
    m = _VERSION.match(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or m.group(4) or 0)


def same_version(a: str, b: str) -> bool:
    """Versions compare by their parsed numbers when both parse, else by normalised text."""
    pa, pb = parse_version(a), parse_version(b)
    if pa is not None and pb is not None:
        return pa == pb
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


class Connectivity(_Model):
    enabled: bool = True
    domain: str = "phoneapp.unify.com"
    api_key: Secret | None = None
    simultaneous_calls: Annotated[int, Field(ge=0, le=1000)]
    shared_trunk_lines: bool = False
    upstream_kbps: Annotated[int, Field(ge=0, le=10_000_000)]
    numbering_schema: NumberingSchema = "international"
    route_location_number: LocationNumber | None = None
    gateway_location_number: LocationNumber | None = None


class Route(_Model):
    trusted_external_users: bool = True


class HostPort(_Model):
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]


class ConnectorEndpoint(HostPort):
    host: Annotated[str, Field(min_length=1, max_length=253)] = "35.246.178.13"
    port: Annotated[int, Field(ge=1, le=65535)] = 65061
    transport: Literal["tls", "tcp", "udp"] = "tls"


class StunEndpoint(HostPort):
    host: Annotated[str, Field(min_length=1, max_length=253)] = "34.159.228.55"
    port: Annotated[int, Field(ge=1, le=65535)] = 3478


class RestEndpoint(HostPort):
    host: Annotated[str, Field(min_length=1, max_length=253)] = "34.117.105.255"
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    hostname: str = "phoneapp.unify.com"


class PortRange(_Model):
    first: Annotated[int, Field(ge=1, le=65535)] = 10000
    last: Annotated[int, Field(ge=1, le=65535)] = 49999

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.first > self.last:
            raise ValueError("first must not be greater than last")
        return self


class Endpoints(_Model):
    """The Unify Phone cloud's published addresses by default; a site may override them."""

    connector: ConnectorEndpoint = ConnectorEndpoint()
    stun: StunEndpoint = StunEndpoint()
    rest: RestEndpoint = RestEndpoint()
    media_ports: PortRange = PortRange()


class Tenant(_Model):
    flavour: Literal["openscape", "unify-video"] = "openscape"
    jwt: Secret | None = None
    #: Optional key to check the JWT signature with (PEM public key or HMAC secret).
    jwt_verify_key: Secret | None = None
    #: Algorithms accepted with that key (never taken from the token itself, RFC 8725 §2.1).
    jwt_algorithms: Annotated[tuple[JwtAlgorithm, ...], Field(strict=False, min_length=1)] = ("RS256",)


class SipCredentials(_Model):
    username: Annotated[str, Field(min_length=1, max_length=128)]
    password: Secret


class User(_Model):
    callno: Digits
    did: Digits | None = None
    first_name: Annotated[str, Field(max_length=64)] = ""
    last_name: Annotated[str, Field(max_length=64)] = ""
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)] | None = None
    station_type: StationType = "trusted-external-user"
    licenses: Annotated[tuple[LicenseName, ...], Field(strict=False)] = ()
    call_destination_target2: Target2 | None = None
    directory: bool = True
    alternative_number_in_use: bool = False
    #: The call number as configured in the OSBiz / connector, compared with the derived one.
    call_number: PhoneText | None = None

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class TeamMember(_Model):
    callno: Digits
    device: DeviceType


class Team(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    callno: Digits
    members: Annotated[tuple[TeamMember, ...], Field(strict=False)]


class Pool(_Model):
    total: Annotated[int, Field(ge=0, le=100_000)] = 0
    #: As shown by License Management; when absent, usage is counted from the site's users/teams.
    used: Annotated[int, Field(ge=0, le=100_000)] | None = None
    expires: LaxDate | None = None


class Licenses(_Model):
    ip_user_mobility: Pool = Pool()
    unify_phone: Pool = Pool()
    voicemail: Pool = Pool()
    ip_user_desk: Pool = Pool()
    software_support_until: LaxDate | None = None


class WizardSettings(_Model):
    """Wizard-managed values as the last wizard run left them; only the keys given are compared."""

    enabled: bool | None = None
    domain: str | None = None
    simultaneous_calls: Annotated[int, Field(ge=0, le=1000)] | None = None
    shared_trunk_lines: bool | None = None
    upstream_kbps: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    numbering_schema: NumberingSchema | None = None
    route_location_number: LocationNumber | None = None
    gateway_location_number: LocationNumber | None = None
    trusted_external_users: bool | None = None


class Wizard(_Model):
    last_run: LaxDatetime | None = None
    software_version: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    settings: WizardSettings = WizardSettings()


class PerCallKbps(_Model):
    """One direction, 20 ms packets, IP/UDP/RTP overhead included (the OSBiz's own figures are unconfirmed)."""

    g711: Annotated[float, Field(gt=0, le=10_000)] = 87.2
    g722: Annotated[float, Field(gt=0, le=10_000)] = 87.2
    g729: Annotated[float, Field(gt=0, le=10_000)] = 31.2


class Bandwidth(_Model):
    codec: Codec = "g711"
    per_call_kbps: PerCallKbps = PerCallKbps()
    #: Share of the upstream usable for voice (sales rule of thumb: 50 %).
    voice_share: Annotated[float, Field(gt=0, le=1)] = 0.5


class Site(_Model):
    system: System
    connectivity: Connectivity
    route: Route = Route()
    endpoints: Endpoints = Endpoints()
    tenant: Tenant = Tenant()
    sip_credentials: SipCredentials | None = None
    users: Annotated[tuple[User, ...], Field(strict=False)] = ()
    teams: Annotated[tuple[Team, ...], Field(strict=False)] = ()
    licenses: Licenses = Licenses()
    wizard: Wizard | None = None
    bandwidth: Bandwidth = Bandwidth()
    gcp_ranges_file: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @field_validator("users")
    @classmethod
    def _unique_callnos(cls, users: tuple[User, ...]) -> tuple[User, ...]:
        seen: set[str] = set()
        for u in users:
            if u.callno in seen:
                raise ValueError(f"callno {u.callno} is used by more than one user")
            seen.add(u.callno)
        return users

    def user(self, callno: str) -> User | None:
        return next((u for u in self.users if u.callno == callno), None)

    def team_of(self, callno: str) -> tuple[int, Team] | None:
        """The first team (index, team) holding ``callno`` as its Unify Phone member."""
        for i, t in enumerate(self.teams):
            if any(m.callno == callno and m.device == "unify-phone" for m in t.members):
                return i, t
        return None

    def secret_values(self) -> tuple[str, ...]:
        """The resolvable secret values (API key, JWT, JWT key, SIP password): scrubbed from exports."""
        refs = (self.connectivity.api_key, self.tenant.jwt, self.tenant.jwt_verify_key,
                self.sip_credentials.password if self.sip_credentials else None)
        return tuple(v for v in (r.try_resolve() for r in refs if r is not None) if v)

    def to_public_dict(self) -> dict[str, Any]:
        """The site as JSON-able data; secrets appear as their source only."""
        return self.model_dump(mode="json")
