"""The offline analysis pipeline: capture files / OSBiz trace logs → one ``AnalysisResult``.

Theory of operation: each capture is read in chunks (``collectors.capture.files``); each chunk's
records are split by a vectorised *fast lane* — plain Ethernet/IPv4/UDP datagrams whose first
payload byte says RTP version 2, off the SIP ports — and the rest. The rest is decoded frame by
frame (``collectors.capture.decode``) in frame order: UDP goes to SIP (SIP ports or a SIP start
line), then STUN (magic cookie / message type), then RTP/RTCP; TCP goes through reassembly
(``collectors.capture.tcp``) and each direction is classified once (TLS record, STUN, WebSocket,
else SIP). The fast-lane datagrams go to the media analyser in as few batches as possible (one
per chunk normally), yet each flow's datagrams reach it in capture order relative to whatever
changes its view of that flow: a batch is cut early only when an SDP names a flow with pending
fast-lane rows, or when a slow-path datagram is about to reach the media analyser.

All state is per flow or per call (bounded tables); packets are not kept. At the end the SIP
view and the RTP streams are joined: a stream belongs to the call whose SDP announced its
destination address:port, and an answered call whose announced media has RTP in one direction
only is flagged ``one_way_audio``.

Analysers of the other protocols are imported when present, so the pipeline keeps working
while they are being built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collectors.capture.decode import LINK_NAMES, Decoder
from collectors.capture.files import CaptureFile
from collectors.capture.packets import (
    ACK,
    RST,
    SYN,
    IcmpUnreachable,
    Ipv4Names,
    StreamData,
    TcpSegment,
    UdpBatch,
    UdpPacket,
)
from collectors.capture.reader import RecordBatch, sort_by
from collectors.capture.tcp import TcpReassembler
from collectors.error_log import ErrorLog
from collectors.fast_lane import SIP_PORTS, FastContext, Rows, endpoint_keys, fast_rows, nothing
from collectors.flow_table import FlowTable
from collectors.media.dtmf import DtmfTap
from collectors.media.rtp import RtpAnalyzer
from collectors.sip.analyzer import SipAnalyzer
from collectors.stun.analyzer import StunAnalyzer
from collectors.tls.analyzer import TlsAnalyzer
from core.analysis import (
    AnalysisResult,
    CallInfo,
    ErrorItem,
    RtpStreamStats,
    SdpMedia,
)
from core.one_way import StreamIndex, judge_call
from core.wire.stun import MAGIC_COOKIE_BYTES
from traces.tracelog import TraceLogReader, looks_like_trace_log

MAX_STREAM_KINDS = 100_000
_WS_UPGRADE = b"upgrade: websocket"
_RESYNC_BASE = 1 << 40  # stream ids after a TCP hole: far above real connection indexes


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """How one input went: ``usable`` = at least one record/message read; ``damaged`` = partial."""

    path: str
    kind: str  # "capture" | "trace"
    usable: bool
    damaged: bool
    message: str | None = None


class Pipeline:
    """One analysis run over one or more inputs; implements the decoder's ``PacketSink``."""

    def __init__(self, keep_messages: int = 20000) -> None:
        self.errors = ErrorLog()
        self.flows = FlowTable()
        self.tcp_streams = TcpReassembler()
        self.decoder = Decoder(self)
        # None in a signalling-only pipeline (collectors.call_messages): no fast lane, no RTP/RTCP
        self.rtp: RtpAnalyzer | None = RtpAnalyzer()
        self.dtmf = DtmfTap()  # key presses: a tap beside the media and SIP analysers
        self.sip = SipAnalyzer(on_sdp=self._on_sdp, keep_messages=keep_messages, on_message=self._on_sip)
        self.stun = StunAnalyzer()
        self.tls = TlsAnalyzer()
        self._fast_ctx: FastContext | None = None
        # one decrypted SIP message per (src, sport, dst, dport): marks those TLS flows decrypted
        self.decrypted: dict[tuple[str, int, str, int], Any] = {}
        # per (connection, src, sport): "sip" | "tls" | "stun" | "ws"
        self._stream_kind: dict[tuple[int, str, int], str] = {}
        # (connection, src, sport) → stream id handed to the SIP analyser after a capture hole
        self._resync: dict[tuple[int, str, int], int] = {}
        self._resync_next = _RESYNC_BASE
        self._ipv4_name = Ipv4Names()  # plain UDP rows' addresses, formatted once
        self.packets = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.link_types: set[str] = set()
        self.outcomes: list[SourceOutcome] = []
        self.unsupported_seen: set[tuple[str, str]] = set()

    # -- sink ----------------------------------------------------------------------------------

    def _on_sdp(self, call_id: str, addr: str, port: int, payload_map: dict[int, tuple[str, int]],
                ts: float) -> None:
        ctx = self._fast_ctx
        if ctx is not None and ctx.upto > ctx.done and ctx.touches(addr, port):
            self._flush_fast()
        if self.rtp is not None:
            self.rtp.expect(addr, port, payload_map, call_id)
        self.dtmf.expect(addr, port, payload_map)

    def _on_sip(self, info: Any, msg: Any, raw: bytes) -> None:
        if info.method == "INFO":  # DTMF travels in INFO bodies only: no header scan for the rest
            self.dtmf.on_sip(info, msg.get("content-type"), msg.body)

    def udp(self, pkt: UdpPacket) -> None:
        self.flows.add("udp", pkt.src, pkt.dst, pkt.dport, len(pkt.payload), pkt.ts, pkt.frame)
        p = pkt.payload
        if not p:
            return
        b0 = p[0]
        # SIP start lines begin with a letter (or CRLF keepalives); RTP with 0b10; STUN with 0b00.
        if (0x41 <= b0 <= 0x7A or b0 in (0x0D, 0x0A) or pkt.sport in SIP_PORTS or pkt.dport in SIP_PORTS) \
                and self.sip.on_udp(pkt):
            return
        if b0 < 0x40 and len(p) >= 20 and self.stun.on_udp(pkt):
            return
        if self.rtp is not None:
            self._flush_fast()
            self.dtmf.on_udp(pkt.frame, pkt.ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.payload)
            self.rtp.on_udp(pkt)

    def tcp(self, seg: TcpSegment) -> None:
        f = self.flows.add("tcp", seg.src, seg.dst, seg.dport, len(seg.payload), seg.ts, seg.frame)
        if f is not None:
            flags = seg.flags
            if flags & SYN:
                f[4 if not flags & ACK else 5] += 1
            if flags & RST:
                f[6] += 1
        self.tls.on_segment(seg)
        for piece in self.tcp_streams.on_segment(seg):
            self._stream(piece)

    def icmp(self, msg: IcmpUnreachable) -> None:
        f = self.flows.find(msg.proto, msg.src, msg.dst, msg.dport)
        if f is not None:
            f[7] += 1

    def error(self, item: ErrorItem) -> None:
        if item.kind == "unsupported":
            # One item per (layer, source) is enough to say "this is out of scope"; count the rest.
            key = (item.layer, self.errors.source or "")
            if key in self.unsupported_seen:
                self.errors.counts[item.kind] += 1
                return
            self.unsupported_seen.add(key)
        self.errors.add(item)

    # -- TCP streams ---------------------------------------------------------------------------

    def _stream(self, piece: StreamData) -> None:
        key = (piece.connection, piece.src, piece.sport)
        kind = self._stream_kind.get(key)
        if kind is None:
            if len(self._stream_kind) >= MAX_STREAM_KINDS:
                self._stream_kind.clear()  # a flood of connections: classify afresh rather than grow
            kind = self._classify_stream(piece)
            self._stream_kind[key] = kind
            if kind == "ws":
                self._stream_kind[(piece.connection, piece.dst, piece.dport)] = "ws"
                self.error(ErrorItem("unsupported", "websocket",
                                     "SIP over WebSocket (RFC 7118) not analysed", frame=piece.frame))
        if piece.gap:
            self.error(ErrorItem("truncated", "tcp", f"{piece.gap} bytes from {piece.src}:{piece.sport} to "
                                 f"{piece.dst}:{piece.dport} never captured before this frame",
                                 frame=piece.frame or None))
            if kind == "sip":
                # A fresh stream id makes the SIP analyser start over at the next start line
                # instead of reading the bytes after the hole as the rest of a cut message.
                if len(self._resync) >= MAX_STREAM_KINDS:
                    self._resync.clear()
                self._resync[key] = self._resync_next
                self._resync_next += 1
        alias = self._resync.get(key)
        if alias is not None:
            piece = StreamData(piece.frame, piece.ts, piece.src, piece.sport, piece.dst, piece.dport, piece.data,
                               alias, piece.gap)
        if kind == "sip":
            self.sip.on_stream(piece)
        elif kind == "tls":
            self.tls.on_stream(piece)
        elif kind == "stun":
            self.stun.on_stream(piece)

    @staticmethod
    def _classify_stream(piece: StreamData) -> str:
        d = piece.data
        if len(d) >= 3 and d[0] in (0x14, 0x15, 0x16, 0x17) and d[1] == 3:
            return "tls"  # TLS record header: content type, version 3.x (RFC 8446 §5.1)
        if len(d) >= 8 and d[0] < 0x40 and d[4:8] == MAGIC_COOKIE_BYTES:
            return "stun"
        if d[:4] == b"GET " and _WS_UPGRADE in d[:4096].lower():
            return "ws"
        return "sip"

    # -- chunks --------------------------------------------------------------------------------

    def feed_batch(self, batch: RecordBatch) -> None:
        n = len(batch)
        if not n:
            return
        self.packets += n
        lo, hi = float(batch.ts.min()), float(batch.ts.max())
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        fast, plain = fast_rows(batch)
        slow = np.ones(n, dtype=bool)
        feed_fast: Callable[[int, int], None] = nothing
        if fast is not None:
            slow[fast[0]] = False
            feed_fast = self._fast_udp(batch, fast)
        buf, offs, caps, origs, tss, lts = (batch.buf, batch.data_off, batch.caplen, batch.orig_len,
                                           batch.ts, batch.linktype)
        first = batch.first_frame
        slow_rows = np.flatnonzero(slow)
        frame = self._frame(batch, plain)
        if fast is None:
            for i in slow_rows.tolist():
                o, c = int(offs[i]), int(caps[i])
                frame(first + i, i, float(tss[i]), int(lts[i]), buf[o:o + c], c < int(origs[i]))
            return
        # The fast rows go to the media analyser in as few batches as possible, yet it must see
        # every datagram of a flow in capture order relative to what changes its view: an SDP
        # naming the flow's address, or a slow-path datagram. ``_flush_fast`` is called then.
        ctx = self._fast_ctx = FastContext(feed_fast, endpoint_keys(fast[1], fast[3]),
                                            endpoint_keys(fast[2], fast[4]))
        before = np.searchsorted(fast[0], slow_rows).tolist()
        # the slow rows' columns as Python values at once (not five numpy scalars per frame)
        cols = (slow_rows.tolist(), before, offs[slow_rows].tolist(), caps[slow_rows].tolist(),
                origs[slow_rows].tolist(), tss[slow_rows].tolist(), lts[slow_rows].tolist())
        for i, k, o, c, orig, t, lt in zip(*cols, strict=True):
            ctx.upto = k
            frame(first + i, i, t, lt, buf[o:o + c], c < orig)
        ctx.upto = len(fast[0])
        self._flush_fast()
        self._fast_ctx = None

    def _frame(self, batch: RecordBatch, plain: Rows | None) -> Callable[[int, int, float, int, bytes, bool], None]:
        """``frame(number, row, ts, linktype, data, truncated)`` for the chunk's per-frame rows: a
        plain IPv4/UDP row (``fast_rows``) goes to ``udp`` with the fields the kernel read, as
        the decoder would hand it on; any other frame is decoded."""
        decode = self.decoder.decode
        if plain is None:
            return lambda number, row, ts, linktype, data, truncated: decode(number, ts, linktype, data, truncated)
        rows, src, dst, sport, dport, poff, plen = (c.tolist() for c in plain)
        fields = dict(zip(rows, zip(src, sport, dst, dport, poff, plen, strict=True), strict=True))
        buf, name, udp = batch.buf, self._ipv4_name, self.udp

        def frame(number: int, row: int, ts: float, linktype: int, data: bytes, truncated: bool) -> None:
            f = fields.get(row)
            if f is None:
                decode(number, ts, linktype, data, truncated)
                return
            s, sp, d, dp, o, size = f
            udp(UdpPacket(number, ts, name(s), sp, name(d), dp, buf[o:o + size]))
        return frame

    def _flush_fast(self) -> None:
        ctx = self._fast_ctx
        if ctx is not None and ctx.upto > ctx.done:
            ctx.feed(ctx.done, ctx.upto)
            ctx.done = ctx.upto

    def _fast_udp(self, batch: RecordBatch, fast: tuple[np.ndarray, ...]) -> Callable[[int, int], None]:
        """Count the chunk's fast-lane flows; return ``feed(lo, hi)`` for runs of its rows."""
        rows, src, dst, sport, dport, poff, plen, head = fast
        ub = UdpBatch(batch.buf, rows + batch.first_frame, batch.ts[rows], src, sport, dst, dport, poff, plen, head)
        self._fast_flows(ub)
        if self.rtp is None:
            return nothing
        tap = self.dtmf.on_rows  # the rare telephone-event rows, before the media analyser sees them
        batch_api = self.rtp.on_udp_batch

        def feed_batch(lo: int, hi: int) -> None:
            tap(ub, lo, hi)
            batch_api(UdpBatch(ub.buf, ub.frame[lo:hi], ub.ts[lo:hi], ub.src[lo:hi], ub.sport[lo:hi],
                               ub.dst[lo:hi], ub.dport[lo:hi], ub.payload_off[lo:hi], ub.payload_len[lo:hi],
                               ub.head[lo:hi]))
        return feed_batch

    def _fast_flows(self, ub: UdpBatch) -> None:
        """Aggregate the chunk's fast-lane flows with numpy, then one dict update per flow.

        One stable sort by (src, dst, dport) puts each flow's rows together in frame order: its
        first and last rows are the ends of its stretch."""
        pk = ub.src.astype(np.uint64) << np.uint64(32) | ub.dst.astype(np.uint64)
        order = sort_by(pk, ub.dport)
        spk, sdport = pk[order], ub.dport[order]
        begins = np.ones(order.size, dtype=bool)
        begins[1:] = (spk[1:] != spk[:-1]) | (sdport[1:] != sdport[:-1])
        starts = np.flatnonzero(begins)
        ends = np.append(starts[1:], order.size)
        sizes = np.add.reduceat(np.asarray(ub.payload_len, dtype=np.int64)[order], starts).tolist()
        ts, frames = ub.ts, ub.frame
        add = self.flows.add_fast
        for p, port, fi, li, count, size in zip(spk[starts].tolist(), sdport[starts].tolist(),
                                                order[starts].tolist(), order[ends - 1].tolist(),
                                                (ends - starts).tolist(), sizes, strict=True):
            add(p >> 32, p & 0xFFFFFFFF, port, count, size, float(ts[fi]), float(ts[li]), int(frames[fi]))

    def add_capture(self, path: Path, progress: Callable[[int], None] | None = None) -> SourceOutcome:
        self.errors.source = path.name
        cf = CaptureFile(path, progress)
        frames_before = self.packets
        for batch in cf.batches():
            self.feed_batch(batch)
            del batch  # its buffer is freed before the reader reads the next chunk
        self.link_types.update(LINK_NAMES.get(lt, f"dlt-{lt}") for lt in cf.parser.link_types)
        usable = self.packets > frames_before or (cf.problem is None and cf.parser.format is not None)
        if cf.problem is not None and cf.problem.refused:
            usable = False  # a decompression bomb: what it held before the stop is no evidence
        if cf.problem is not None:
            self.errors.add(ErrorItem("file", "pcap", cf.problem.message, offset=cf.problem.offset,
                                      source=path.name))
        out = SourceOutcome(str(path), "capture", usable, cf.problem is not None,
                            cf.problem.message if cf.problem else None)
        self.outcomes.append(out)
        return out

    def add_trace_log(self, path: Path, progress: Callable[[int], None] | None = None) -> SourceOutcome:
        self.errors.source = path.name
        reader = TraceLogReader()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    if progress is not None:
                        progress(len(chunk))
                    self._trace_messages(reader.feed(chunk))
            self._trace_messages(reader.close())
        except OSError as exc:
            msg = f"{path} cannot be read: {exc.strerror or exc}"
            self.errors.add(ErrorItem("file", "trace", msg, source=path.name))
            out = SourceOutcome(str(path), "trace", reader.messages > 0, True, msg)
            self.outcomes.append(out)
            return out
        for item in reader.errors:
            self.errors.add(item)
        if reader.error_count > len(reader.errors):
            self.errors.counts["malformed"] += reader.error_count - len(reader.errors)
        damaged = any(e.kind in ("malformed", "truncated") for e in reader.errors)
        message = reader.errors[0].message if reader.errors else None
        if reader.messages == 0:
            # Nothing usable: the one line the user gets must say so (and why, when known).
            message = f"{path.name}: no SIP message blocks found" + (f"; {message}" if message else "")
            self.errors.add(ErrorItem("file", "trace", message, source=path.name))
        out = SourceOutcome(str(path), "trace", reader.messages > 0, damaged, message)
        self.outcomes.append(out)
        return out

    def add_trace_messages(self, messages: Iterable[Any]) -> None:
        """OSBiz trace messages already read (the live service tails the log itself)."""
        self._trace_messages(messages)

    def _trace_messages(self, messages: Iterable[Any]) -> None:
        for m in messages:
            self.packets += 1
            self.first_ts = m.ts if self.first_ts is None else min(self.first_ts, m.ts)
            self.last_ts = m.ts if self.last_ts is None else max(self.last_ts, m.ts)
            self.link_types.add("osbiz-trace")
            self.sip.on_message_bytes(m.index, m.ts, m.src, m.sport, m.dst, m.dport, "trace", m.data)

    # -- result --------------------------------------------------------------------------------

    def finish(self) -> AnalysisResult:
        # The chunk buffers' heap is free now: hand its pages back before the result is built
        # (Python puts the result's objects in arenas of their own, so without this the freed
        # heap and the result add up in the peak RSS).
        _trim_heap()
        # analysers' items carry no file name; with one input it is known
        self.errors.source = Path(self.outcomes[0].path).name if len(self.outcomes) == 1 else None
        for piece in self.tcp_streams.finish():
            self._stream(piece)
        self.decoder.finish()
        if self.flows.overflow:
            self.errors.add(ErrorItem("unsupported", "flow",
                                      f"flow table full: {self.flows.overflow} packets not counted per flow"))
        sip = self.sip.finish(self.last_ts)
        # the pipeline finishes once: the media analyser may drop each stream's state as it goes
        streams: tuple[RtpStreamStats, ...] = tuple(self.rtp.finish(release=True)) if self.rtp is not None else ()
        stun = tuple(self.stun.finish())
        tls = tuple(self.tls.finish(self.last_ts))
        if tls and self.decrypted:
            from collectors.tls.decrypt import mark_decrypted

            tls = mark_decrypted(tls, self.decrypted.values())
        streams, calls = associate(streams, sip.calls, sip.call_media)
        streams, calls = self.dtmf.attach(streams, calls)
        rtp_errors = self.rtp.errors if self.rtp is not None else []
        for analyser_errors in (sip.errors, rtp_errors, self.stun.errors, self.tls.errors):
            for e in analyser_errors:
                self.errors.add(e)
        # the media analyser keeps its first items only; count the rest as well
        unlisted = (self.rtp.error_count if self.rtp is not None else 0) - len(rtp_errors)
        if unlisted > 0:
            self.errors.counts["malformed"] += unlisted
        rtcp = tuple(self.rtp.finish_rtcp()) if self.rtp is not None else ()
        partial = any(o.damaged for o in self.outcomes)
        return AnalysisResult(
            sources=tuple(o.path for o in self.outcomes),
            packets=self.packets,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            partial=partial,
            sip_requests=dict(sip.sip_requests),
            sip_responses=dict(sip.sip_responses),
            sip_messages=sip.sip_messages,
            calls=calls,
            registrations=sip.registrations,
            keepalives=sip.keepalives,
            rtp_streams=streams,
            tls_flows=tls,
            stun=stun,
            flows=self.flows.result(),
            errors=self.errors.ordered([Path(o.path).name for o in self.outcomes]),
            kpis=dict(sip.kpis),
            link_types=tuple(sorted(self.link_types)),
            rtcp=rtcp,
            error_counts=dict(sorted(self.errors.counts.items())),
        )


