"""The blackbox-style ``/probe`` of ``upscope serve``: which targets it may reach (``ProbeAccess``:
the site's own endpoints, never a name resolved first), the named module configurations, and how
one probe result is exposed (``probe_success``, phase durations, status code, TLS details).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.errors import UpscopeError
from core.probes import ProbeResult


@dataclass(frozen=True, slots=True)
class ProbeModuleConfig:
    """A named probe configuration for /probe (blackbox's "module"): a probe kind plus options."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _host_port(text: str) -> tuple[str, int] | None:
    """``host:port`` / ``[v6]:port`` → (lower-case host without brackets, port), or None."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]").lower(), int(port)


@dataclass(frozen=True, slots=True)
class ProbeAccess:
    """Which targets ``/probe`` may reach.

    ``endpoints`` gives, at each request, the site's ``host:port`` endpoints (connector SIP, STUN,
    REST) and ``hosts`` the addresses probed on any port (the OSBiz's own); ``allow`` widens them
    (``--probe-allow``: a CIDR for IP targets, or a ``host:port``). Targets are compared as
    written, never resolved first: a name is allowed only when it is written so in the site file.
    """

    endpoints: Callable[[], Iterable[str]]
    hosts: Callable[[], Iterable[str]] = lambda: ()
    allow: tuple[str, ...] = ()
    debug: bool = False

    def __post_init__(self) -> None:
        for entry in self.allow:
            if _host_port(entry) is None:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise UpscopeError(f"--probe-allow {entry[:80]!r}: neither a CIDR (10.0.0.0/8) nor "
                                       "HOST:PORT") from None

    def refusal(self, target: str) -> str | None:
        """None when ``target`` may be probed, else the reason (for a 403)."""
        parsed = _host_port(target)
        if parsed is None:
            return None  # malformed: the probe's own parser answers 400
        host, port = parsed
        pairs = {p for p in (_host_port(e) for e in (*self.endpoints(), *self.allow)) if p is not None}
        if (host, port) in pairs or host in {h.strip("[]").lower() for h in self.hosts()}:
            return None
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        for entry in self.allow:
            if ip is not None and _host_port(entry) is None and ip in ipaddress.ip_network(entry, strict=False):
                return None
        return (f"target {target[:80]} is not one of this site's endpoints; /probe reaches only those "
                "(upscope serve --probe-allow CIDR|HOST:PORT widens it)")


class ProbeResultCollector(Collector):
    """One probe's answer in the exposition format (what blackbox_exporter shows)."""

    def __init__(self, result: ProbeResult) -> None:
        self._r = result

    def collect(self) -> list[Metric]:
        r = self._r
        out: list[Metric] = []

        def gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> None:
            family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
            family.add_metric(list((labels or {}).values()), value)
            out.append(family)

        gauge("probe_success", "1 when the probe succeeded.", 1.0 if r.success else 0.0)
        gauge("probe_duration_seconds", "How long the probe took, in seconds.", r.duration_s)
        phases = GaugeMetricFamily("probe_phase_duration_seconds", "Duration of each probe phase.",
                                   labels=["phase"])
        for phase, seconds in r.phases.items():
            phases.add_metric([phase], float(seconds))
        out.append(phases)
        d = r.details
        if isinstance(code := d.get("status_code"), int):
            gauge("probe_status_code", "SIP or HTTP status code of the answer.", float(code))
        if isinstance(version := d.get("tls_version"), str):
            gauge("probe_tls_version_info", "TLS version negotiated.", 1.0, {"version": version})
        if isinstance(not_after := d.get("cert_not_after"), int | float):
            gauge("probe_ssl_earliest_cert_expiry", "notAfter of the peer certificate (UNIX seconds).",
                  float(not_after))
        if isinstance(verified := d.get("cert_verified"), bool):
            gauge("probe_tls_cert_verified", "1 when chain and host name were verified.", 1.0 if verified else 0.0)
        if isinstance(resent := d.get("retransmissions"), int):
            gauge("probe_retransmissions", "Requests re-sent over UDP before the answer.", float(resent))
        return out
