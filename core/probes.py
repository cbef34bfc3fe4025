"""Probe results in the blackbox_exporter style: failure is data, never an exception.

The probe implementations (sockets) live in ``collectors.probes``; this is the value they return,
which the Snapshot, the rules, /metrics and the dashboard read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ProbeModule(StrEnum):
    """The probe kinds ``collectors.probes`` registers: ``/probe?module=``, the site's probe
    schedule and the firewall check use these names."""

    SIP_OPTIONS_UDP = "sip_options_udp"
    SIP_OPTIONS_TCP = "sip_options_tcp"
    SIP_OPTIONS_TLS = "sip_options_tls"
    STUN = "stun"  # Binding over UDP, or over TCP with the option transport=tcp
    TCP_CONNECT = "tcp_connect"
    HTTPS_REST = "https_rest"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    probe: str  # a ProbeModule value, e.g. "sip_options_tls", "stun", "tcp_connect", "https_rest"
    target: str  # host:port
    ts: float  # UNIX seconds when the probe started
    success: bool
    reason: str  # "" on success; otherwise what failed, e.g. "TCP connect timed out after 5.0 s"
    duration_s: float
    phases: dict[str, float] = field(default_factory=dict)  # e.g. {"connect": .., "tls": .., "request": ..}
    transcript: tuple[str, ...] = ()  # what was sent/received (secrets redacted)
    details: dict[str, Any] = field(default_factory=dict)  # status_code, tls_version, cert_not_after, rtt_ms, mapped_address …

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "target": self.target,
            "ts": self.ts,
            "success": self.success,
            "reason": self.reason,
            "duration_s": self.duration_s,
            "phases": dict(self.phases),
            "transcript": list(self.transcript),
            "details": dict(self.details),
        }
