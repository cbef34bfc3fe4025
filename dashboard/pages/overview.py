"""Overview: is Unify Phone working? Tiles that refresh by themselves (``st.fragment``), then what is
wrong — each problem once, with how often it is open, what it affects and its remedy."""

from __future__ import annotations

import os

import streamlit as st

from core.errors import UpscopeError
from dashboard import data, site_frames, sources, tiles
from dashboard.pages import link, tone_icon
from dashboard.timefmt import fmt_ts, utc
from dashboard.timerange import TimeRange

#: Seconds between tile refreshes; the fragment reruns alone, the page does not reload.
REFRESH_S = float(os.environ.get("UPSCOPE_REFRESH_S", "5"))
#: Affected calls/users listed under a problem before "and N more".
SHOWN_AFFECTED = 8


def _counts(src: sources.DataSource, rng: TimeRange) -> tuple[int, int, int] | None:
    try:
        return (src.calls(rng.start, rng.end, statuses=("answered",), limit=1).total,
                src.calls(rng.start, rng.end, statuses=("failed",), limit=1).total,
                src.calls(rng.start, rng.end, limit=1).total)
    except sources.SourceError:
        return None  # the tile says so; the other tiles still show


@st.fragment(run_every=REFRESH_S)
def status_tiles(picked: TimeRange) -> None:
    src, snap = data.page_snapshot()
    end = float(snap.get("evidence_until") or snap.get("now") or 0.0)
    rng = picked.moved_to(end, (snap.get("analysis") or {}).get("first_ts"))
    all_tiles = tiles.overview_tiles(snap, _counts(src, rng), rng.label)
    itsp = all_tiles[0]
    since = (snap.get("itsp_status") or {}).get("since")
    st.metric(f"{tone_icon(itsp.state)} {itsp.label}", itsp.value, border=True,
              help=f"since {utc(since)}" if since else None)
    st.caption(itsp.help)
    st.caption(f"In the OSBiz Assistant: {(snap.get('itsp_status') or {}).get('label_de', '—')}")
    for row in (all_tiles[1:5], all_tiles[5:]):
        cols = st.columns(len(row))
        for col, t in zip(cols, row, strict=True):
            col.metric(f"{tone_icon(t.state)} {t.label}", t.value, border=True)
            if t.help:
                col.caption(t.help)
    problems(snap)


def problems(snap: dict[str, object]) -> None:
    """Open findings grouped by id: critical ones under "What is wrong", then warnings, then notes."""
    findings = snap.get("findings") or []
    assert isinstance(findings, list)
    groups = site_frames.group_findings(findings)
    if not groups:
        st.success("No findings: the trunk looks healthy.")
        return
    for severity, heading, box in (("critical", "What is wrong", st.error), ("warning", "Warnings", st.warning),
                                   ("info", "Notes", st.info)):
        mine = [g for g in groups if g["severity"] == severity]
        if not mine:
            continue
        st.subheader(heading)
        for g in mine:
            times = f" — {g['count']}×" if g["count"] > 1 else ""
            lines = [f"**{g['title']}**{times} · `{g['id']}`"]
            affected = g["affected"] or g["calls"]
            if affected:
                more = len(affected) - SHOWN_AFFECTED
                lines.append("Affected: " + ", ".join(f"`{a}`" for a in affected[:SHOWN_AFFECTED])
                             + (f" and {more} more" if more > 0 else ""))
            if g["since"] is not None:
                lines.append(f"Open since {fmt_ts(g['since'])}")
            lines.append(f"**Remedy:** {g['remedy']}")
            box("\n\n".join(lines))
    link("diagnoses", "All diagnoses with evidence →")


def render() -> None:
    st.title("Overview")
    try:
        src = data.current_source()
        snap = src.snapshot()
    except UpscopeError:
        snap, src = {}, None
    # The range picker lives in the sidebar, outside the self-refreshing fragment.
    picked = data.page_range(src, snap) if src is not None else TimeRange(0.0, 0.0, "Last hour")
    status_tiles(picked)
