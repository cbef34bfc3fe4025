"""The time range a page covers: last 15 min / 1 h / 24 h / 7 d, or from–to, picked once in the
sidebar and kept while the user moves between pages (and in the URL as ``?range=1h``).

The ranges end at the data's "now": the service's clock, or for a capture its last packet — so
"last hour" of an old capture is its last hour. An offline analysis also offers the whole capture
(its default). Pure helpers here; the widgets are in ``picker``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import streamlit as st

from dashboard.timefmt import fmt_ts, zone, zone_name

#: (label, seconds back from the end, URL value); None = the custom from–to.
PRESETS: tuple[tuple[str, float | None, str], ...] = (
    ("Last 15 minutes", 900.0, "15m"), ("Last hour", 3600.0, "1h"), ("Last 24 hours", 86400.0, "24h"),
    ("Last 7 days", 7 * 86400.0, "7d"), ("Custom", None, "custom"),
)
WHOLE = ("Whole capture", None, "all")
KEY = "upscope.range"
#: Custom ranges never reach further back than this (the history's retention is 14 days by default).
MAX_CUSTOM_DAYS = 366


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: float
    end: float
    label: str  # "Last hour"

    def describe(self) -> str:
        """``Last hour: 2026-09-21 13:03:05 CEST – 14:03:05``."""
        return f"{self.label}: {fmt_ts(self.start)} – {fmt_ts(self.end)}"

    def moved_to(self, end: float, first: float | None = None) -> TimeRange:
        """The same preset ending at ``end`` (a live page moves on); a custom range stays."""
        return self if self.label == "Custom" else preset_range(self.label, end, first)

    def contains(self, ts: Any) -> bool:
        return isinstance(ts, int | float) and self.start <= float(ts) < self.end


def preset_range(label: str, end: float, first: float | None = None) -> TimeRange:
    """A preset ending at ``end``; ``Whole capture`` spans from ``first`` (the first packet)."""
    if label == WHOLE[0]:
        return TimeRange(min(first if first is not None else end, end), end + 1e-6, label)
    seconds = next((s for name, s, _ in PRESETS if name == label and s is not None), 3600.0)
    return TimeRange(end - seconds, end + 1e-6, label)


def custom_range(day_from: date, at_from: time, day_to: date, at_to: time, where: tzinfo) -> TimeRange:
    """From–to as picked in the display zone; swapped when given the wrong way round."""
    a = datetime.combine(day_from, at_from, tzinfo=where).timestamp()
    b = datetime.combine(day_to, at_to, tzinfo=where).timestamp()
    lo, hi = min(a, b), max(a, b)
    return TimeRange(lo, hi, "Custom")


def picker(snap: dict[str, Any], offline: bool) -> TimeRange:
    """The sidebar's range picker (call outside fragments: they cannot write to the sidebar)."""
    end = float(snap.get("evidence_until") or snap.get("now") or 0.0)
    analysis = snap.get("analysis") or {}
    first = analysis.get("first_ts") if isinstance(analysis.get("first_ts"), int | float) else None
    options = ([WHOLE] if offline else []) + list(PRESETS)
    labels = [name for name, _, _ in options]
    if KEY not in st.session_state or st.session_state[KEY] not in labels:
        wanted = st.query_params.get("range")
        st.session_state[KEY] = next((name for name, _, code in options if code == wanted), labels[0] if offline
                                     else "Last hour")
    side = st.sidebar
    label = side.selectbox("Time range", labels, key=KEY,
                           help=f"What the calls, media, findings and registration history cover. Times in "
                                f"{zone_name()}.")
    if label != "Custom":
        chosen = preset_range(label, end, first)
    else:
        default_end = datetime.fromtimestamp(end, zone())
        default_start = default_end - timedelta(hours=1)
        c1, c2 = side.columns(2)
        oldest = (default_end - timedelta(days=MAX_CUSTOM_DAYS)).date()
        day_from = c1.date_input("From", default_start.date(), min_value=oldest, key="upscope.range.from-day")
        at_from = c2.time_input("at", default_start.time().replace(microsecond=0), key="upscope.range.from-time",
                                step=60)
        d1, d2 = side.columns(2)
        day_to = d1.date_input("To", default_end.date(), min_value=oldest, key="upscope.range.to-day")
        at_to = d2.time_input("at ", default_end.time().replace(microsecond=0), key="upscope.range.to-time",
                              step=60)
        chosen = custom_range(day_from, at_from, day_to, at_to, zone())
    code = next(c for name, _, c in options if name == label)
    if st.query_params.get("range") != code:
        st.query_params["range"] = code  # a link to this page opens on the same range
    side.caption(chosen.describe())
    return chosen
