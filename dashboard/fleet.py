"""The fleet view's model: one row per ``system`` watched by an ``upscope serve``, read from Prometheus.

Theory of operation: every site runs ``upscope serve``, whose series all carry ``system``; the
partner's Prometheus (or a long-term store speaking its HTTP API) scrapes them. ``load_fleet`` asks
that server a fixed set of PromQL instant queries, all evaluated at one time ``at`` so the row is a
consistent picture, at most ``workers`` at a time, and folds the answers into ``FleetRow`` values.
The list of systems comes from ``upscope_build_info`` over a lookback (24 h, or the chosen range when
longer), so a site whose scrapes fail stays on the list as "no data" instead of vanishing with its
stale series; targets of the same jobs whose system was never seen in the lookback appear under
their address. When the system list cannot be read the load fails; any other query that fails
leaves its columns empty and is named in ``Fleet.errors`` (failure is data).

Nothing here renders: ``dashboard.pages.fleet`` shows the rows. Series names and label values are
those of ``dashboard.metrics`` (the README's metrics table).
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from collectors.runtime.totals import MOS_BUCKETS
from dashboard.fleet_queries import fleet_queries, promql_string
from dashboard.prometheus_api import PrometheusClient, PrometheusError, Sample

#: ``upscope dashboard --prometheus URL`` hands the URL to the Streamlit process in this variable.
PROMETHEUS_ENV = "UPSCOPE_PROMETHEUS_URL"
#: The lower edges of upscope_rtp_mos's buckets (0 below the first bound).
MOS_BOUNDS = (0.0, *MOS_BUCKETS)
DAY = 86400.0
WARN_DAYS = 30.0  # JWT / Software Support: the alert rules' warning horizon
RANGES: dict[str, float] = {"15 min": 900.0, "1 h": 3600.0, "6 h": 6 * 3600.0, "24 h": DAY, "7 d": 7 * DAY}


class Health(StrEnum):
    """A row's overall state; the order of ``rank`` is the order of the list (problems first)."""

    CRITICAL = "critical"
    NO_DATA = "no data"
    WARNING = "warning"
    OK = "ok"

    @property
    def rank(self) -> int:
        return list(Health).index(self)


@dataclass(frozen=True, slots=True)
class OpenFinding:
    id: str
    severity: str
    title: str
    count: int  # open findings with this id (several subjects)


@dataclass(frozen=True, slots=True)
class FleetRow:
    """What the NOC sees of one system. ``None`` means: no such series (not "zero")."""

    system: str
    job: str = ""
    instance: str = ""
    scraped: bool | None = None  # the target's last scrape worked (``up``); None: unknown
    scrape_age_s: float | None = None  # seconds since the last sample Prometheus holds of the system
    stale: bool = False  # no current series: the scrapes stopped or fail
    itsp: str | None = None  # registered / not-registered / unknown / disabled
    itsp_since: float | None = None
    findings: tuple[OpenFinding, ...] = ()
    jwt_state: str | None = None
    jwt_days_left: float | None = None
    support_days_left: float | None = None
    licence_headroom: float | None = None  # free licences in the tightest pool
    licence_pool: str = ""
    calls: float | None = None  # completed calls in the range
    failed_calls: float | None = None
    worst_mos: tuple[float, float] | None = None  # (lower, upper) bound of the worst stream's MOS bucket
    collectors_up: int | None = None
    collectors_total: int | None = None
    collectors_down: tuple[str, ...] = ()

    @property
    def critical(self) -> tuple[OpenFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "critical")

    @property
    def warnings(self) -> tuple[OpenFinding, ...]:
        return tuple(f for f in self.findings if f.severity != "critical")

    @property
    def problems(self) -> tuple[tuple[Health, str], ...]:
        """Each reason this system is not OK, most severe first."""
        out: list[tuple[Health, str]] = []
        if self.itsp == "not-registered":
            out.append((Health.CRITICAL, "trunk not registered"))
        if self.critical:
            n = len(self.critical)
            out.append((Health.CRITICAL, f"{n} critical finding{'s' if n > 1 else ''}"))
        if self.jwt_state == "expired" or (self.jwt_days_left is not None and self.jwt_days_left <= 0):
            out.append((Health.CRITICAL, "JWT expired"))
        if self.support_days_left is not None and self.support_days_left <= 0:
            out.append((Health.CRITICAL, "Software Support expired"))
        if self.scraped is False:
            out.append((Health.NO_DATA, "scrape failing"))
        elif self.stale:
            out.append((Health.NO_DATA, "no current data"))
        if self.itsp == "unknown":
            out.append((Health.WARNING, "ITSP status unknown"))
        if self.warnings:
            n = len(self.warnings)
            out.append((Health.WARNING, f"{n} warning{'s' if n > 1 else ''}"))
        if self.jwt_days_left is not None and 0 < self.jwt_days_left <= WARN_DAYS:
            out.append((Health.WARNING, f"JWT expires in {self.jwt_days_left:.0f} d"))
        if self.support_days_left is not None and 0 < self.support_days_left <= WARN_DAYS:
            out.append((Health.WARNING, f"Software Support ends in {self.support_days_left:.0f} d"))
        if self.licence_headroom is not None and self.licence_headroom <= 0:
            out.append((Health.WARNING, f"no free {self.licence_pool} licence"))
        if self.collectors_down:
            out.append((Health.WARNING, "collector down: " + ", ".join(self.collectors_down)))
        return tuple(sorted(out, key=lambda p: p[0].rank))

    @property
    def health(self) -> Health:
        problems = self.problems
        return problems[0][0] if problems else Health.OK

    @property
    def sort_key(self) -> tuple[int, int, int, str]:
        """Problems first: by health, then the most critical findings, then the most warnings."""
        return (self.health.rank, -len(self.critical), -len(self.warnings), self.system)

    @property
    def service_url(self) -> str | None:
        """The system's own ``upscope serve`` (same address as its /metrics), where it answers
        Prometheus (its last scrape worked)."""
        if self.scraped and _INSTANCE.fullmatch(self.instance):
            return f"http://{self.instance}"
        return None


