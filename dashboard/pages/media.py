"""Media: the RTP streams; loss, jitter and MOS per 10-s interval; one-way audio marked."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import data, frames


def render() -> None:
    st.title("Media")
    _, snap = data.page_snapshot()
    df = frames.streams_frame(snap)
    if df.empty:
        st.info("No RTP streams in the data.")
        return
    # A link from a diagnosis or a call opens the page on that call's streams (?call=<Call-ID>).
    calls = ["all calls", *sorted({str(c) for c in df["call_id"] if c})]
    wanted = st.query_params.get("call")
    pick = st.selectbox("Streams of", calls, index=calls.index(wanted) if wanted in calls else 0, key="media.call")
    if pick != "all calls":
        df = df[df["call_id"] == pick]
    one_way = df[df["one_way_audio"]]
    if not one_way.empty:
        calls = sorted({str(c) for c in one_way["call_id"] if c})
        st.error("One-way audio: RTP in one direction only" + (f" (calls {', '.join(calls)})" if calls else ""))
    st.dataframe(
        df.drop(columns=["name"]), hide_index=True,
        column_config={"one_way_audio": st.column_config.CheckboxColumn("one-way audio"),
                       "mos": st.column_config.NumberColumn("MOS", format="%.2f"),
                       "loss_pct": st.column_config.NumberColumn("loss %", format="%.2f")},
    )
    iv = frames.intervals_frame(snap)
    iv = iv[iv["stream"].isin(df["name"])]
    if iv.empty:
        st.caption("No per-interval figures in the data.")
        return
    for col, title in (("loss_pct", "Loss % per 10 s"), ("mean_jitter_ms", "Mean jitter (ms) per 10 s"),
                       ("mos", "MOS per 10 s")):
        fig = px.line(iv, x="time", y=col, color="stream", markers=True, title=title)
        fig.update_layout(height=300, legend={"orientation": "h"})
        st.plotly_chart(fig, key=f"media.{col}")
