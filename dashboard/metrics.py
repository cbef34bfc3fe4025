"""Prometheus exposition of the latest Snapshot: a custom Collector on an explicit registry.

Theory of operation: nothing is counted or judged here. At every scrape ``UpscopeCollector.collect``
calls the snapshot getter once and renders every family from the typed fields of that one
immutable Snapshot (``core.snapshot``), so a scrape is a consistent picture, costs nothing between
scrapes and shows exactly what the API and the dashboard show. Counters and histograms come from
``Snapshot.totals``, which only grow (the live window does not).

Label hygiene: every series carries ``system``; the other labels come from closed sets (states,
finding ids, SIP methods, probe modules, phases) or from configuration (probe targets, collector
names); ``metric_families.label`` bounds their length and masks anything shaped like an e-mail
address or a phone number. Call-IDs, numbers, names and secrets are never labels. Each family's
HELP states its cardinality bound per system. The families themselves, one function per area,
are ``dashboard.metric_families``.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable, Iterator
from importlib import metadata

from prometheus_client.core import (
    CollectorRegistry,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from core.snapshot import Snapshot
from dashboard.metric_families import SECTIONS, label

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9661  # see README "Prometheus metrics": the exporter port range 9100-9999 is fully allocated

def _version() -> str:
    try:
        return metadata.version("upscope")
    except metadata.PackageNotFoundError:
        return "unknown"


class UpscopeCollector(Collector):
    """Reads ``get_snapshot()`` at scrape time. ``system`` labels series while no Snapshot exists yet."""

    def __init__(self, get_snapshot: Callable[[], Snapshot | None], system: str = "") -> None:
        self._get_snapshot = get_snapshot
        self._system = system
        self._version = _version()

    def describe(self) -> list[Metric]:
        return []  # families depend on the Snapshot: no eager collect at registration

    def collect(self) -> Iterator[Metric]:
        snap = self._get_snapshot()
        system = label(snap.system if snap is not None else self._system)
        info = GaugeMetricFamily("upscope_build_info", "upscope version and Python (value 1). 1 series.",
                                 labels=["system", "version", "python"])
        info.add_metric([system, self._version, platform.python_version()], 1.0)
        yield info
        available = GaugeMetricFamily("upscope_snapshot_available",
                                      "1 when the service has a Snapshot to expose, else 0. 1 series.",
                                      labels=["system"])
        available.add_metric([system], 1.0 if snap is not None else 0.0)
        yield available
        if snap is None:
            return
        failed: list[str] = []
        for section in SECTIONS:
            try:
                yield from section(snap, system)
            except Exception:  # a malformed part must not take the whole scrape down
                log.exception("metrics: section %s failed", section.__name__)
                failed.append(section.__name__)
        errors = GaugeMetricFamily("upscope_exposition_errors",
                                   "1 for a metrics section that failed at this scrape (see the log). "
                                   "≤ 9 series.", labels=["system", "section"])
        for name in failed:
            errors.add_metric([system, name], 1.0)
        yield errors
        stamp = GaugeMetricFamily("upscope_snapshot_timestamp_seconds",
                                  "When the exposed Snapshot was taken. 1 series.", labels=["system"])
        stamp.add_metric([system], snap.now)
        yield stamp


def make_registry(get_snapshot: Callable[[], Snapshot | None], system: str = "") -> CollectorRegistry:
    """An explicit registry holding only the upscope collector (no process/platform defaults)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(UpscopeCollector(get_snapshot, system))
    return registry
