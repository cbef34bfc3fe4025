"""Times as the pages write them: UNIX seconds in, text out, hostile values tolerated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_dt(ts: Any) -> datetime | None:
    """UNIX seconds → aware datetime; None for what is not a representable time (hostile captures
    carry any timestamp)."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def fmt_ts(ts: Any) -> str:
    when = to_dt(ts)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"


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
    return to_dt(snap.get("now")) or datetime.now(UTC)


def evidence_time(snap: dict[str, Any]) -> datetime:
    """How far the snapshot's evidence reaches (offline: the capture's end), else its "now"."""
    return to_dt(snap.get("evidence_until")) or snap_time(snap)
