"""What the lab leaves in ``--out``: site.yaml, osbiz-trace.log, jwt.txt, scenario.json, lab.json.

The site file follows ``examples/site-healthy.yaml`` (the schema by example) with the lab's
loopback endpoints; a scenario's configuration fault is applied to it while the fault is active
(the file is rewritten atomically at the window edges so a watcher sees the fault open and
close). The OSBiz trace log has the format traces/tracelog.py reads (docs/analysis-capture.md).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import jwt as pyjwt
import yaml

from core.lab.scenarios import Scenario, SiteDict
from core.numbering import derive_all, parse_location
from core.site.loader import load_site_text

ROUTE_LOCATION = "+49 89 7007"
FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ida", "Jonas")
LAST_NAMES = ("Berger", "Kraus", "Dietz", "Meyer", "Schulz", "Wagner", "Becker", "Hoffmann")
JWT_AUDIENCE = "https://platform.ringcentral.com/restapi/oauth/token"  # RFC 7523 token endpoint


def derived_number(did: str) -> str:
    """International schema: route location number + DID, for the base site."""
    return "+" + "".join(ch for ch in ROUTE_LOCATION if ch.isdigit()) + did


def plan_numbers(site: SiteDict) -> dict[str, str]:
    """callno → the call number the numbering plan derives, the way the product derives it.

    The lab's site goes through the real loader and ``core.numbering`` so the emulated OSBiz
    and the checks of upscope agree on what "matches the plan" means.
    """
    model = load_site_text(yaml.safe_dump(site, sort_keys=False), "lab site")
    return {n.callno: n.derived for n in derive_all(model) if n.derived is not None}


def local_number(site: SiteDict, local: str) -> str:
    """A PBX-internal number (a desk phone) as the trunk shows it under the site's schema."""
    conn = site["connectivity"]
    if conn.get("numbering_schema") == "internal":
        return local
    loc = parse_location(conn.get("route_location_number")).location
    return "+" + (loc.digits if loc is not None else "") + local


def base_site(*, name: str, pbx_ip: str, connector: tuple[str, int], stun: tuple[str, int],
              rest: tuple[str, int], media: range, users: int, flavour: str, api_key: str,
              today: dt.date, lines: int = 8) -> SiteDict:
    # Enough upstream for the lines at the default G.711 figures (87.2 kbps, 50 % voice share,
    # core.bandwidth), so only the bandwidth-too-low scenario trips that rule.
    upstream = max(2000, math.ceil(lines * 87.2 / 0.5))
    people = []
    for i in range(users):
        callno = str(100 + i)
        people.append({
            "callno": callno, "did": callno,
            "first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
            "last_name": LAST_NAMES[i % len(LAST_NAMES)],
            "email": f"user{callno}@lab.upscope.invalid",
            "station_type": "trusted-external-user",
            "licenses": ["ip-user", "unify-phone"],
            "call_destination_target2": "user-defined",
            "directory": True,
            "alternative_number_in_use": False,
            "call_number": derived_number(callno),
        })
    return {
        "system": {"name": name, "model": "X5", "version": "V3R3 FR1", "mainboard": "V3",
                   "public_ip": pbx_ip, "private_ip": pbx_ip},
        "connectivity": {
            "enabled": True, "domain": "phoneapp.unify.com", "api_key": api_key,
            "simultaneous_calls": lines, "shared_trunk_lines": False, "upstream_kbps": upstream,
            "numbering_schema": "international", "route_location_number": ROUTE_LOCATION,
            "gateway_location_number": ROUTE_LOCATION,
        },
        "route": {"trusted_external_users": True},
        "endpoints": {
            "connector": {"host": connector[0], "port": connector[1], "transport": "tls"},
            "stun": {"host": stun[0], "port": stun[1]},
            "rest": {"host": rest[0], "port": rest[1], "hostname": "phoneapp.unify.com"},
            "media_ports": {"first": media.start, "last": media.stop - 1},
        },
        "tenant": {"flavour": flavour, "jwt": None},
        "users": people,
        "licenses": {
            "ip_user_mobility": {"total": max(10, users)},
            "unify_phone": {"total": max(10, users)},
            "voicemail": {"total": 5},
            "ip_user_desk": {"total": 20},
            "software_support_until": (today + dt.timedelta(days=365)).isoformat(),
        },
        "wizard": {
            "last_run": (dt.datetime.combine(today, dt.time(8, 0), dt.UTC)
                         - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "software_version": "V3R3 FR1",
            "settings": {
                "simultaneous_calls": lines, "numbering_schema": "international",
                "route_location_number": ROUTE_LOCATION, "trusted_external_users": True,
                "upstream_kbps": upstream,
            },
        },
    }


def site_for(base: SiteDict, scenario: Scenario, active: bool, jwt_path: Path | None,
             today: dt.date) -> SiteDict:
    site = copy.deepcopy(base)
    if active:
        scenario.mutate_site(site, today)
    if jwt_path is not None:
        site["tenant"]["jwt"] = f"file:{jwt_path}"
    return site


def make_jwt(state: str, key: bytes, now: dt.datetime) -> str:
    """A lab-signed (HS256) RingCentral-style JWT credential; ``state`` sets its ``exp``."""
    exp = {
        "valid": now + dt.timedelta(days=365),
        "expiring": now + dt.timedelta(days=10),
        "expired": now - dt.timedelta(days=2),
    }[state]
    claims = {"iss": "upscope-lab", "sub": "unify-phone-tenant", "aud": JWT_AUDIENCE,
              "iat": int((now - dt.timedelta(days=30)).timestamp()), "exp": int(exp.timestamp())}
    return pyjwt.encode(claims, key, algorithm="HS256")


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)