@dataclass(frozen=True, slots=True)
class Fleet:
    rows: tuple[FleetRow, ...]
    at: float  # the evaluation time of every query
    range_s: float
    elapsed_s: float  # wall time of the load (all queries)
    errors: tuple[str, ...] = ()  # queries that failed: their columns are empty
    queries: int = 0


#: host:port as Prometheus writes ``instance`` (name, IPv4 or [IPv6]); nothing that could turn a
#: link into another URL (no '/', '@', '?', '#', spaces).
_INSTANCE = re.compile(r"(?:[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}")


def _by_system(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        name = s.label("system")
        if name:
            out[name].append(s)
    return out


def _one(samples: Sequence[Sample] | None) -> float | None:
    """The value of a system's one series (the lowest if a system is exposed twice); no NaN/Inf."""
    values = [s.value for s in samples or () if math.isfinite(s.value)]
    return min(values) if values else None


def _mos_bucket(quantile: float | None, bounds: Sequence[float] = MOS_BOUNDS) -> tuple[float, float] | None:
    """The bucket (lower, upper] the tiny quantile fell in: it returns the bucket's lower bound plus
    a vanishing fraction of its width, or the last finite bound when only +Inf got streams."""
    if quantile is None:
        return None
    lower = max((b for b in bounds if b <= quantile + 1e-3), default=0.0)
    higher = [b for b in bounds if b > lower]
    return (lower, higher[0] if higher else math.inf)


def load_fleet(client: PrometheusClient, *, at: float | None = None, range_s: float = 3600.0,
               workers: int = 4, clock: Callable[[], float] = time.time) -> Fleet:
    """Every row at ``at`` (default: now), calls and media over the ``range_s`` before it."""
    when = clock() if at is None else at
    started = time.monotonic()
    queries = fleet_queries(range_s)
    answers: dict[str, tuple[Sample, ...]] = {}
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fleet-query") as pool:
        futures = {name: pool.submit(client.query, expr, when) for name, expr in queries.items()}
        for name, future in futures.items():
            try:
                answers[name] = future.result()
            except PrometheusError as exc:
                if name == "systems":
                    raise
                errors.append(f"{name}: {exc}")
    rows = _rows(answers, when)
    return Fleet(tuple(sorted(rows, key=lambda r: r.sort_key)), when, range_s, time.monotonic() - started,
                 tuple(errors), len(queries))


def _rows(answers: dict[str, tuple[Sample, ...]], when: float) -> list[FleetRow]:
    get = {name: _by_system(samples) for name, samples in answers.items()}
    up_by_target = {(s.label("job"), s.label("instance")): s.value for s in answers.get("up", ())}
    targets: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for s in answers.get("systems", ()):
        if s.label("system"):
            targets[s.label("system")].append((s.label("job"), s.label("instance")))
    fresh = {name: min(s.value for s in samples) for name, samples in get.get("age", {}).items()}
    ages_known = "age" in answers  # without that answer nothing can be called stale
    rows = []
    for system, known in targets.items():
        # A system exposed by several targets (a restarted service on a new port, a duplicate): the
        # one that answers wins, then the first by address.
        job, instance = sorted(known, key=lambda t: (up_by_target.get(t) != 1.0, t))[0]
        up = up_by_target.get((job, instance))
        stale = ages_known and system not in fresh
        age = fresh.get(system) if not stale else _one(get.get("last_data", {}).get(system))
        titles = {s.label("id"): s.label("title") for s in get.get("titles", {}).get(system, ())}
        findings = tuple(sorted(
            (OpenFinding(s.label("id"), s.label("severity"), titles.get(s.label("id"), ""), int(s.value))
             for s in get.get("findings", {}).get(system, ()) if math.isfinite(s.value)),
            key=lambda f: (f.severity != "critical", f.severity != "warning", f.id)))
        licences = [(s.value, s.label("type")) for s in get.get("licences", {}).get(system, ())
                    if math.isfinite(s.value)]
        tightest = min(licences) if licences else None
        jwt_left, support_left = _one(get.get("jwt_left", {}).get(system)), _one(get.get("support_left", {}).get(system))
        total, n_up = _one(get.get("collectors", {}).get(system)), _one(get.get("collectors_up", {}).get(system))
        rows.append(FleetRow(
            system=system, job=job, instance=instance, scraped=None if up is None else up == 1.0,
            scrape_age_s=age, stale=stale,
            itsp=next((s.label("upscope_itsp_status") for s in get.get("itsp", {}).get(system, ())), None),
            itsp_since=_one(get.get("since", {}).get(system)), findings=findings,
            jwt_state=next((s.label("upscope_jwt_status") for s in get.get("jwt", {}).get(system, ())), None),
            jwt_days_left=None if jwt_left is None else jwt_left / DAY,
            support_days_left=None if support_left is None else support_left / DAY,
            licence_headroom=tightest[0] if tightest else None, licence_pool=tightest[1] if tightest else "",
            calls=_one(get.get("calls", {}).get(system)), failed_calls=_one(get.get("failed", {}).get(system)),
            worst_mos=_mos_bucket(_one(get.get("mos", {}).get(system))),
            collectors_total=None if total is None else int(total), collectors_up=None if n_up is None else int(n_up),
            collectors_down=tuple(sorted(s.label("collector") for s in get.get("collectors_down", {}).get(system, ()))),
        ))
    # Targets of the same jobs that never showed a system in the lookback: listed by address.
    seen = {t for ts in targets.values() for t in ts}
    for (job, instance), value in up_by_target.items():
        if (job, instance) not in seen and instance:
            rows.append(FleetRow(system=f"? {instance}", job=job, instance=instance, scraped=value == 1.0,
                                 stale=True))
    return rows


# --- the page's helpers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowFilter:
    text: str = ""  # part of the system name, a finding id or a title
    health: frozenset[Health] = field(default_factory=frozenset)  # empty: all

    def keep(self, row: FleetRow) -> bool:
        if self.health and row.health not in self.health:
            return False
        needle = self.text.strip().lower()
        if not needle:
            return True
        hay = [row.system, row.instance, row.itsp or ""] + [f"{f.id} {f.title}" for f in row.findings]
        return any(needle in h.lower() for h in hay)


def filter_rows(rows: Iterable[FleetRow], how: RowFilter) -> list[FleetRow]:
    return [r for r in rows if how.keep(r)]


def service_url(client: PrometheusClient, system: str, at: float | None = None) -> str | None:
    """The address of ``system``'s own ``upscope serve`` as Prometheus scrapes it, if one answers
    (``up == 1``): only addresses Prometheus knows, so a link cannot point the dashboard elsewhere."""
    if not system or len(system) > 256:
        return None
    expr = (f"up == 1 and on (job, instance) group by (job, instance) "
            f"(upscope_build_info{{system={promql_string(system)}}})")
    for s in sorted(client.query(expr, at), key=lambda s: s.label("instance")):
        row = FleetRow(system=system, instance=s.label("instance"), scraped=True)
        if row.service_url is not None:
            return row.service_url
    return None

