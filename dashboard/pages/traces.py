"""Trace profiles & support: the checklist for the current findings; the support bundle."""

from __future__ import annotations

import streamlit as st

from dashboard import data, site_frames, sources


def render() -> None:
    st.title("Trace profiles & support")
    src, snap = data.page_snapshot()
    data.page_range(src, snap)
    items = site_frames.trace_checklist(snap)
    if not items:
        st.success("No findings, so no traces to switch on. For a new problem start with profile 'Basic'.")
    else:
        st.markdown("Switch these on in the OSBiz (Service Center → Diagnostics → Trace) and collect:")
        for n, it in enumerate(items):
            st.checkbox(f"{it['kind']}: **{it['item']}** — for {it['for']}", key=f"trace.{n}")
    st.subheader("Support bundle")
    st.caption("Snapshot, findings, history and checklist; secrets appear only as fingerprints.")
    if st.button("Prepare support bundle", key="traces.prep"):
        try:
            st.session_state["traces.bundle"] = src.bundle() or b""
        except sources.SourceError as exc:
            st.error(str(exc))
    blob = st.session_state.get("traces.bundle")
    if blob:
        st.download_button("Download support bundle", blob, file_name=f"upscope-{snap.get('system')}.zip",
                           mime="application/zip", key="traces.dl")
    elif blob == b"":
        st.warning("This source offers no support bundle.")