def write_site(path: Path, site: SiteDict, note: str) -> None:
    header = (
        "# upscope lab site file (schema: examples/site-healthy.yaml); endpoints are the lab's.\n"
        f"# {note}\n"
    )
    write_atomic(path, header + yaml.safe_dump(site, sort_keys=False), 0o600)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def neutralize(text: str) -> str:
    """Defuse trace-log syntax inside a message (a hostile peer could forge block ends or starts).

    The format has no escaping; the replacements keep the length, so Content-Length still holds.
    """
    text = text.replace("<<OUT-END>>", "<<OUT_END>>").replace(">>IN-END<<", ">>IN_END<<")
    return re.sub(r"(?m)^\(SIP_SA", "(SIP-SA", text)


class TraceLog:
    """OSBiz-format SIP trace of the PBX side, one block per message, CRLF lines.

    Blocks: ``(SIP_SA [ldh:<pbx ip>] <hex id> "MM/DD/YYYY hh:mm:ss.ffffff" …)``, then
    ``from <ip>:<port> to <ip>:<port>``, the raw message, then ``<<OUT-END>>`` (sent) or
    ``>>IN-END<<`` (received). Times are UTC. Written from the event loop only, flushed per
    block so a follower (``upscope serve --lab-dir``) never waits for a buffer.
    """

    def __init__(self, path: Path, ldh: str) -> None:
        self._file = path.open("a", encoding="utf-8", newline="")
        self._ldh = ldh
        self._seq = 0x2A00

    def __call__(self, direction: str, raw: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%m/%d/%Y %H:%M:%S.%f")
        text = neutralize(raw.decode("utf-8", "replace"))
        if not text.endswith("\r\n"):
            text += "\r\n"
        end = "<<OUT-END>>" if direction == "out" else ">>IN-END<<"
        if self._file.closed:
            return
        self._seq += 1
        self._file.write(
            f'(SIP_SA [ldh:{self._ldh}] {self._seq:x} "{stamp}" SIP message {direction})\r\n'
            f"from {src[0]}:{src[1]} to {dst[0]}:{dst[1]}\r\n{text}{end}\r\n"
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()
