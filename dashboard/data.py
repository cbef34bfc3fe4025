"""The dashboard's gateway to its data: which source this browser session reads, and the one call
every page starts with (``page_snapshot``).

The source itself (a running service, or evidence files through the one producer) lives in
``dashboard.sources``; the tables and tiles a page shows are mappings of the Snapshot in
``dashboard.frames`` and ``dashboard.tiles``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import streamlit as st

from core.errors import UpscopeError
from dashboard import timerange
from dashboard.sources import DataSource, OfflineSource, SourceError, source_from_config
from dashboard.timefmt import fmt_ts, use_zone, utc

#: The CLI hands the default source to the Streamlit process in this variable (JSON).
SOURCE_ENV = "UPSCOPE_DASHBOARD_SOURCE"
UPLOAD_KEY = "upscope.upload"
#: A system opened from the Fleet page: this browser session reads that system's own service.
SYSTEM_KEY = "upscope.system"


@st.cache_resource(show_spinner=False)
def _default_source(config_json: str) -> DataSource:
    # One source per server process, shared by all sessions: a --capture is analysed once.
    return source_from_config(json.loads(config_json))


def current_source() -> DataSource:
    """The upload of this browser session if there is one, else the system it opened from the Fleet
    page, else the server's default source."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is not None:
        return upload  # type: ignore[no-any-return]
    chosen = st.session_state.get(SYSTEM_KEY)
    if chosen is not None:
        return chosen  # type: ignore[no-any-return]
    config = os.environ.get(SOURCE_ENV)
    if not config:
        raise SourceError(f"no data source: start the dashboard with `upscope dashboard` ({SOURCE_ENV} unset)")
    return _default_source(config)


def set_upload(source: OfflineSource | None) -> None:
    if source is None:
        st.session_state.pop(UPLOAD_KEY, None)
    else:
        st.session_state[UPLOAD_KEY] = source


def page_snapshot() -> tuple[DataSource, dict[str, Any]]:
    """Every page starts here: the source, its snapshot, and a one-line banner saying what is shown.
    A source failure is shown plainly and stops the page (no traceback)."""
    try:
        src = current_source()
        snap = src.snapshot()
    except UpscopeError as exc:
        st.error(str(exc))
        st.stop()
    zone = use_zone(site_zone(snap), st.context.timezone)
    banner = f"{snap.get('system', '?')} · {src.label} · data of {fmt_ts(snap.get('now'))}"
    hover = f"{utc(snap.get('now'))}; times in {zone}"
    if st.session_state.get(UPLOAD_KEY) is not None:
        cols = st.columns([4, 1])
        cols[0].info(f"Showing the uploaded capture: {banner}")
        if cols[1].button("Back to live data", key="upscope.back-live"):
            set_upload(None)
            st.rerun()
    else:
        st.caption(banner, help=hover)
    return src, snap


def site_zone(snap: dict[str, Any]) -> str | None:
    """The site file's ``system.timezone``, when it has one."""
    system = (snap.get("site") or {}).get("system") or {}
    value = system.get("timezone") if isinstance(system, dict) else None
    return value if isinstance(value, str) else None


def page_range(src: DataSource, snap: dict[str, Any]) -> timerange.TimeRange:
    """The time range picked in the sidebar (call it outside fragments)."""
    use_zone(site_zone(snap), st.context.timezone)
    return timerange.picker(snap, offline=isinstance(src, OfflineSource))
