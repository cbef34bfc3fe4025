"""Upstream bandwidth vs. simultaneous calls (the OSBiz's trunk bandwidth setting).

``max_calls = floor(upstream_kbps × voice_share / per_call_kbps)``. The OSBiz's own formula is
unconfirmed, so the per-call figure per codec and the voice share come from the site file
(defaults: G.711 = G.722 = 87.2 kbps, G.729 = 31.2 kbps — one direction, 20 ms packets, IP/UDP/RTP
and Ethernet overhead — and 50 %, the sales rule of thumb "1 Mbit/s → 5 G.711 trunks").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.site.model import Site

CODEC_NAMES = {"g711": "G.711", "g722": "G.722", "g729": "G.729"}


def max_concurrent_calls(upstream_kbps: float, per_call_kbps: float, voice_share: float) -> int:
    if per_call_kbps <= 0:
        raise ValueError("per_call_kbps must be positive")
    if not 0 < voice_share <= 1:
        raise ValueError("voice_share must be in (0, 1]")
    # A tiny epsilon so that e.g. 872 kbps for 10 × 87.2 is not lost to float rounding.
    return max(0, math.floor(upstream_kbps * voice_share / per_call_kbps + 1e-9))


@dataclass(frozen=True, slots=True)
class BandwidthCheck:
    codec: str
    per_call_kbps: float
    voice_share: float
    upstream_kbps: int
    max_calls: int
    configured_calls: int
    shared: bool

    @property
    def ok(self) -> bool:
        return self.configured_calls <= self.max_calls

    @property
    def needed_kbps(self) -> float:
        """Upstream needed for the configured calls at this voice share."""
        return round(self.configured_calls * self.per_call_kbps / self.voice_share, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "per_call_kbps": self.per_call_kbps,
            "voice_share": self.voice_share,
            "upstream_kbps": self.upstream_kbps,
            "max_calls": self.max_calls,
            "configured_calls": self.configured_calls,
            "needed_kbps": self.needed_kbps,
            "shared_trunk_lines": self.shared,
            "ok": self.ok,
        }


def check_bandwidth(site: Site) -> BandwidthCheck:
    bw = site.bandwidth
    per_call = float(getattr(bw.per_call_kbps, bw.codec))
    conn = site.connectivity
    return BandwidthCheck(
        codec=bw.codec,
        per_call_kbps=per_call,
        voice_share=bw.voice_share,
        upstream_kbps=conn.upstream_kbps,
        max_calls=max_concurrent_calls(conn.upstream_kbps, per_call, bw.voice_share),
        configured_calls=conn.simultaneous_calls,
        shared=conn.shared_trunk_lines,
    )
