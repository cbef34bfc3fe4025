"""Fleet: every system an ``upscope serve`` watches, as Prometheus has them; problem systems first.

Shown whenever ``upscope dashboard --prometheus URL`` gave a Prometheus (``PROMETHEUS_ENV``). All
data comes from that server's query API through ``dashboard.fleet``; this module only renders. A
row's link opens the other pages on that system: the address comes from Prometheus's own target
(``instance``), never from the link, so a crafted link cannot make the dashboard fetch elsewhere.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import urllib.parse
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.snapshot import ITSP_LABELS, ItspState
from dashboard import data, service_source
from dashboard.fleet import (
    PROMETHEUS_ENV,
    RANGES,
    Fleet,
    FleetRow,
    Health,
    RowFilter,
    filter_rows,
    load_fleet,
    service_url,
)
from dashboard.fleet_queries import timeline
from dashboard.pages import tone_icon
from dashboard.prometheus_api import PrometheusClient, PrometheusError

#: Seconds between refreshes of the live view (Prometheus scrapes every 15-60 s).
REFRESH_S = float(os.environ.get("UPSCOPE_FLEET_REFRESH_S", "30"))
CHOSEN_KEY = "upscope.fleet.chosen"  # the system the other pages show, for this browser session
PROBLEM_LIST_MAX = 50
_TONE = {Health.CRITICAL: "bad", Health.NO_DATA: "neutral", Health.WARNING: "warn", Health.OK: "ok"}


def prometheus_url() -> str | None:
    return os.environ.get(PROMETHEUS_ENV) or None


@st.cache_resource(show_spinner=False)
def _client(url: str) -> PrometheusClient:
    return PrometheusClient(url)


# --- navigation: the Fleet page and the per-system pages --------------------------------------------


def navigation(pages: Sequence[Any]) -> list[Any]:
    """The page list for this session: Fleet first when a Prometheus is configured; the per-system
    pages when the dashboard has a source of its own or a system was opened from the Fleet page."""
    url = prometheus_url()
    if url is None:
        return list(pages)
    _open_linked_system(url)
    has_source = bool(os.environ.get(data.SOURCE_ENV)) or st.session_state.get(data.SYSTEM_KEY) is not None
    return [(render, "Fleet", "fleet", ":material/lan:"), *(pages if has_source else [])]


def _open_linked_system(url: str) -> None:
    """``?system=NAME`` (a row's link, an alert's dashboard link): read that system's own service."""
    wanted = st.query_params.get("system")
    if not wanted or st.session_state.get(CHOSEN_KEY) == wanted:
        return
    try:
        address = service_url(_client(url), wanted)
    except PrometheusError as exc:
        st.session_state[CHOSEN_KEY + ".error"] = str(exc)
        return
    if address is None:
        st.session_state[CHOSEN_KEY + ".error"] = (
            f"{wanted}: no upscope serve of that name answers Prometheus now, so its pages cannot be opened")
        return
    st.session_state[data.SYSTEM_KEY] = service_source.ServiceSource(address)
    st.session_state[CHOSEN_KEY] = wanted
    st.session_state.pop(CHOSEN_KEY + ".error", None)


# --- formatting ------------------------------------------------------------------------------------------


def _days(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} d" if value > 0 else f"expired {abs(value):.0f} d ago"


