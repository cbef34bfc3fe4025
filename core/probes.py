"""Probe results in the blackbox_exporter style: failure is data, never an exception.

The probe implementations (sockets) live in ``collectors.probes``; this is the value they return,
which the Snapshot, the rules, /metrics and the dashboard read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ProbeResult:
    probe: str  # module name, e.g. "sip_options_tls", "stun", "tcp_connect", "https_rest"
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
