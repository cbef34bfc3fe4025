"""Firewall: the expected flows of DOMAIN §7 against what was observed, one verdict per flow."""

from __future__ import annotations

import streamlit as st

from dashboard import data

VERDICT_ICON = {"ok": "🟢 ok", "blocked": "🔴 blocked", "violated": "🔴 violated", "not observed": "⚪ not observed"}


def render() -> None:
    st.title("Firewall")
    _, snap = data.page_snapshot()
    df = data.firewall_frame(snap)
    df["verdict"] = [VERDICT_ICON.get(v, v) for v in df["verdict"]]
    st.dataframe(df, hide_index=True)
    st.caption("Addresses are the seed's defaults unless the site file sets `endpoints`; GCP europe-west3 "
               "ranges are not checked without a ranges file.")
    related = [f for f in snap.get("findings", [])
               if f["id"] in ("itsp.not-registered.firewall", "media.one-way-audio", "security.port-443-open")]
    for f in related:
        st.error(f"**{f['id']}** — {f['title']}\n\n{f['remedy']}")
