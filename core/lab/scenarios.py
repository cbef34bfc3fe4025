"""The lab's scenarios: one per FAQ cause of the findings catalogue (docs/findings.md), plus ``healthy``.

Each scenario says what it breaks (a change of the site file while the fault is active, and/or a
behaviour of one party) and which finding ids of ``core.findings.CATALOGUE`` an analysis of the
artifacts must produce. How the emulated OSBiz rejects a call follows from the (faulted) site
file — see ``core.lab.pbx.Pbx.decide`` — with these SIP answers (the OSBiz's real codes are not
documented in the seed; these are the plausible RFC 3261 §21 choices):

| scenario | wire evidence | SIP answer of the PBX side |
|---|---|---|
| healthy | REGISTER 401→200, OPTIONS 200, CRLF pongs, calls 200 both ways, RTP both ways | — |
| sip-tls-blocked | SYNs to the connector port unanswered (nft DROP) / ClientHello unanswered | — (no REGISTER gets through) |
| register-forbidden | REGISTER 401 → REGISTER with credentials → 403; REST 401 "api key" | — |
| jwt-missing / jwt-expired | REST 401 naming the JWT problem; site.yaml tenant.jwt null / jwt.txt expired | — |
| jwt-expiring | jwt.txt ``exp`` within a month; REST 200 | — |
| software-support-expired | site.yaml software_support_until in the past | 403 Forbidden to every INVITE |
| no-trunk-lines | site.yaml simultaneous_calls 0 | 503 Service Unavailable to every INVITE |
| trunk-lines-busy | 2 lines, the connector places bursts of 4 calls | 486 Busy Here beyond the lines |
| license-missing | user 100 without the unify-phone license | 403 Forbidden to that user's calls |
| not-trusted-external-user | user 100 of station type mobility-user | 404 Not Found to that user's calls |
| route-flag-off | route.trusted_external_users false | 403 Forbidden to every INVITE |
| numbering-mismatch | user 100's call number is not the one the plan derives | 404 Not Found (and the connector 404s the PBX's calls to the derived number) |
| expert-mode-drift | connectivity.simultaneous_calls differs from what the wizard set | — |
| one-way-audio | the connector's RTP never arrives (it sends none) | — |
| media-impaired | the connector's RTP has loss (default 5 %) and jitter (default 40 ms) | — |
| cloned-system | a second PBX (the lab's clone address, 127.A.B.3) registers the same trunk; the 200 OK lists both contacts | — |
| bandwidth-too-low | site.yaml upstream_kbps too small for simultaneous_calls | — |
| port-443-open | a TLS listener on the PBX's "443" answers the connector side's probe | — |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SiteDict = dict[str, Any]


def _noop(site: SiteDict, today: dt.date) -> None:
    return None


def _support_expired(site: SiteDict, today: dt.date) -> None:
    site["licenses"]["software_support_until"] = (today - dt.timedelta(days=30)).isoformat()


def _no_lines(site: SiteDict, today: dt.date) -> None:
    site["connectivity"]["simultaneous_calls"] = 0
    site["wizard"]["settings"]["simultaneous_calls"] = 0


def _two_lines(site: SiteDict, today: dt.date) -> None:
    site["connectivity"]["simultaneous_calls"] = 2
    site["wizard"]["settings"]["simultaneous_calls"] = 2


def _no_license(site: SiteDict, today: dt.date) -> None:
    site["users"][0]["licenses"] = ["ip-user"]


def _not_teu(site: SiteDict, today: dt.date) -> None:
    site["users"][0]["station_type"] = "mobility-user"


def _route_flag_off(site: SiteDict, today: dt.date) -> None:
    # Switched off in Expert Mode; the wizard's record is left out so that only the route-flag
    # rule speaks (a drift rule comparing wizard settings would otherwise fire as well).
    site["route"]["trusted_external_users"] = False
    site["wizard"]["settings"].pop("trusted_external_users", None)


def _numbering_mismatch(site: SiteDict, today: dt.date) -> None:
    user = site["users"][0]
    user["call_number"] = user["call_number"][:-4] + "9" + user["call_number"][-3:]


def _expert_drift(site: SiteDict, today: dt.date) -> None:
    wizard = site["wizard"]["settings"]["simultaneous_calls"]
    site["connectivity"]["simultaneous_calls"] = wizard - 2 if wizard > 2 else wizard + 2


def _low_bandwidth(site: SiteDict, today: dt.date) -> None:
    site["connectivity"]["upstream_kbps"] = 256
    site["wizard"]["settings"]["upstream_kbps"] = 256


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    fault: str
    expected_findings: tuple[str, ...]
    #: "openscape" or "unify-video" (JWT scenarios)
    flavour: str = "openscape"
    #: JWT while the fault is active: "valid" | "missing" | "expired" | "expiring" (unify-video only)
    jwt: str = "valid"
    mutate_site: Callable[[SiteDict, dt.date], None] = _noop
    block_sip: bool = False
    wrong_api_key: bool = False
    mute_connector_rtp: bool = False
    impair_connector_rtp: bool = False
    clone: bool = False
    port_443: bool = False
    busy_burst: bool = False


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "none", ()),
        Scenario("sip-tls-blocked", "TCP to the connector's SIP/TLS port silently dropped",
                 ("itsp.not-registered.firewall",), block_sip=True),
        Scenario("register-forbidden", "API key regenerated at the connector; the OSBiz uses the old one",
                 ("itsp.not-registered.auth", "rest-api.api-key-invalid"), wrong_api_key=True),
        Scenario("jwt-missing", "Unify Video flavour without a JWT",
                 ("rest-api.jwt-missing", "provisioning.jwt-missing"), flavour="unify-video", jwt="missing"),
        Scenario("jwt-expired", "the tenant's JWT has expired",
                 ("rest-api.jwt-expired",), flavour="unify-video", jwt="expired"),
        Scenario("jwt-expiring", "the tenant's JWT expires within a month",
                 ("jwt.expiring",), flavour="unify-video", jwt="expiring"),
        Scenario("software-support-expired", "Software Support expired",
                 ("calls.software-support-expired",), mutate_site=_support_expired),
        Scenario("no-trunk-lines", "number of simultaneous circuit calls is 0",
                 ("calls.no-trunk-lines",), mutate_site=_no_lines),
        Scenario("trunk-lines-busy", "all (2) trunk lines busy; further calls rejected",
                 ("calls.trunk-lines-busy",), mutate_site=_two_lines, busy_burst=True),
        Scenario("license-missing", "user 100 has no Unify Phone license",
                 ("calls.license-missing",), mutate_site=_no_license),
        Scenario("not-trusted-external-user", "user 100 is not of station type Trusted External User",
                 ("calls.not-trusted-external-user",), mutate_site=_not_teu),
        Scenario("route-flag-off", "route parameter Trusted external User switched off",
                 ("calls.route-flag-off",), mutate_site=_route_flag_off),
        Scenario("numbering-mismatch", "user 100's call number does not match the numbering plan",
                 ("calls.numbering-mismatch",), mutate_site=_numbering_mismatch),
        Scenario("expert-mode-drift", "simultaneous calls changed in Expert Mode, not in the wizard",
                 ("calls.expert-mode-drift",), mutate_site=_expert_drift),
        Scenario("one-way-audio", "the connector's RTP towards the OSBiz is dropped",
                 ("media.one-way-audio",), mute_connector_rtp=True),
        Scenario("media-impaired", "the connector's RTP suffers loss and jitter",
                 ("media.poor-quality",), impair_connector_rtp=True),
        Scenario("cloned-system", "a cloned OSBiz registers with the same connector configuration",
                 ("clone.duplicate-connector",), clone=True),
        Scenario("bandwidth-too-low", "upstream bandwidth too small for the simultaneous calls",
                 ("bandwidth.too-low",), mutate_site=_low_bandwidth),
        Scenario("port-443-open", "inbound TCP 443 of the OSBiz answers",
                 ("security.port-443-open",), port_443=True),
    )
}