def _trim_heap() -> None:
    """glibc returns the free pages of its heap to the OS (elsewhere: nothing)."""
    from collectors.allocator import release_free_heap  # only here: needed once, at the end

    release_free_heap()


#: RTP may start a little before the capture point sees the SDP that announced it (early media,
#: the answer crossing the first packets); announcements this much later still count.
SDP_LEAD_S = 2.0


def _announced_call(announcements: list[tuple[float, str]] | None, first_ts: float) -> str | None:
    """The call of the latest announcement made before ``first_ts`` (+ lead), else the first one."""
    if not announcements:
        return None
    before = [cid for ts, cid in announcements if ts <= first_ts + SDP_LEAD_S]
    return before[-1] if before else announcements[0][1]


def associate(streams: tuple[RtpStreamStats, ...], calls: tuple[CallInfo, ...],
              media: dict[str, Any]) -> tuple[tuple[RtpStreamStats, ...], tuple[CallInfo, ...]]:
    """Join RTP streams to calls by SDP-announced destination and judge one-way audio.

    ``media`` maps Call-ID → announced endpoints (objects with ``addr``, ``port``, ``ts``,
    ``sender``, ``direction``). The call whose SDP named the stream's destination address:port
    most recently before the stream began claims it: PBXs hand the same media port to call after
    call, and SDP read from a trace log may be fed after the capture's RTP, so the time decides,
    not the order of feeding. Only a stream no announcement explains keeps the analyser's tag.
    """
    by_dest: dict[tuple[str, int], list[tuple[float, str]]] = {}
    for call_id, eps in media.items():
        for ep in eps:
            by_dest.setdefault((ep.addr, ep.port), []).append((ep.ts, call_id))
    for announcements in by_dest.values():
        announcements.sort()
    out_streams = []
    members: dict[str, list[int]] = {}
    for i, s in enumerate(streams):
        cid = _announced_call(by_dest.get((s.dst, s.dst_port)), s.first_ts) or s.call_id
        if cid != s.call_id:
            s = dataclasses.replace(s, call_id=cid)
        out_streams.append(s)
        if cid is not None:
            members.setdefault(cid, []).append(i)
    announced = [dataclasses.replace(c, streams=tuple(members.get(c.call_id, ())),
                                     media=_sdp_media(media.get(c.call_id, ()))) for c in calls]
    announced = [_open_call_duration(c, [out_streams[i] for i in c.streams]) for c in announced]
    index = StreamIndex(out_streams)
    out_calls = []
    for c in announced:
        one_way = judge_call(c, out_streams, index=index) is not None
        # most calls keep the verdict they were built with: no copy of 29 fields for them
        out_calls.append(c if c.one_way_audio == one_way else dataclasses.replace(c, one_way_audio=one_way))
    return tuple(out_streams), tuple(out_calls)


