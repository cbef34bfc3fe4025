"""The Streamlit entry point: page set-up and navigation only; pages live in ``dashboard.pages``.

Started by ``upscope dashboard`` (``streamlit run dashboard/app.py``), which passes the data source
in the environment (``dashboard.data.SOURCE_ENV``) and the Prometheus of the Fleet page
(``dashboard.fleet.PROMETHEUS_ENV``).
"""

from __future__ import annotations

import streamlit as st

from dashboard.pages import (
    PAGES,
    analyze,
    calls,
    diagnoses,
    firewall,
    fleet,
    media,
    overview,
    registration,
    traces,
    users,
)

NAV = [
    (overview.render, "Overview", "overview", ":material/dashboard:"),
    (diagnoses.render, "Diagnoses", "diagnoses", ":material/medical_services:"),
    (calls.render, "Calls", "calls", ":material/call:"),
    (media.render, "Media", "media", ":material/graphic_eq:"),
    (registration.render, "Registration", "registration", ":material/how_to_reg:"),
    (users.render, "Users & licenses", "users", ":material/group:"),
    (firewall.render, "Firewall", "firewall", ":material/security:"),
    (traces.render, "Trace profiles & support", "traces", ":material/checklist:"),
    (analyze.render, "Analyze a capture", "analyze", ":material/upload_file:"),
]


def main() -> None:
    st.set_page_config(page_title="upscope", page_icon=":material/monitor_heart:", layout="wide")
    nav = fleet.navigation(NAV)  # this session's pages (Fleet first when a Prometheus is configured)
    for n, (fn, title, path, icon) in enumerate(nav):
        # The first page is served at "/"; its own name must open it too (a bookmarked /overview).
        PAGES[path] = st.Page(fn, title=title, url_path=f"{path}-home" if n == 0 else path, icon=icon,
                              default=n == 0)
    alias = st.Page(nav[0][0], title=nav[0][1], url_path=nav[0][2], icon=nav[0][3], visibility="hidden")
    st.navigation([*(PAGES[path] for _, _, path, _ in nav), alias]).run()


main()
