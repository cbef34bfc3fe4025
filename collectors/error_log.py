"""The error items of an analysis run: each malformed or unsupported item, kept up to a bound and
counted by kind beyond it, ordered by input and frame."""

from __future__ import annotations

import dataclasses
from collections import Counter

from core.analysis import ErrorItem

MAX_ERRORS = 2000


class ErrorLog:
    """Keeps the first ``limit`` error items and counts all of them."""

    def __init__(self, limit: int = MAX_ERRORS) -> None:
        self.limit = limit
        self.items: list[ErrorItem] = []
        self.counts: Counter[str] = Counter()
        self.source: str | None = None

    def ordered(self, sources: list[str]) -> tuple[ErrorItem, ...]:
        """By input, the input's own problem (file/offset) first, then by frame."""
        rank = {name: i for i, name in enumerate(sources)}
        return tuple(sorted(self.items, key=lambda e: (rank.get(e.source or "", len(rank)), e.kind != "file",
                                                       e.frame if e.frame is not None else 1 << 62)))

    def add(self, item: ErrorItem) -> None:
        self.counts[item.kind] += 1
        if len(self.items) < self.limit:
            if item.source is None and self.source is not None:
                item = dataclasses.replace(item, source=self.source)
            self.items.append(item)
