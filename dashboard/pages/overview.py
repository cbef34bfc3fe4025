"""Overview: is Unify Phone working? Tiles that refresh by themselves (``st.fragment``)."""

from __future__ import annotations

import os

import streamlit as st

from dashboard import data, sources, tiles
from dashboard.pages import link, tone_icon
from dashboard.timefmt import snap_time

#: Seconds between tile refreshes; the fragment reruns alone, the page does not reload.
REFRESH_S = float(os.environ.get("UPSCOPE_REFRESH_S", "5"))


@st.fragment(run_every=REFRESH_S)
def status_tiles() -> None:
    src, snap = data.page_snapshot()
    try:
        recent = src.calls_since(snap_time(snap).timestamp() - 3600)
    except sources.SourceError:
        recent = None  # the tile says so; the other tiles still show
    all_tiles = tiles.overview_tiles(snap, recent)
    itsp = all_tiles[0]
    st.metric(f"{tone_icon(itsp.state)} {itsp.label}", itsp.value, border=True)
    st.caption(itsp.help)
    st.caption(f"In the OSBiz Assistant: {(snap.get('itsp_status') or {}).get('label_de', '—')}")
    for row in (all_tiles[1:5], all_tiles[5:]):
        cols = st.columns(len(row))
        for col, t in zip(cols, row, strict=True):
            col.metric(f"{tone_icon(t.state)} {t.label}", t.value, border=True)
            if t.help:
                col.caption(t.help)
    critical = [f for f in snap.get("findings", []) if f.get("severity") == "critical"]
    if critical:
        st.subheader("What is wrong")
        for f in critical:
            st.error(f"**{f['id']}** — {f['title']}\n\n{f['remedy']}")
        link("diagnoses", "All diagnoses with evidence →")
    elif not snap.get("findings"):
        st.success("No findings: the trunk looks healthy.")


def render() -> None:
    st.title("Overview")
    status_tiles()