def _sdp_media(endpoints: Iterable[Any]) -> tuple[SdpMedia, ...]:
    return tuple(SdpMedia(e.sender, e.addr, e.port, getattr(e, "media", "audio"), e.direction, e.ts,
                          getattr(e, "frame", 0)) for e in endpoints)


def _open_call_duration(c: CallInfo, streams: list[RtpStreamStats]) -> CallInfo:
    """An answered call still up at the end runs to its last packet, its RTP included: its SIP
    alone ends with the ACK, a few milliseconds after the 200 OK."""
    if c.state != "answered-open" or c.answer_ts is None:
        return c
    last = max((s.last_ts for s in streams if s.last_ts >= c.answer_ts), default=None)
    if last is None or c.duration_s is None or last - c.answer_ts <= c.duration_s:
        return c
    return dataclasses.replace(c, duration_s=round(last - c.answer_ts, 6))


def analyze(paths: Iterable[Path], progress: Callable[[int], None] | None = None,
            keep_messages: int = 20000) -> tuple[AnalysisResult, list[SourceOutcome]]:
    """Analyse captures and OSBiz trace logs together; returns the result and per-input outcomes."""
    pipe = Pipeline(keep_messages=keep_messages)
    for path in paths:
        if path.is_file() and looks_like_trace_log(path):
            pipe.add_trace_log(path, progress)
        else:
            pipe.add_capture(path, progress)
    return pipe.finish(), pipe.outcomes