def _age(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = max(0, int(seconds))
    return f"{s} s" if s < 120 else f"{s // 60} min" if s < 7200 else f"{s // 3600} h" if s < 172800 else f"{s // 86400} d"


def _mos(bucket: tuple[float, float] | None) -> str:
    if bucket is None:
        return "—"
    low, high = bucket
    return f"> {low:g}" if math.isinf(high) else f"{low:g}–{high:g}"


def _itsp(row: FleetRow) -> str:
    if row.itsp is None:
        return "no data"
    try:
        return ITSP_LABELS[ItspState(row.itsp)][0]
    except ValueError:
        return row.itsp


def _since(ts: float | None, now: float) -> str:
    if ts is None or not math.isfinite(ts):
        return "—"
    try:
        when = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "—"
    return f"{when} ({_age(now - ts)} ago)"


def _count(value: float | None) -> float | None:
    return None if value is None else round(value)


def link(system: str) -> str:
    """The drill-down: this dashboard's Overview on that system (relative, so a path prefix of a
    reverse proxy is kept)."""
    return "overview?" + urllib.parse.urlencode({"system": system})


def rows_frame(rows: Sequence[FleetRow], now: float) -> pd.DataFrame:
    cols = ["#", "Health", "System", "Open", "Problems", "ITSP", "Since", "Critical findings", "Warnings",
            "JWT days left", "Software Support", "Licence headroom", "Calls", "Failed calls", "Worst MOS",
            "Collectors", "Last scrape"]
    out = []
    for n, r in enumerate(rows, 1):
        collectors = "—"
        if r.collectors_total is not None:
            collectors = f"{r.collectors_up if r.collectors_up is not None else '?'}/{r.collectors_total}"
            if r.collectors_down:
                collectors += " (" + ", ".join(r.collectors_down) + " down)"
        out.append({
            "#": n, "Health": r.health.value, "System": r.system,
            "Problems": "; ".join(text for _, text in r.problems),
            "ITSP": _itsp(r), "Since": _since(r.itsp_since, now),
            "Critical findings": "; ".join(f"{f.id} — {f.title}" if f.title else f.id for f in r.critical),
            "Warnings": "; ".join(f"{f.id} — {f.title}" if f.title else f.id for f in r.warnings),
            "JWT days left": _days(r.jwt_days_left) if r.jwt_days_left is not None
            else (r.jwt_state or "—").replace("-", " "),
            "Software Support": _days(r.support_days_left),
            "Licence headroom": "—" if r.licence_headroom is None else f"{r.licence_headroom:.0f} ({r.licence_pool})",
            "Calls": _count(r.calls), "Failed calls": _count(r.failed_calls), "Worst MOS": _mos(r.worst_mos),
            "Collectors": collectors,
            "Last scrape": ("failing" if r.scraped is False else "") + (" · " if r.scraped is False else "")
            + _age(r.scrape_age_s) + (" ago" if r.scrape_age_s is not None else ""),
            "Open": link(r.system) if r.service_url else None,
        })
    return pd.DataFrame(out, columns=cols)


# --- the page --------------------------------------------------------------------------------------------


def render() -> None:
    st.title("Fleet")
    url = prometheus_url()
    if url is None:
        st.info("No Prometheus configured: start the dashboard with `upscope dashboard --prometheus URL`.")
        return
    client = _client(url)
    error = st.session_state.get(CHOSEN_KEY + ".error")
    if error:
        st.warning(error)
    chosen = st.session_state.get(CHOSEN_KEY)
    if chosen:
        cols = st.columns([4, 1])
        cols[0].caption(f"The other pages show **{chosen}** (its own upscope serve).")
        if os.environ.get(data.SOURCE_ENV) and cols[1].button("Back to this dashboard's own source"):
            st.session_state.pop(data.SYSTEM_KEY, None)
            st.session_state.pop(CHOSEN_KEY, None)
            st.rerun()
    c1, c2, c3, c4 = st.columns([1, 2, 2, 3])
    span = c1.selectbox("Time range", list(RANGES), index=list(RANGES).index("1 h"),
                        help="Calls, failed calls and worst MOS over this range, and the chart below.")
    live = c2.toggle("Live", value=True, help="Now, refreshed every "
                     f"{REFRESH_S:g} s; switch off to look at an earlier moment.")
    at: float | None = None
    if not live:
        day = c2.date_input("Date (UTC)", value=dt.datetime.now(dt.UTC).date())
        clock = c2.time_input("Time (UTC)", value=dt.time(12, 0))
        at = dt.datetime.combine(day, clock, dt.UTC).timestamp()
    text = c3.text_input("Filter", placeholder="system, finding id or title")
    health = c4.multiselect("Health", [h.value for h in Health], help="Empty: every system.")
    how = RowFilter(text, frozenset(Health(h) for h in health))
    if live:
        st.fragment(run_every=REFRESH_S)(_view)(client, None, RANGES[span], how)
    else:
        _view(client, at, RANGES[span], how)


def _view(client: PrometheusClient, at: float | None, range_s: float, how: RowFilter) -> None:
    try:
        fleet = load_fleet(client, at=at, range_s=range_s)
    except PrometheusError as exc:
        st.error(str(exc))
        return
    _summary(fleet, client)
    rows = filter_rows(fleet.rows, how)
    frame = rows_frame(rows, fleet.at)
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "#": st.column_config.NumberColumn("#", help="Problem systems first: sort by this column to get back"),
        "Open": st.column_config.LinkColumn("Open", display_text="open pages",
                                            help="This dashboard's pages on that system (its own upscope serve)"),
        "Calls": st.column_config.NumberColumn(help="Completed calls in the time range"),
        "Failed calls": st.column_config.NumberColumn(help="Failed calls in the time range"),
        "Worst MOS": st.column_config.TextColumn(help="MOS bucket of the worst RTP stream in the time range"),
        "Last scrape": st.column_config.TextColumn(
            help="Age of the newest sample Prometheus holds of the system (for a system no longer scraped: of "
                 "its last data)"),
    })
    _chart(client, fleet)
    _problem_list(rows, fleet.at)


