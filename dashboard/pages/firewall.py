"""Firewall: the expected flows of DOMAIN §7 against what was observed, one verdict per flow."""

from __future__ import annotations

import streamlit as st

from dashboard import data

#: Cell colours per verdict (the table is drawn on a canvas: colours, not emoji).
VERDICT_STYLE = {"ok": "background-color: #d4edda", "blocked": "background-color: #f8d7da",
                 "violated": "background-color: #f8d7da", "not observed": "background-color: #eeeeee"}


def render() -> None:
    st.title("Firewall")
    _, snap = data.page_snapshot()
    df = data.firewall_frame(snap)
    st.dataframe(df.style.map(lambda v: VERDICT_STYLE.get(v, ""), subset=["verdict"]), hide_index=True)
    st.caption("Addresses are the seed's defaults unless the site file sets `endpoints`; GCP europe-west3 "
               "ranges are not checked without a ranges file.")
    related = [f for f in snap.get("findings", [])
               if f["id"] in ("itsp.not-registered.firewall", "media.one-way-audio", "security.port-443-open")]
    for f in related:
        st.error(f"**{f['id']}** — {f['title']}\n\n{f['remedy']}")
