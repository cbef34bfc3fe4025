"""Firewall: the flows the trunk needs through the firewall against what was observed, one verdict per flow."""

from __future__ import annotations

import streamlit as st

from dashboard import data, site_frames

#: Cell colours of the "as required" column (the table is drawn on a canvas: colours, not emoji).
OK_STYLE = {True: "background-color: #d4edda", False: "background-color: #f8d7da"}


def render() -> None:
    st.title("Firewall")
    src, snap = data.page_snapshot()
    data.page_range(src, snap)
    df = site_frames.firewall_frame(snap)
    if df.empty:
        st.info("No firewall verdicts in the data.")
        return
    st.dataframe(df.style.map(lambda v: OK_STYLE.get(v, ""), subset=["as required"]), hide_index=True)
    st.caption("Addresses are the Unify Phone defaults unless the site file sets `endpoints`. "
               "'not-observed' means there was no traffic of that kind to judge.")
    related = [f for f in snap.get("findings", [])
               if f["id"] in ("itsp.not-registered.firewall", "media.one-way-audio", "security.port-443-open")]
    for f in related:
        st.error(f"**{f['id']}** — {f['title']}\n\n{f['remedy']}")