def _summary(fleet: Fleet, client: PrometheusClient) -> None:
    counts = {h: sum(1 for r in fleet.rows if r.health is h) for h in Health}
    cols = st.columns(len(Health))
    for col, h in zip(cols, Health, strict=True):
        col.metric(f"{tone_icon(_TONE[h])} {h.value}", counts[h], border=True)
    when = dt.datetime.fromtimestamp(fleet.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    st.caption(f"{len(fleet.rows)} systems · Prometheus {client.url} · data of {when} · "
               f"{fleet.queries} queries in {fleet.elapsed_s:.2f} s")
    for error in fleet.errors:
        st.warning(f"Some columns are empty: {error}")


def _chart(client: PrometheusClient, fleet: Fleet) -> None:
    try:
        lines = timeline(client, fleet.at, fleet.range_s)
    except PrometheusError as exc:
        st.caption(f"No chart: {exc}")
        return
    frames = [pd.Series({dt.datetime.fromtimestamp(t, dt.UTC): v for t, v in s.points}, name=name, dtype=float)
              for name, s in lines.items()]
    chart = pd.concat(frames, axis=1) if frames else pd.DataFrame()
    st.subheader("Systems over the time range")
    if chart.empty:
        st.caption("No data in this range.")
    else:
        st.line_chart(chart.fillna(0.0))


def _problem_list(rows: Sequence[FleetRow], now: float) -> None:
    problems = [r for r in rows if r.health is not Health.OK]
    st.subheader("Problem systems")
    if not problems:
        st.success("Every listed system is OK.")
        return
    for n, r in enumerate(problems[:PROBLEM_LIST_MAX]):
        with st.container(border=True, key=f"fleet-problem-{n}"):
            head = f"{tone_icon(_TONE[r.health])} **{r.system}** — {r.health.value}: " + \
                   "; ".join(text for _, text in r.problems)
            st.markdown(head)
            details = [f"ITSP status: {_itsp(r)}" + (f", since {_since(r.itsp_since, now)}" if r.itsp_since else "")]
            details += [f"`{f.id}` ({f.severity}) — {f.title or 'no title'}" for f in r.findings]
            st.markdown("\n".join(f"- {d}" for d in details))
            if r.service_url:
                st.markdown(f"[Open the pages of {r.system}]({link(r.system)})")
    if len(problems) > PROBLEM_LIST_MAX:
        st.caption(f"… and {len(problems) - PROBLEM_LIST_MAX} more: narrow the table with the filter.")
