"""Rules that need only the site file and ``now``.

Each rule is silent without a site. Evidence names the YAML path (``config_path``) so a reader
can go straight to the line; ``subject`` names the user, team or pool a finding is about.
"""

from __future__ import annotations

from core.bandwidth import CODEC_NAMES, check_bandwidth
from core.findings import Evidence, Finding, Severity, make
from core.licensing import POOL_TITLES, USER_POOLS, evaluate_licenses, utc_date
from core.numbering import NumberingProblem, derive_all, parse_location
from core.site.model import Site, same_version

from .context import Rule, RuleContext


def _user_subject(site: Site, index: int) -> str:
    user = site.users[index]
    name = user.display_name
    return f"user {user.callno}" + (f" ({name})" if name else "")


def software_support(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None:
        return []
    until = site.licenses.software_support_until
    path = "licenses.software_support_until"
    if until is None:
        return [make("calls.software-support-expired",
                     [Evidence("Software Support expiry is not recorded in the site file", path)],
                     title="Software Support not recorded: cannot confirm the system is under support",
                     severity=Severity.WARNING)]
    today = utc_date(ctx.now)
    if today > until:
        return [make("calls.software-support-expired",
                     [Evidence(f"Software Support ended {until.isoformat()} (today {today.isoformat()})", path)])]
    return []


def trunk_lines(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None or site.connectivity.simultaneous_calls > 0:
        return []
    return [make("calls.no-trunk-lines",
                 [Evidence("Number of simultaneous circuit calls is 0", "connectivity.simultaneous_calls")])]


def licenses(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None:
        return []
    report = evaluate_licenses(site, ctx.now)
    out: list[Finding] = []
    for ul in report.users:
        evidence = []
        if ul.missing:
            evidence.append(Evidence(f"no {', '.join(ul.missing)} license assigned", f"users[{ul.index}].licenses"))
        for name in ul.expired:
            key = USER_POOLS[name]
            expires = report.pools[key].expires
            evidence.append(Evidence(f"{POOL_TITLES[key]} licenses expired {expires}", f"licenses.{key}.expires"))
        if evidence:
            out.append(make("calls.license-missing", evidence, subject=_user_subject(site, ul.index)))
    for key in ("ip_user_mobility", "unify_phone"):
        usage = report.pools[key]
        if usage.shortfall:
            out.append(make(
                "calls.license-missing",
                [Evidence(f"{usage.needed} users need a {POOL_TITLES[key]} license, {usage.total} available",
                          f"licenses.{key}.total")],
                subject=f"pool {key}",
                title=f"Not enough {POOL_TITLES[key]} licenses for the Unify Phone users",
            ))
    desk = report.pools["ip_user_desk"]
    if desk.shortfall:
        out.append(make(
            "calls.license-missing",
            [Evidence(f"{desk.needed} twinned IP desk phones need an IP User license, {desk.total} available",
                      "licenses.ip_user_desk.total")],
            subject="pool ip_user_desk",
            title="Not enough IP User licenses for the twinned desk phones",
            severity=Severity.WARNING,
        ))
    return out


def trusted_external_user(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None:
        return []
    return [
        make("calls.not-trusted-external-user",
             [Evidence(f"station type is {u.station_type}", f"users[{i}].station_type")],
             subject=_user_subject(site, i))
        for i, u in enumerate(site.users)
        if u.station_type != "trusted-external-user"
    ]


def route_flag(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None or site.route.trusted_external_users:
        return []
    return [make("calls.route-flag-off",
                 [Evidence("Trusted External Users is off on the Unify Phone route",
                           "route.trusted_external_users")])]


def _local_path(site: Site, index: int, source: str) -> str:
    if source == "team-callno":
        membership = site.team_of(site.users[index].callno)
        if membership is not None:
            return f"teams[{membership[0]}].callno"
    return f"users[{index}].{'did' if source == 'did' else 'callno'}"


def numbering(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None:
        return []
    out: list[Finding] = []
    conn = site.connectivity
    if conn.numbering_schema == "international":
        loc = parse_location(conn.route_location_number)
        if loc.problem is not None:
            out.append(make("numbering.location-missing",
                            [Evidence(loc.problem, "connectivity.route_location_number")]))
    for un in derive_all(site):
        subject = _user_subject(site, un.index)
        for problem in un.problems:
            if problem is NumberingProblem.TOO_LONG:
                out.append(make("numbering.too-long", [
                    Evidence(f"{un.derived} has {un.digits} digits (E.164 allows 15)",
                             _local_path(site, un.index, un.source)),
                    Evidence("the route location number is the prefix of every call number",
                             "connectivity.route_location_number"),
                ], subject=subject))
            elif problem is NumberingProblem.NOT_POSSIBLE:
                out.append(make("calls.numbering-mismatch", [
                    Evidence(f"{un.derived} is not a possible E.164 number "
                             f"({un.detail_of(NumberingProblem.NOT_POSSIBLE)})",
                             _local_path(site, un.index, un.source)),
                ], subject=subject))
            elif problem is NumberingProblem.MISMATCH:
                out.append(make("calls.numbering-mismatch", [
                    Evidence(f"configured {un.configured}, the {un.schema} numbering plan gives {un.derived}",
                             f"users[{un.index}].call_number"),
                ], subject=subject))
    return out


def no_did(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None:
        return []
    return [
        make("users.no-did-not-allowed",
             [Evidence(f"no DID: {un.detail_of(NumberingProblem.NO_DID_NOT_ALLOWED)}", f"users[{un.index}].did")],
             subject=_user_subject(site, un.index))
        for un in derive_all(site)
        if NumberingProblem.NO_DID_NOT_ALLOWED in un.problems
    ]


def teams(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None:
        return []
    out: list[Finding] = []
    first_team: dict[str, int] = {}
    for j, team in enumerate(site.teams):
        path = f"teams[{j}]"
        evidence: list[Evidence] = []
        if site.user(team.callno) is not None:
            evidence.append(Evidence(f"team callno {team.callno} is also a user's callno (each needs a free one)",
                                     f"{path}.callno"))
        phones = [m for m in team.members if m.device == "unify-phone"]
        desks = [m for m in team.members if m.device in ("ip-phone", "tdm-phone")]
        if len(phones) != 1:
            evidence.append(Evidence(f"{len(phones)} Unify Phone members (exactly 1 allowed)", f"{path}.members"))
        if len(desks) != 1:
            evidence.append(Evidence(f"{len(desks)} IP/TDM desk phones (exactly 1 allowed)", f"{path}.members"))
        for k, m in enumerate(team.members):
            mpath = f"{path}.members[{k}]"
            if m.device == "cordless":
                evidence.append(Evidence(f"member {m.callno} is a cordless phone (not approved)", f"{mpath}.device"))
            if m.device != "unify-phone":
                continue
            user = site.user(m.callno)
            if user is None:
                evidence.append(Evidence(f"member {m.callno} is not a Unify Phone user of this site", f"{mpath}.callno"))
                continue
            index = site.users.index(user)
            if user.did is not None:
                evidence.append(Evidence(f"Unify Phone member {m.callno} has DID {user.did} (leave it empty)",
                                         f"users[{index}].did"))
            if m.callno in first_team and first_team[m.callno] != j:
                other = site.teams[first_team[m.callno]].name
                evidence.append(Evidence(f"Unify Phone member {m.callno} is also in team {other!r}", f"{mpath}.callno"))
            first_team.setdefault(m.callno, j)
        if evidence:
            out.append(make("team.invalid", evidence, subject=f"team {team.name} ({team.callno})"))
    return out


def alternative_number(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None:
        return []
    return [
        make("mailbox.alt-number-target",
             [Evidence(f"Alternative Number in use, target 2 is {u.call_destination_target2 or 'not set'}",
                       f"users[{i}].call_destination_target2")],
             subject=_user_subject(site, i))
        for i, u in enumerate(site.users)
        if u.alternative_number_in_use and u.call_destination_target2 != "user-defined"
    ]


def bandwidth(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None or site.connectivity.simultaneous_calls == 0:
        return []
    bw = check_bandwidth(site)
    if bw.ok:
        return []
    share = f"{bw.voice_share * 100:g} %"
    return [make("bandwidth.too-low", [
        Evidence(f"{bw.configured_calls} simultaneous calls need {bw.needed_kbps:g} kbps upstream "
                 f"({CODEC_NAMES[bw.codec]} {bw.per_call_kbps:g} kbps per call, voice share {share})",
                 "connectivity.simultaneous_calls"),
        Evidence(f"{bw.upstream_kbps} kbps upstream carries {bw.max_calls} calls"
                 + (" (shared with ITSP / Device@Home)" if bw.shared else ""),
                 "connectivity.upstream_kbps"),
    ])]


def software_update(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None or site.wizard is None or site.wizard.software_version is None:
        return []
    if same_version(site.system.version, site.wizard.software_version):
        return []
    return [make("software-update.rerun-wizard", [
        Evidence(f"system runs {site.system.version}", "system.version"),
        Evidence(f"the Connectivity wizard last ran on {site.wizard.software_version}", "wizard.software_version"),
    ])]


def _digits(text: str | None) -> str | None:
    return None if text is None else "".join(c for c in text if (c.isascii() and c.isdigit()))


def _show(value: object) -> str:
    """A setting as it is written in the site file (YAML spelling)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return f'"{value}"' if isinstance(value, str) else str(value)


def expert_mode_drift(ctx: RuleContext) -> list[Finding]:
    site = ctx.site
    if site is None or site.wizard is None:
        return []
    conn, wanted = site.connectivity, site.wizard.settings
    # wizard setting → (current value, its config path)
    current: dict[str, tuple[object, str]] = {
        "enabled": (conn.enabled, "connectivity.enabled"),
        "domain": (conn.domain, "connectivity.domain"),
        "simultaneous_calls": (conn.simultaneous_calls, "connectivity.simultaneous_calls"),
        "shared_trunk_lines": (conn.shared_trunk_lines, "connectivity.shared_trunk_lines"),
        "upstream_kbps": (conn.upstream_kbps, "connectivity.upstream_kbps"),
        "numbering_schema": (conn.numbering_schema, "connectivity.numbering_schema"),
        "route_location_number": (conn.route_location_number, "connectivity.route_location_number"),
        "gateway_location_number": (conn.gateway_location_number, "connectivity.gateway_location_number"),
        "trusted_external_users": (site.route.trusted_external_users, "route.trusted_external_users"),
    }
    evidence = []
    for key, (now_value, path) in current.items():
        then = getattr(wanted, key)
        if then is None:
            continue
        a, b = (then, now_value)
        if key.endswith("location_number"):
            a, b = _digits(then), _digits(now_value if isinstance(now_value, str) else None)
        if a != b:
            evidence.append(Evidence(f"{key}: wizard set {_show(then)}, now {_show(now_value)}", path))
    if not evidence:
        return []
    return [make("calls.expert-mode-drift", evidence)]


#: Every site-only rule (the JWT of the site is judged with the handed-in one, ``jwt_rules``).
SITE_RULES: tuple[Rule, ...] = (
    software_support,
    trunk_lines,
    licenses,
    trusted_external_user,
    route_flag,
    numbering,
    no_did,
    teams,
    alternative_number,
    bandwidth,
    software_update,
    expert_mode_drift,
)
