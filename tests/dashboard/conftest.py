"""AppTest harness: render one dashboard page against a fixed snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, pages, sources
from tests.dashboard import snapshots

PAGE_SCRIPT = """
from dashboard.pages import {page}
{page}.render()
"""


@pytest.fixture
def render(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """``render(page, scenario)`` → the finished AppTest of that page on that snapshot."""

    def run(page: str, scenario: str | dict[str, Any] = "healthy", source: Any = None) -> AppTest:
        snap = snapshots.SCENARIOS[scenario]() if isinstance(scenario, str) else scenario
        src = source or sources.OfflineSource(snap, label=f"test {scenario if isinstance(scenario, str) else ''}")
        monkeypatch.setattr(data, "current_source", lambda: src)
        # A page alone has no navigation: links render as captions (an app test may have filled it).
        monkeypatch.setattr(pages, "PAGES", {})
        at = AppTest.from_string(PAGE_SCRIPT.format(page=page), default_timeout=30)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def texts(at: AppTest) -> str:
    """All visible text of a page (markdown, metrics, captions, alerts, titles, code)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success",
                 "code", "expander"):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "") or getattr(el, "label", "")))
    for m in at.metric:
        parts.append(f"{m.label}: {m.value}")
    return "\n".join(parts)