def exit_code(outcomes: list[SourceOutcome]) -> int:
    """0 = every input complete, 1 = something damaged but something usable, 2 = nothing usable."""
    if not outcomes or not any(o.usable for o in outcomes):
        return 2
    return 1 if any(o.damaged or not o.usable for o in outcomes) else 0


def feed_decrypted_sip(pipe: Pipeline, capture: Path, keylog: Path, ports: Iterable[int] = ()) -> None:
    """Feed the SIP that tshark decrypts from ``capture`` with ``keylog`` into the SIP analyser.

    ``ports`` are the SIP/TLS server ports (e.g. the site's connector port) on top of 5061/65061;
    the server ports of the TLS connections seen in the capture are added too, except HTTPS (the
    connector's REST API is TLS but not SIP), so a lab or a moved connector port still decrypts.
    """
    from collectors.tls.decrypt import decrypt_sip, tls_ports

    observed = {p for p in pipe.tls.server_ports() if p != 443}
    for m in decrypt_sip(capture, keylog, tls_ports((), default=(5061, 65061, *ports, *observed))):
        pipe.sip.on_message_bytes(m.frame, m.ts, m.src, m.sport, m.dst, m.dport, "tls", m.data)
        pipe.decrypted.setdefault((m.src, m.sport, m.dst, m.dport), m)


def analyze_files(paths: Iterable[Path], keylog: Path | None = None,
                  progress: Callable[[int], None] | None = None, tls_ports: Iterable[int] = ()) -> AnalysisResult:
    """The one call for services and commands: captures + OSBiz trace logs (+ TLS key log) → result."""
    pipe = Pipeline()
    ports = tuple(tls_ports)
    for path in paths:
        if path.is_file() and looks_like_trace_log(path):
            pipe.add_trace_log(path, progress)
        else:
            pipe.add_capture(path, progress)
            if keylog is not None and path.is_file():
                feed_decrypted_sip(pipe, path, keylog, ports)
    return pipe.finish()
