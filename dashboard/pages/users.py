"""Users & licenses: derived call numbers with the numbering verdict, license pools, team checks."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import data, frames, site_frames


def render() -> None:
    st.title("Users & licenses")
    src, snap = data.page_snapshot()
    data.page_range(src, snap)
    st.caption("The site file as it stands now; the time range does not apply here.")
    if not snap.get("site"):
        st.info("No site file: users, licenses and teams come from the site description (--site).")
        return
    users = site_frames.users_frame(snap)
    users["findings"] = [", ".join(_findings_of(snap, str(c))) for c in users["callno"]]
    st.subheader("Users")
    st.caption("Call number as the numbering plan derives it (international: route location number + DID).")
    st.dataframe(users, hide_index=True)
    st.subheader("License pools")
    pools = site_frames.license_pools(snap)
    long = pools.melt(id_vars="pool", value_vars=["used", "free"], var_name="part", value_name="licenses")
    fig = px.bar(long, x="licenses", y="pool", color="part", orientation="h",
                 color_discrete_map={"used": "#1f77b4", "free": "#c7c7c7"})
    fig.update_layout(height=80 + 40 * len(pools), barmode="stack")
    st.plotly_chart(fig, key="users.pools")
    short = pools[pools["needed"] > pools["total"]]
    for _, row in short.iterrows():
        st.error(f"License pool {row['pool']}: {row['needed']} needed, {row['total']} available")
    until = (frames.site(snap).get("licenses") or {}).get("software_support_until")
    st.caption(f"Software Support until {until or '—'}")
    st.subheader("Teams")
    teams = frames.site(snap).get("teams") or []
    if not teams:
        st.caption("No teams.")
        return
    bad = [f for f in snap.get("findings", []) if f["id"] == "team.invalid"]
    st.dataframe(pd.DataFrame([{
        "team": t.get("name"), "callno": t.get("callno"),
        "members": ", ".join(f"{m.get('callno')} ({m.get('device')})" for m in t.get("members", [])),
        "check": _team_check(t, bad),
    } for t in teams]), hide_index=True)


def _findings_of(snap: dict[str, Any], callno: str) -> list[str]:
    """Finding ids whose subject is this user (the rules write "user 100 (Anna Berger)")."""
    return [f["id"] for f in snap.get("findings", [])
            if str(f.get("subject")) == callno or str(f.get("subject") or "").startswith(f"user {callno} ")]


def _team_check(team: dict[str, Any], bad: list[dict[str, Any]]) -> str:
    keys = {str(team.get("name")), str(team.get("callno"))}
    hits = [e["text"] for f in bad if str(f.get("subject")) in keys for e in f.get("evidence", [])]
    return "problem: " + "; ".join(hits) if hits else "ok"
