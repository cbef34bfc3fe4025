"""Times as the pages write them: UNIX seconds in, text out, hostile values tolerated.

Times are shown in one zone per page view: the site's (``system.timezone`` of the site file), else
the browser's, else UTC — ``use_zone`` sets it when a page starts (``dashboard.data``), and every
function here writes in it. ``utc`` gives the same instant in UTC, for the hover text of a time.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_ZONE: ContextVar[tzinfo] = ContextVar("upscope_display_zone", default=UTC)
_ZONE_NAME: ContextVar[str] = ContextVar("upscope_display_zone_name", default="UTC")


def zone_named(name: str | None) -> tuple[tzinfo, str] | None:
    """The zone of an IANA name, or None for what the time zone database does not know."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return None


def use_zone(site_zone: str | None, browser_zone: str | None) -> str:
    """Show times in the site's zone, else the browser's, else UTC; returns how the zone is called
    on the page ("Europe/Berlin (the site's time zone)")."""
    for name, whose in ((site_zone, "the site's time zone"), (browser_zone, "your browser's time zone")):
        found = zone_named(name)
        if found is not None:
            _ZONE.set(found[0])
            _ZONE_NAME.set(found[1])
            return f"{found[1]} ({whose})"
    _ZONE.set(UTC)
    _ZONE_NAME.set("UTC")
    return "UTC"


def zone() -> tzinfo:
    return _ZONE.get()


def zone_name() -> str:
    return _ZONE_NAME.get()


def to_dt(ts: Any) -> datetime | None:
    """UNIX seconds → aware datetime in the display zone; None for what is not a representable
    time (hostile captures carry any timestamp)."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    try:
        return datetime.fromtimestamp(float(ts), UTC).astimezone(_ZONE.get())
    except (ValueError, OverflowError, OSError):
        return None


def fmt_ts(ts: Any) -> str:
    """``2026-09-21 14:03:05 CEST`` in the display zone (``—`` for no time)."""
    when = to_dt(ts)
    return when.strftime("%Y-%m-%d %H:%M:%S %Z") if when else "—"


def fmt_clock(ts: Any) -> str:
    """``14:03:05`` in the display zone: times within a day a table already dates."""
    when = to_dt(ts)
    return when.strftime("%H:%M:%S") if when else "—"


def utc(ts: Any) -> str:
    """The same instant in UTC, for hover texts: ``2026-09-21 12:03:05 UTC``."""
    when = to_dt(ts)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"


def fmt_ago(ts: Any, now: float) -> str:
    if to_dt(ts) is None:
        return "since unknown"
    secs = max(0, int(now - float(ts)))
    if secs < 120:
        span = f"{secs} s"
    elif secs < 7200:
        span = f"{secs // 60} min"
    elif secs < 172800:
        span = f"{secs // 3600} h"
    else:
        span = f"{secs // 86400} d"
    return f"since {fmt_ts(ts)} ({span} ago)"


def snap_time(snap: dict[str, Any]) -> datetime:
    """The snapshot's "now" (when the site was judged)."""
    return to_dt(snap.get("now")) or datetime.now(_ZONE.get())


def evidence_time(snap: dict[str, Any]) -> datetime:
    """How far the snapshot's evidence reaches (offline: the capture's end), else its "now"."""
    return to_dt(snap.get("evidence_until")) or snap_time(snap)
