"""Writing captures: one call's packets (``--export-pcap``) and OSBiz trace logs as pcap (``convert``).

Per-call export re-reads the inputs and copies the original frames that the ``CallSelection``
wants, unchanged, into a classic pcap with the link type of the first input; frames of another
link type (a mixed multi-interface pcapng) are counted and skipped. Trace-log messages become
Ethernet/IPv4/UDP frames between the logged addresses (the trace names no transport; UDP keeps
every message one frame, so ``tshark -Y sip`` decodes each one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collectors.capture.decode import Decoder
from collectors.capture.files import CaptureFile
from collectors.capture.packets import IcmpUnreachable, TcpSegment, UdpPacket
from collectors.capture.tracelog import TraceLogReader, TraceMessage, looks_like_trace_log
from core.analysis import ErrorItem
from core.errors import UpscopeError
from traces.call_export import CallSelection
from traces.pcap_writer import LINKTYPE_ETHERNET, PcapWriter, eth_udp

MAX_UDP_PAYLOAD = 65507  # IPv4: 65535 − 20 (IP) − 8 (UDP)


class _Match:
    """Decoder sink that only remembers whether the current frame belongs to the call."""

    def __init__(self, sel: CallSelection) -> None:
        self.sel = sel
        self.hit = False

    def udp(self, pkt: UdpPacket) -> None:
        self.hit = self.hit or self.sel.wants_media(pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.ts) \
            or self.sel.wants_signalling(pkt.payload)

    def tcp(self, seg: TcpSegment) -> None:
        self.hit = self.hit or (bool(seg.payload) and self.sel.wants_signalling(seg.payload))

    def icmp(self, msg: IcmpUnreachable) -> None:
        pass

    def error(self, item: ErrorItem) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    written: int
    skipped_link_type: int


def _trace_frame(m: TraceMessage) -> bytes:
    return eth_udp(m.src, m.sport, m.dst, m.dport, m.data, ident=m.index)


def _trace_messages(path: Path) -> list[TraceMessage]:
    reader = TraceLogReader()
    out: list[TraceMessage] = []
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            out += reader.feed(chunk)
    out += reader.close()
    return out


class _OneLinkType:
    """The exported pcap: opened with the link type of the first frame that goes in; frames of
    another link type are counted and left out (a classic pcap has one link type)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._linktype: int | None = None
        self.writer: PcapWriter | None = None
        self.skipped = 0

    def writer_for(self, linktype: int) -> PcapWriter | None:
        """The writer when ``linktype`` is the file's, None (counted as skipped) when not."""
        if self.writer is None:
            self._linktype = linktype
            self.writer = PcapWriter(self._out, linktype)
        if linktype != self._linktype:
            self.skipped += 1
            return None
        return self.writer


def export_call(paths: list[Path], sel: CallSelection, out: BinaryIO) -> ExportOutcome:
    sink = _OneLinkType(out)
    for path in paths:
        if path.is_file() and looks_like_trace_log(path):
            writer = sink.writer_for(LINKTYPE_ETHERNET)
            if writer is None:
                continue
            for m in _trace_messages(path):
                if sel.wants_signalling(m.data) and len(m.data) <= MAX_UDP_PAYLOAD:
                    writer.write(m.ts, _trace_frame(m))
            continue
        match = _Match(sel)
        dec = Decoder(match)
        for batch in CaptureFile(path).batches():
            buf = batch.buf
            for i in range(len(batch)):
                o, c = int(batch.data_off[i]), int(batch.caplen[i])
                lt = int(batch.linktype[i])
                frame = buf[o:o + c]
                match.hit = False
                dec.decode(batch.first_frame + i, float(batch.ts[i]), lt, frame, c < int(batch.orig_len[i]))
                if not match.hit:
                    continue
                writer = sink.writer_for(lt)
                if writer is not None:
                    writer.write(float(batch.ts[i]), frame, int(batch.orig_len[i]))
    if sink.writer is None:
        PcapWriter(out, LINKTYPE_ETHERNET)  # still a valid (empty) capture
        return ExportOutcome(0, sink.skipped)
    return ExportOutcome(sink.writer.count, sink.skipped)


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
                writer.write(m.ts, _trace_frame(m))
            if not chunk:
                break
    return ConvertOutcome(writer.count, too_big, tuple(reader.errors))


__all__ = ["ConvertOutcome", "ExportOutcome", "convert_trace_log", "export_call"]
