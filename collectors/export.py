"""One call's packets as a pcap (``--export-pcap``).

Per-call export re-reads the inputs and copies the original frames that the ``CallSelection``
wants, unchanged, into a classic pcap with the link type of the first input; frames of another
link type (a mixed multi-interface pcapng) are counted and skipped. A trace log among the inputs
contributes its messages as the frames ``traces.convert`` makes of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collectors.capture.decode import Decoder
from collectors.capture.files import CaptureFile
from collectors.capture.packets import IcmpUnreachable, TcpSegment, UdpPacket
from core.analysis import ErrorItem
from traces.call_export import CallSelection
from traces.convert import MAX_UDP_PAYLOAD, read_trace_messages, trace_frame
from traces.pcap_writer import LINKTYPE_ETHERNET, PcapWriter
from traces.tracelog import looks_like_trace_log


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
            for m in read_trace_messages(path):
                if sel.wants_signalling(m.data) and len(m.data) <= MAX_UDP_PAYLOAD:
                    writer.write(m.ts, trace_frame(m))
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


__all__ = ["ExportOutcome", "export_call"]
