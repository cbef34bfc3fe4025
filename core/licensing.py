"""Licenses: pool usage, per-user entitlement, Software Support at ``now``.

Every Unify Phone user needs an IP User (Mobility User) and a Unify Phone license; a twinned IP
desk phone needs an IP User license of its own (TDM desk phones do not); Voicemail is optional.
Pool usage is counted from the site's users and teams — what the licenses must cover — unless
the site file states ``used`` as License Management shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from core.site.model import Pool, Site

#: Per-user license name in the site file → pool key in ``licenses``.
USER_POOLS: dict[str, str] = {
    "ip-user": "ip_user_mobility",
    "unify-phone": "unify_phone",
    "voicemail": "voicemail",
}
#: Licenses every Unify Phone user must hold; voicemail is optional.
REQUIRED = ("ip-user", "unify-phone")
POOL_TITLES = {
    "ip_user_mobility": "IP User (Mobility User)",
    "unify_phone": "Unify Phone",
    "voicemail": "Voicemail",
    "ip_user_desk": "IP User (desk phone)",
}


def utc_date(now: datetime) -> date:
    return now.astimezone(UTC).date()


def _expired(pool: Pool, today: date) -> bool:
    # A license is valid through its expiry date (the last day it may be used).
    return pool.expires is not None and pool.expires < today


@dataclass(frozen=True, slots=True)
class PoolUsage:
    name: str
    total: int
    needed: int  # counted from users / teams
    used: int  # as stated by the site file, else ``needed``
    expires: date | None
    expired: bool

    @property
    def shortfall(self) -> int:
        return max(0, self.needed - self.total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "needed": self.needed,
            "used": self.used,
            "shortfall": self.shortfall,
            "expires": self.expires.isoformat() if self.expires else None,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True)
class UserLicenses:
    index: int
    callno: str
    missing: tuple[str, ...]  # required licenses not assigned
    expired: tuple[str, ...]  # assigned, but the pool has expired
    voicemail: bool

    @property
    def state(self) -> str:
        if self.missing:
            return "missing"
        if self.expired:
            return "expired"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "missing": list(self.missing), "expired": list(self.expired),
                "voicemail": self.voicemail}


@dataclass(frozen=True, slots=True)
class LicenseReport:
    pools: dict[str, PoolUsage]
    users: tuple[UserLicenses, ...]
    software_support_until: date | None
    software_support_valid: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "software_support_until": self.software_support_until.isoformat()
            if self.software_support_until else None,
            "software_support_valid": self.software_support_valid,
            "pools": {k: v.to_dict() for k, v in self.pools.items()},
        }


def software_support_valid(site: Site, now: datetime) -> bool:
    until = site.licenses.software_support_until
    return until is not None and utc_date(now) <= until


def evaluate_licenses(site: Site, now: datetime) -> LicenseReport:
    today = utc_date(now)
    lic = site.licenses
    pools_cfg: dict[str, Pool] = {
        "ip_user_mobility": lic.ip_user_mobility,
        "unify_phone": lic.unify_phone,
        "voicemail": lic.voicemail,
        "ip_user_desk": lic.ip_user_desk,
    }
    needed = {k: 0 for k in pools_cfg}
    for user in site.users:
        for name in set(user.licenses):
            needed[USER_POOLS[name]] += 1
    needed["ip_user_desk"] = sum(
        1 for team in site.teams for m in team.members if m.device == "ip-phone"
    )
    pools = {
        k: PoolUsage(k, p.total, needed[k], p.used if p.used is not None else needed[k], p.expires,
                     _expired(p, today))
        for k, p in pools_cfg.items()
    }
    users = []
    for i, user in enumerate(site.users):
        held = set(user.licenses)
        users.append(UserLicenses(
            index=i,
            callno=user.callno,
            missing=tuple(n for n in REQUIRED if n not in held),
            expired=tuple(n for n in REQUIRED if n in held and pools[USER_POOLS[n]].expired),
            voicemail="voicemail" in held,
        ))
    return LicenseReport(pools, tuple(users), lic.software_support_until, software_support_valid(site, now))
