"""The flows a capture analysis saw, for the firewall view: packets, bytes and the first and last
frame per (protocol, source, destination, destination port), in bounded memory."""

from __future__ import annotations

from typing import Any

from collectors.capture.packets import ipv4_int, ipv4_name
from core.analysis import FlowInfo

MAX_FLOWS = 20000


class FlowTable:
    """Per (proto, src, dst, dst_port) counters for the firewall view; bounded.

    Fast-lane UDP flows are counted apart, keyed by integers (IPv4 addresses as numbers), so a
    chunk costs one dict update per active flow and no string formatting; they join the
    string-keyed table in ``result``.
    """

    def __init__(self, limit: int = MAX_FLOWS) -> None:
        self.limit = limit
        self.flows: dict[tuple[str, str, str, int], list[Any]] = {}
        # (src, dst, dport) as integers → [packets, bytes, first_ts, last_ts, first_frame]
        self.fast: dict[tuple[int, int, int], list[Any]] = {}
        self.overflow = 0

    def add(self, proto: str, src: str, dst: str, dport: int, size: int, ts: float, frame: int) -> list[Any] | None:
        key = (proto, src, dst, dport)
        f = self.flows.get(key)
        if f is None:
            if len(self.flows) + len(self.fast) >= self.limit:
                self.overflow += 1
                return None
            # packets, bytes, first_ts, last_ts, syn, syn_ack, rst, icmp, first_frame
            f = self.flows[key] = [0, 0, ts, ts, 0, 0, 0, 0, frame]
        f[0] += 1
        f[1] += size
        f[3] = ts
        return f

    def add_fast(self, src: int, dst: int, dport: int, packets: int, size: int, first_ts: float,
                 last_ts: float, first_frame: int) -> None:
        key = (src, dst, dport)
        f = self.fast.get(key)
        if f is None:
            if len(self.flows) + len(self.fast) >= self.limit:
                self.overflow += packets
                return
            self.fast[key] = [packets, size, first_ts, last_ts, first_frame]
            return
        f[0] += packets
        f[1] += size
        f[3] = last_ts

    def find(self, proto: str, src: str, dst: str, dport: int) -> list[Any] | None:
        """The counters of a flow (fast-lane ones are moved to the string table on first use)."""
        f = self.flows.get((proto, src, dst, dport))
        if f is None and proto == "udp":
            try:
                key = (ipv4_int(src), ipv4_int(dst), dport)
            except OSError:
                return None
            fast = self.fast.pop(key, None)
            if fast is not None:
                f = self.flows[(proto, src, dst, dport)] = [fast[0], fast[1], fast[2], fast[3], 0, 0, 0, 0, fast[4]]
        return f

    def result(self) -> tuple[FlowInfo, ...]:
        rows = {k: list(f) for k, f in self.flows.items()}
        for (s, d, port), f in self.fast.items():
            key = ("udp", ipv4_name(s), ipv4_name(d), port)
            twin = rows.get(key)  # the same flow also seen per frame (e.g. some frames VLAN-tagged)
            if twin is None:
                rows[key] = [f[0], f[1], f[2], f[3], 0, 0, 0, 0, f[4]]
            else:
                twin[0] += f[0]
                twin[1] += f[1]
                twin[2], twin[3], twin[8] = min(twin[2], f[2]), max(twin[3], f[3]), min(twin[8], f[4])
        out = [FlowInfo(p, s, d, port, *f) for (p, s, d, port), f in rows.items()]
        out.sort(key=lambda fl: (-fl.packets, fl.proto, fl.src, fl.dst, fl.dst_port))
        return tuple(out)
