"""The dashboard pages: one module per page, each with a ``render()`` that reads through
``dashboard.data``. ``PAGES`` is filled by ``dashboard.app`` so pages can link to each other."""

from __future__ import annotations

from typing import Any

import streamlit as st

#: url_path → st.Page, set by dashboard.app before st.navigation runs.
PAGES: dict[str, Any] = {}


def link(name: str, label: str, **query: str) -> None:
    """A link to another page (with query parameters, e.g. ``call=<Call-ID>``). Outside the
    navigation (a page rendered alone) the label is shown as plain text."""
    page = PAGES.get(name)
    if page is None:
        st.caption(label)
    else:
        st.page_link(page, label=label, query_params=query or None)


#: Material icons (no emoji font needed in the browser), coloured by Streamlit's markdown.
TONES = {"ok": ":green[:material/check_circle:]", "warn": ":orange[:material/warning:]",
         "bad": ":red[:material/error:]", "neutral": ":gray[:material/info:]"}


def tone_icon(tone: str) -> str:
    return TONES.get(tone, TONES["neutral"])
