"""A history ring per probe that keeps failures (as blackbox_exporter's result history does).

Successes are cheap and frequent; the failure an operator wants to read is often older than the
last N runs. So each probe (module, target) keeps the last ``limit`` results *and* separately the
last ``failures_kept`` failures, which a long run of successes cannot push out.
"""

from __future__ import annotations

import threading
from collections import deque

from core.probes import ProbeResult


class ProbeHistory:
    def __init__(self, limit: int = 100, failures_kept: int = 100) -> None:
        if limit < 1 or failures_kept < 0:
            raise ValueError("ProbeHistory: limit must be ≥ 1 and failures_kept ≥ 0")
        self._limit = limit
        self._failures_kept = failures_kept
        self._recent: dict[tuple[str, str], deque[ProbeResult]] = {}
        self._failures: dict[tuple[str, str], deque[ProbeResult]] = {}
        self._lock = threading.Lock()  # probes run on scheduler threads, readers on HTTP threads

    def add(self, result: ProbeResult) -> None:
        key = (result.probe, result.target)
        with self._lock:
            self._recent.setdefault(key, deque(maxlen=self._limit)).append(result)
            if not result.success and self._failures_kept:
                self._failures.setdefault(key, deque(maxlen=self._failures_kept)).append(result)

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._recent)

    def latest(self, probe: str, target: str) -> ProbeResult | None:
        with self._lock:
            ring = self._recent.get((probe, target))
            return ring[-1] if ring else None

    def latest_all(self) -> tuple[ProbeResult, ...]:
        """The newest result of every probe, in (module, target) order: what a Snapshot holds."""
        with self._lock:
            return tuple(self._recent[key][-1] for key in sorted(self._recent))

    def results(self, probe: str, target: str) -> tuple[ProbeResult, ...]:
        """Recent results plus preserved older failures, oldest first, without duplicates."""
        with self._lock:
            recent = list(self._recent.get((probe, target), ()))
            failures = list(self._failures.get((probe, target), ()))
        seen = {id(r) for r in recent}
        merged = [r for r in failures if id(r) not in seen] + recent
        return tuple(sorted(merged, key=lambda r: r.ts))

    def failures(self, probe: str, target: str) -> tuple[ProbeResult, ...]:
        with self._lock:
            return tuple(self._failures.get((probe, target), ()))
