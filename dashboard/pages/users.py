"""Users & licenses: derived call numbers with the numbering verdict, license pools, team checks."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import data

USER_FINDINGS = ("calls.numbering-mismatch", "numbering.too-long", "numbering.location-missing",
                 "calls.license-missing", "calls.not-trusted-external-user", "users.no-did-not-allowed",
                 "mailbox.alt-number-target")


def render() -> None:
    st.title("Users & licenses")
    _, snap = data.page_snapshot()
    if not data.site(snap):
        st.info("No site file: users, licenses and teams come from the site description (--site).")
        return
    users = data.users_frame(snap)
    by_subject: dict[str, list[str]] = {}
    for f in snap.get("findings", []):
        if f["id"] in USER_FINDINGS and f.get("subject"):
            by_subject.setdefault(str(f["subject"]), []).append(f["id"])
    if not users.empty:
        users["findings"] = [", ".join(by_subject.get(str(c), [])) for c in users["callno"]]
        users["verdict"] = [v or ("problem: " + f if f else "ok") for v, f in zip(users["verdict"], users["findings"],
                                                                              strict=True)]
    st.subheader("Users")
    st.dataframe(users, hide_index=True)
    st.subheader("License pools")
    pools = data.license_pools(snap)
    if pools.empty:
        st.caption("No license pools in the site file.")
    else:
        long = pools.melt(id_vars="pool", value_vars=["used", "free"], var_name="part", value_name="licenses")
        fig = px.bar(long, x="licenses", y="pool", color="part", orientation="h",
                     color_discrete_map={"used": "#1f77b4", "free": "#c7c7c7"})
        fig.update_layout(height=80 + 40 * len(pools), barmode="stack")
        st.plotly_chart(fig, key="users.pools")
        until = (data.site(snap).get("licenses") or {}).get("software_support_until")
        st.caption(f"Software Support until {until or '—'}")
    st.subheader("Teams")
    teams = data.site(snap).get("teams") or []
    bad = {str(f.get("subject")) for f in snap.get("findings", []) if f["id"] == "team.invalid"}
    if not teams:
        st.caption("No teams.")
    else:
        st.dataframe(pd.DataFrame([{
            "team": t.get("name"), "callno": t.get("callno"),
            "members": ", ".join(f"{m.get('callno')} ({m.get('device')})" for m in t.get("members", [])),
            "check": "problem: team.invalid" if str(t.get("name")) in bad or str(t.get("callno")) in bad else "✔ ok",
        } for t in teams]), hide_index=True)
