"""Registration: REGISTER/OPTIONS timeline, keepalive RTT, TLS flows and probe results."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import data, frames, sources, tiles
from dashboard.timefmt import fmt_ts
from dashboard.timerange import TimeRange


def render() -> None:
    st.title("Registration")
    src, snap = data.page_snapshot()
    rng = data.page_range(src, snap)
    tile = tiles.itsp_tile(snap)
    st.markdown(f"**ITSP status:** {tile.value} — {tile.help}")
    a = frames.analysis(snap)
    regs = a.get("registrations", [])
    if regs:
        st.dataframe(pd.DataFrame([{
            "aor": r["aor"], "registrar": r["registrar"], "registered": r["registered"],
            "attempts": r["attempts"], "challenges": r["challenges"], "last_code": r["last_code"],
            "granted_expiry_s": r["granted_expiry_s"], "expires": fmt_ts(r.get("expiry_ts")),
            "unanswered": r["unanswered"], "rrd_ms": r.get("request_delay_ms"),
        } for r in regs]), hide_index=True)
    tl = frames.registration_frame(snap)
    st.subheader("REGISTER / OPTIONS timeline")
    if tl.empty:
        st.caption("No REGISTER or OPTIONS in the data.")
    else:
        fig = px.scatter(tl, x="time", y="kind", color="message", hover_data=["frame", "summary", "from", "to"])
        fig.update_layout(height=260)
        st.plotly_chart(fig, key="reg.timeline")
    st.subheader("Keepalive round-trip time")
    ka = frames.keepalive_frame(snap)
    if ka.empty:
        st.caption("No keepalive answers in the data.")
    else:
        fig = px.line(ka, x="n", y="rtt_ms", color="keepalive", markers=True)
        fig.update_layout(height=260)
        st.plotly_chart(fig, key="reg.rtt")
    st.subheader("TLS to the connector")
    tls = a.get("tls_flows", [])
    if tls:
        st.dataframe(pd.DataFrame([{
            "client": f"{t['client']}:{t['client_port']}", "server": f"{t['server']}:{t['server_port']}",
            "syn_answered": t["syn_answered"], "handshake": t["handshake"], "version": t["version"],
            "sni": t["sni"], "alerts": ", ".join(t.get("alerts", [])), "reset_by": t["reset_by"],
            "cert_not_after": fmt_ts(t.get("cert_not_after")), "decrypted": t.get("decrypted"),
        } for t in tls]), hide_index=True)
    else:
        st.caption("No TLS flows in the data.")
    st.subheader("Probes")
    probes = [p for p in snap.get("probes", []) if isinstance(p, dict)]
    if probes:
        st.dataframe(pd.DataFrame([{
            "probe": p.get("probe"), "target": p.get("target"), "when": fmt_ts(p.get("ts")),
            "success": p.get("success"), "reason": p.get("reason"), "duration_s": p.get("duration_s"),
        } for p in probes]), hide_index=True)
    else:
        st.caption("No probe results (offline analysis has none).")
    _range(src, rng)


def _range(src: sources.DataSource, rng: TimeRange) -> None:
    """ITSP status changes and probe failures of the time range, from the service's history."""
    st.subheader("History of the time range")
    try:
        states = src.rows("itsp_state", rng.start, rng.end)
        probes = src.rows("probes", rng.start, rng.end)
    except sources.SourceError as exc:
        st.caption(f"history unavailable: {exc}")
        return
    if isinstance(src, sources.OfflineSource):
        st.caption("The history is kept by the service; an analysed capture has the timeline above.")
        return
    st.caption(f"{rng.describe()}: {len(states)} ITSP status changes, {len(probes)} probe results.")
    if states:
        st.dataframe(pd.DataFrame([{"when": fmt_ts(r.get("ts")), "state": r.get("state"), "reason": r.get("reason")}
                                   for r in states]), hide_index=True)
    failed = [p for p in probes if not p.get("success")]
    if probes:
        fig = px.scatter(pd.DataFrame([{"time": pd.Timestamp(float(p["ts"]), unit="s", tz="UTC"),
                                        "probe": p.get("probe"), "success": bool(p.get("success")),
                                        "duration_s": p.get("duration_s"), "reason": p.get("reason")}
                                       for p in probes]),
                         x="time", y="probe", color="success", hover_data=["duration_s", "reason"],
                         color_discrete_map={True: "#2ca02c", False: "#d62728"})
        fig.update_layout(height=240, legend={"orientation": "h", "y": -0.35})
        st.plotly_chart(fig, key="reg.probes")
    if failed:
        st.dataframe(pd.DataFrame([{"when": fmt_ts(p.get("ts")), "probe": p.get("probe"), "target": p.get("target"),
                                    "reason": p.get("reason")} for p in failed]), hide_index=True)
