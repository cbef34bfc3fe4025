"""OSBiz SIP trace log → classic pcap (``upscope convert``).

Trace-log messages become Ethernet/IPv4/UDP frames between the logged addresses: the trace names
no transport, and UDP keeps every message one frame, so ``tshark -Y sip`` decodes each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.analysis import ErrorItem
from core.errors import UpscopeError
from traces.pcap_writer import LINKTYPE_ETHERNET, PcapWriter, eth_udp
from traces.tracelog import TraceLogReader, TraceMessage, looks_like_trace_log

MAX_UDP_PAYLOAD = 65507  # IPv4: 65535 − 20 (IP) − 8 (UDP)


def trace_frame(m: TraceMessage) -> bytes:
    """The Ethernet/IPv4/UDP frame that carries one trace-log message."""
    return eth_udp(m.src, m.sport, m.dst, m.dport, m.data, ident=m.index)


def read_trace_messages(path: Path) -> list[TraceMessage]:
    """Every message of the trace log at ``path``."""
    reader = TraceLogReader()
    out: list[TraceMessage] = []
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            out += reader.feed(chunk)
    out += reader.close()
    return out


@dataclass(frozen=True, slots=True)
class ConvertOutcome:
    messages: int
    skipped_too_big: int
    errors: tuple[ErrorItem, ...]


def convert_trace_log(src: Path, out: BinaryIO) -> ConvertOutcome:
    """OSBiz SIP trace log → classic pcap (Ethernet/IPv4/UDP); raises UpscopeError for non-trace input."""
    if src.is_dir():
        raise UpscopeError(f"{src} is a directory, not a trace log")
    if not looks_like_trace_log(src):
        raise UpscopeError(f"{src} is not an OSBiz SIP trace log (no '(SIP_SA' block in the first 64 KiB)")
    reader = TraceLogReader()
    writer = PcapWriter(out, LINKTYPE_ETHERNET)
    too_big = 0
    with src.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            msgs = reader.feed(chunk) if chunk else reader.close()
            for m in msgs:
                if len(m.data) > MAX_UDP_PAYLOAD:
                    too_big += 1
                    continue
                writer.write(m.ts, trace_frame(m))
            if not chunk:
                break
    return ConvertOutcome(writer.count, too_big, tuple(reader.errors))
