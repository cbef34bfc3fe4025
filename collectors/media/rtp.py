"""RTP/RTCP stream statistics that equal Wireshark's RTP stream analysis.

The numbers follow ``ui/tap-rtp-analysis.c`` (``rtppacket_analyse``) and the stream table of
``tshark -q -z rtp,streams`` (tshark 4.0), so they can be checked against tshark packet by packet:

* A stream is (src addr, src port, dst addr, dst port, SSRC); payload-type changes stay in the
  same stream.
* expected = last sequence number + 65536·wraps − first sequence number + 1, where a wrap is
  counted when a packet (in timestamp order) has a lower sequence number than the *first* one;
  lost = expected − packets, negative with duplicates or sequence restarts.
* "In time" (tshark 4.0) means the RTP timestamp lies within the half of the 32-bit space that
  follows the stream's *first* timestamp (so a timestamp wrap is in time, a restart behind the
  first value is not). Out-of-time packets compute no delta/jitter and do not move the reference.
* jitter (RFC 3550 A.8 in ms): D = |arrival − (reference arrival + (nominal − reference nominal))|
  with nominal = (timestamp − first timestamp) mod 2³² / (clock/1000), J = (15·J + D)/16;
  clock/1000 is an *integer* division as in Wireshark (44.1 kHz → 44). The reference arrival
  moves with every in-time packet, the reference nominal time only with packets that have a
  clock — so after a telephone-event burst the next audio packet's D includes the burst.
  Only payload types with a known clock contribute: static types by the RFC 3551 table, dynamic
  types by the SDP rtpmap of the conversation; telephone-event has no clock (RFC 4733 timestamps
  stand still) and heuristic streams of a dynamic type have none either.
* max/min/mean delta and max/mean jitter skip the first packet, packets with the marker bit,
  comfort noise (PT 13/19) and the packet after comfort noise, and out-of-time packets; the mean
  is Wireshark's running mean over all packets so far (``(mean·(n−1) + x)/n``).

Detection: endpoints announced in SDP (``expect``) come first — both directions of an announced
``addr:port`` are RTP from that moment on, and ``port+1`` is RTCP. Other UDP is tried with a
heuristic at least as strict as Wireshark's ``rtp.heuristic_rtp`` (version 2, not RTCP's 72–76,
CSRC/extension/padding fit the datagram) plus: neither port below 1024 (DNS, NetBIOS, syslog …
are never guessed), a new heuristic stream must start with an assigned static (RFC 3551) or a
dynamic (96–127) payload type, and it only becomes a stream once a later packet of the same flow
and SSRC continues its sequence (+1…+100) — then the waiting packets are replayed into it. A guess
not confirmed within 4 packets or 10 s is dropped, so random UDP costs no memory. An address
that SDP announces with a non-RTP transport (T.38 ``udptl``) is never RTP.

Stream state lives in ``collectors.media.rtp_state``, payload types and clocks in ``.rtp_payload``,
RTCP summaries in ``.rtcp``, the batch lane (``on_udp_batch``, one compiled loop a chunk, equal
to the last bit) in ``.rtp_batch``. ``on_udp_fields`` skips the ``UdpPacket`` allocation; the
flow-classification cache is bounded. The per-packet path here stays the reference and does what
is rare in the batch lane: a heuristic stream's first packets, malformed headers, RTCP.
"""

from __future__ import annotations

import math

from collectors.capture.packets import Ipv4Names, UdpPacket
from collectors.media.rtcp import RtcpCollector
from collectors.media.rtp_batch import RtpBatchLane
from collectors.media.rtp_payload import (
    HEURISTIC,
    HEURISTIC_START_PT,
    OTHER,
    PT_CN,
    PT_CN_OLD,
    SDP_RTCP,
    SDP_RTP,
    Endpoint,
    Flow,
    heuristic_info,
)
from collectors.media.rtp_state import (
    F_LAST_TS,
    FLOAT_SLOTS,
    I_MAIN_PT,
    INT_SLOTS,
    INTERVAL,
    IV_BLOCK,
    M64,
    Packed,
    StateTable,
    Stream,
    StreamIndex,
    closed_intervals,
    pack_stream,
    unpack_stream,
)
from core.analysis import ErrorItem, RtcpReport, RtpStreamStats
from core.errors import ParseError
from core.media_quality import MosModel
from core.wire.rtp import parse_rtcp

_MAX_ERRORS = 1000  # malformed-item records kept; the rest are only counted
_MAX_CANDIDATES = 100_000  # unconfirmed heuristic streams kept at once (hostile captures)
_CANDIDATE_PACKETS = 4  # a guess not confirmed within this many packets is dropped
_CANDIDATE_AGE_S = 10.0  # … or within this much capture time
_MAX_FLOW_CACHE = 50_000  # classified flows remembered (a cache; see _classify)
_WINDOW_MASK = (1 << 128) - 1  # duplicate detection window: the last 128 sequence numbers


class RtpAnalyzer(RtpBatchLane):
    """Per-stream RTP statistics (Wireshark-equal) plus RTCP report summaries.

    Contract for the pipeline (``collectors.analyze``):

    * ``expect(addr, port, payload_map, call_id)`` for every SDP media line as soon as the SIP
      message carrying it is seen (``payload_map`` is ``{pt: (encoding, clock_rate)}``); a new
      SDP for the same ``addr:port`` replaces the old one (as a re-INVITE does in Wireshark).
    * ``on_udp(pkt)`` / ``on_udp_fields(...)`` for every UDP datagram no other analyser claimed;
      returns True when it was consumed as RTP or RTCP. Packets must come in capture order.
    * ``on_udp_batch(batch)`` instead, for a chunk of Ethernet/IPv4 datagrams: the same numbers
      as one ``on_udp_fields`` per row, at about 0.4 µs a packet. Order only matters within a
      flow: an SDP must be announced before the batch that holds the packets after it.
    * ``finish()`` → the RTP streams, in order of their first packet; ``finish_rtcp()`` → RTCP
      summaries; ``errors`` → malformed RTP/RTCP on announced endpoints (capped at 1000 items,
      ``error_count`` has the total).
    """

    def __init__(
        self, interval_s: float = 10.0, mos_model: MosModel | None = None, idle_s: float = 120.0
    ) -> None:
        if not interval_s > 0 or not idle_s > 0:
            raise ValueError("interval_s and idle_s must be positive")
        self.interval_s = interval_s
        # streams silent for idle_s (capture time) are packed to save memory; exact on resume
        self.idle_s = idle_s
        self._idle: dict[tuple[str, int, str, int, int], Packed] = {}
        self._evicted_at = 0.0
        self._since_evict = 0
        # no packing while a batch runs: its deferred runs hold live stream objects
        self._in_batch = False
        self.mos_model = mos_model or MosModel()
        # value None: announced with a non-RTP transport (T.38 UDPTL, …)
        self._endpoints: dict[tuple[str, int], Endpoint | None] = {}
        self._rtcp_endpoints: dict[tuple[str, int], Endpoint | None] = {}
        self._flows: dict[tuple[str, int, str, int], Flow] = {}
        # endpoint → flow keys classified with it, so a new SDP re-classifies only those flows
        self._flows_by_endpoint: dict[tuple[str, int], list[tuple[str, int, str, int]]] = {}
        self._streams: dict[tuple[str, int, str, int, int], Stream] = {}
        # heuristic guesses: (flow, SSRC) → up to 4 (frame, ts, first 12 bytes) until a packet
        # continues the sequence (+1..+100); only then a stream is made and they are replayed
        self._candidates: dict[tuple[str, int, str, int, int], list[tuple[int, float, bytes]]] = {}
        self._ssrc_clock: dict[int, int] = {}
        self._name = Ipv4Names()  # IPv4 as integer → dotted quad (batch path)
        self._rtcp = RtcpCollector()
        self._table = StateTable()
        # bumped whenever a flow's classification is dropped: the batch path trusts its stream
        # index (``StreamIndex``) only for rows resolved in the current epoch
        self._epoch = 0
        self._index = StreamIndex()
        self.errors: list[ErrorItem] = []
        self.error_count = 0

    # -- SDP correlation ---------------------------------------------------------------------
    def expect(
        self,
        addr: str,
        port: int,
        payload_map: dict[int, tuple[str, int]],
        call_id: str | None,
        rtp: bool | None = None,
    ) -> None:
        """Announce an SDP media endpoint; RTP to/from ``addr:port`` and RTCP on ``port+1``.

        ``rtp=False`` is an m= line whose transport is not RTP (``image … udptl`` T.38,
        ``application``): Wireshark then hands that address to the other protocol, so packets
        *to* it stop counting as RTP (T.38 UDPTL can look like RTP version 2). When the caller
        does not say (``None``), an empty ``payload_map`` means not RTP: a T.38 line's formats
        are not payload types, while every RTP line lists at least one.
        """
        if not 0 < port < 65535:
            return  # port 0 = stream disabled (RFC 3264 §6); 65535 has no RTCP neighbour
        if rtp is None:
            rtp = bool(payload_map)
        endpoint = Endpoint(payload_map, call_id) if rtp else None
        self._endpoints[(addr, port)] = endpoint
        self._rtcp_endpoints[(addr, port + 1)] = endpoint
        for ep in ((addr, port), (addr, port + 1)):
            for key in self._flows_by_endpoint.pop(ep, ()):
                dropped = self._flows.pop(key, None)  # re-classified lazily on its next packet
                if dropped is not None:
                    self._table.forget(dropped)

    # -- packets -----------------------------------------------------------------------------
    def on_udp(self, pkt: UdpPacket) -> bool:
        """Offer one UDP datagram; True if it was RTP or RTCP."""
        return self.on_udp_fields(pkt.frame, pkt.ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.payload)

    def on_udp_fields(
        self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes
    ) -> bool:
        """Same as ``on_udp`` without building a ``UdpPacket`` (the hot path of big captures)."""
        self._since_evict += 1
        if self._since_evict >= 65536 and not self._in_batch:
            self._evict_idle(ts)
        n = len(payload)
        if n < 8 or payload[0] >> 6 != 2:
            return False
        key = (src, sport, dst, dport)
        flow = self._flows.get(key)
        if flow is None:
            flow = self._classify(key)
        if flow.kind == OTHER:
            return False
        b1 = payload[1]
        if flow.kind == SDP_RTCP or 192 <= b1 <= 223:
            # RTCP port, or RTP/RTCP multiplexing (RFC 5761: marker + PT 64..95 is RTCP)
            if flow.kind == HEURISTIC and not (200 <= b1 <= 201):
                return False  # heuristic RTCP must start with SR or RR (RFC 3550 §6.1)
            return self._on_rtcp(flow, frame, ts, src, sport, dst, dport, payload)
        if n < 12:
            self._malformed(flow, frame, f"RTP datagram of {n} bytes is shorter than the header")
            return False
        b0 = payload[0]
        # header length checks (CSRCs, extension, padding) as the RTP dissector does them
        hlen = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            if hlen + 4 > n:
                self._malformed(flow, frame, "RTP header extension runs past the datagram")
                return False
            hlen += 4 + 4 * ((payload[hlen + 2] << 8) | payload[hlen + 3])
        if hlen > n:
            self._malformed(flow, frame, "RTP header (CSRC list/extension) runs past the datagram")
            return False
        if b0 & 0x20:
            pad = payload[-1]
            if pad == 0 or pad > n - hlen:
                self._malformed(flow, frame, f"RTP padding count {pad} does not fit the payload")
                return False
        pt = b1 & 0x7F
        ssrc = int.from_bytes(payload[8:12], "big")
        skey = (src, sport, dst, dport, ssrc)
        stream = self._streams.get(skey)
        endpoint = flow.endpoint
        if stream is None and skey in self._idle:
            stream = self._streams[skey] = unpack_stream(skey, self._idle.pop(skey))
        elif stream is not None and stream.slot >= 0:
            self._pull(stream)
        if stream is None:
            if flow.kind == HEURISTIC:
                return self._candidate(skey, frame, ts, payload, pt)
            stream = self._streams[skey] = Stream(src, sport, dst, dport, ssrc, endpoint, "sdp")
        elif flow.kind == HEURISTIC and 72 <= pt <= 76:
            return False
        self._feed(stream, endpoint, frame, ts, payload, pt)
        return True

    def _candidate(
        self, skey: tuple[str, int, str, int, int], frame: int, ts: float, payload: bytes, pt: int
    ) -> bool:
        """A packet of a flow/SSRC not yet believed to be RTP (heuristic detection)."""
        pending = self._candidates.get(skey)
        if pending is None:
            if pt not in HEURISTIC_START_PT:
                return False
            cands = self._candidates
            while cands:  # drop guesses that did not confirm in time (insertion order = age)
                oldest = next(iter(cands))
                if cands[oldest][0][1] >= ts - _CANDIDATE_AGE_S and len(cands) < _MAX_CANDIDATES:
                    break
                del cands[oldest]
            cands[skey] = [(frame, ts, bytes(payload[:12]))]
            return True
        if 72 <= pt <= 76:
            return False
        last = pending[-1][2]
        step = (((payload[2] << 8) | payload[3]) - ((last[2] << 8) | last[3])) & 0xFFFF
        if not 0 < step <= 100:
            if len(pending) < _CANDIDATE_PACKETS:
                pending.append((frame, ts, bytes(payload[:12])))
            else:
                del self._candidates[skey]
            return True
        del self._candidates[skey]
        src, sport, dst, dport, ssrc = skey
        stream = self._streams[skey] = Stream(src, sport, dst, dport, ssrc, None, "heuristic")
        for f, t, hdr in pending:
            self._feed(stream, None, f, t, hdr, hdr[1] & 0x7F)
        self._feed(stream, None, frame, ts, payload, pt)
        return True

    def _feed(
        self, stream: Stream, endpoint: Endpoint | None, frame: int, ts: float, payload: bytes, pt: int
    ) -> None:
        """Account one RTP packet (header already checked) to its stream."""
        b1 = payload[1]
        ssrc = stream.ssrc
        rtp_ts = int.from_bytes(payload[4:8], "big")
        seq = (payload[2] << 8) | payload[3]
        if endpoint is not None:
            clock, is_event, name = endpoint.pt_info.get(pt) or endpoint.info(pt)
        else:
            clock, is_event, name = heuristic_info(pt)
        if is_event:
            stream.events += 1
        if stream.main_pt is None and pt != PT_CN and pt != PT_CN_OLD and not is_event:
            stream.main_pt = pt
            stream.codec = name
            if clock:
                stream.clock_rate = clock
                self._ssrc_clock[ssrc] = clock
        if stream.total_nr == 0:
            stream.first(frame, ts, seq, rtp_ts, pt, clock)
            if not stream.codec:
                stream.codec = name
            return
        self._analyse(stream, frame, ts, seq, rtp_ts, pt, bool(b1 & 0x80), clock)

    @staticmethod
    def _info(endpoint: Endpoint | None, pt: int) -> tuple[int, bool, str]:
        return endpoint.info(pt) if endpoint is not None else heuristic_info(pt)

    def _push(self, s: Stream) -> None:
        """Move a stream's numbers from its attributes into a row of the kernel's tables."""
        slot = self._table.take(s)
        ints = [getattr(s, name) for name in INT_SLOTS]
        ints[I_MAIN_PT] = -1 if s.main_pt is None else s.main_pt
        mask = s.dup_mask
        lo, hi = mask & M64, mask >> 64
        ints += [lo - (1 << 64) if lo >> 63 else lo, hi - (1 << 64) if hi >> 63 else hi]
        self._table.ints[slot] = [int(v) for v in ints]
        self._table.floats[slot] = [getattr(s, name) for name in FLOAT_SLOTS]

    def _pull(self, s: Stream) -> None:
        """Move a stream's numbers from the kernel's tables back into its attributes."""
        table = self._table
        ints = table.ints[s.slot].tolist()
        for name, v in zip(INT_SLOTS, ints, strict=False):
            setattr(s, name, v)
        s.main_pt = None if s.main_pt == -1 else s.main_pt
        s.under = bool(s.under)
        s.dup_mask = (ints[-2] & M64) | ((ints[-1] & M64) << 64)
        for name, v in zip(FLOAT_SLOTS, table.floats[s.slot].tolist(), strict=True):
            setattr(s, name, v)
        table.release(s)

    def _evict_idle(self, now: float) -> None:
        """Pack streams silent for ``idle_s`` of capture time (checked every idle_s/2)."""
        self._since_evict = 0
        if now - self._evicted_at < self.idle_s / 2:
            return
        self._evicted_at = now
        horizon = now - self.idle_s
        last_ts = self._table.floats[:, F_LAST_TS]
        for key, s in list(self._streams.items()):
            if (s.last_ts if s.slot < 0 else last_ts[s.slot]) < horizon:
                if s.slot >= 0:
                    self._pull(s)
                self._idle[key] = pack_stream(s)
                del self._streams[key]
                fkey = key[:4]
                dropped = self._flows.pop(fkey, None)
                if dropped is not None:  # re-classified if it comes back
                    self._table.forget(dropped)
                    for ep in (fkey[:2], fkey[2:]):
                        keys = self._flows_by_endpoint.get(ep)
                        if keys is not None:
                            keys[:] = [k for k in keys if k != fkey]
                            if not keys:
                                del self._flows_by_endpoint[ep]

    def _classify(self, key: tuple[str, int, str, int]) -> Flow:
        # Like Wireshark's conversation lookup: the destination's announcement wins over the
        # source's, and an address announced for another protocol is not RTP.
        src, sport, dst, dport = key
        kind = HEURISTIC
        ep: Endpoint | None = None
        for table, found_kind in ((self._endpoints, SDP_RTP), (self._rtcp_endpoints, SDP_RTCP)):
            for addr in ((dst, dport), (src, sport)):
                if addr in table:
                    ep = table[addr]
                    kind = found_kind if ep is not None else OTHER
                    break
            if kind != HEURISTIC:
                break
        if kind == HEURISTIC and (sport < 1024 or dport < 1024):
            kind = OTHER  # well-known service ports (DNS, NetBIOS, syslog …) are never guessed RTP
        flow = Flow(kind, ep)
        if len(self._flows) >= _MAX_FLOW_CACHE:
            # a cache, not state: classification is a pure function of the announced endpoints,
            # so dropping it only costs re-classification (bounds memory on port-scan captures)
            self._flows.clear()
            self._epoch += 1
            self._flows_by_endpoint.clear()
        self._flows[key] = flow
        by_ep = self._flows_by_endpoint
        by_ep.setdefault((src, sport), []).append(key)
        by_ep.setdefault((dst, dport), []).append(key)
        return flow

    def _malformed(self, flow: Flow, frame: int, message: str) -> None:
        if flow.kind == HEURISTIC:
            return  # not RTP after all: only announced endpoints make a malformed-RTP report
        self.error_count += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(ErrorItem("malformed", "rtp", message, frame=frame))

    def _analyse(
        self, s: Stream, frame: int, ts: float, seq: int, rtp_ts: int, pt: int, marker: bool, clock: int
    ) -> None:
        now = ts * 1000.0
        s.last_frame = frame
        s.last_ts = ts
        # "in time": within half the 32-bit timestamp space after the stream's first timestamp
        nominal_units = (rtp_ts - s.first_timestamp) & 0xFFFFFFFF
        in_time = nominal_units < 0x80000000
        # sequence wrap counting relative to the first sequence number (tap-rtp-analysis.c)
        if in_time:
            if not s.under and (seq < s.start_seq or (seq == 0 and s.stop_seq == 65535)):
                s.cycles += 1
                s.under = True
            elif seq > s.start_seq and s.under:
                s.under = False
        last = s.seq_num
        if in_time and (last + 1 == seq or (last == 65535 and seq == 0)):
            s.seq_num = seq
        elif in_time and (last + 1 < seq or last - seq > 0xFF00):
            s.seq_num = seq
            s.sequence += 1
        elif last + 1 > seq:
            s.sequence += 1
        regular = in_time and not marker and pt != PT_CN and pt != PT_CN_OLD
        if s.pt == PT_CN or s.pt == PT_CN_OLD:
            regular = False
        s.pt = pt
        jitter = 0.0
        if in_time:
            # delta and jitter are only computed for in-time packets; the reference arrival
            # ``time`` moves with every in-time packet, the reference nominal time only with
            # packets that have a clock (so a telephone-event burst shifts the next diff).
            s.delta = now - s.time
            if clock:
                s.clock_rate = clock
                nominal = nominal_units / (clock // 1000)
                jitter = (15.0 * s.jitter + abs(now - (s.time + nominal - s.last_nominal))) / 16.0
                s.jitter = jitter
                s.last_nominal = nominal
            s.time = now
        n = s.total_nr
        if regular:
            delta = s.delta
            if delta > s.max_delta:
                s.max_delta = delta
            if s.min_delta == -1.0 or delta < s.min_delta:
                s.min_delta = delta
            s.mean_delta = (s.mean_delta * (n - 1) + delta) / n
            if clock:
                if s.jitter > s.max_jitter:
                    s.max_jitter = s.jitter
                s.mean_jitter = (s.mean_jitter * (n - 1) + jitter) / n
                if s.min_jitter == -1.0 or s.jitter < s.min_jitter:
                    s.min_jitter = s.jitter
        s.stop_seq = seq
        s.total_nr = n + 1
        # our own extras: the current 10-s interval …
        if ts - s.cur_start >= self.interval_s:
            self._close_interval(s)
            # intervals are aligned to the stream's first packet; empty ones are skipped
            s.cur_start = s.first_ts + int((ts - s.first_ts) / self.interval_s) * self.interval_s
        s.cur_packets += 1
        if regular and clock:
            s.cur_jit_sum += jitter
            s.cur_jit_n += 1
            if jitter > s.cur_jit_max:
                s.cur_jit_max = jitter
        # … and duplicates/expected from our extended sequence number (the usual +1 inline)
        d = (seq - s.hi_seq) & 0xFFFF
        if d == 1:
            s.hi_seq += 1
            s.cur_exp += 1
            s.dup_mask = ((s.dup_mask << 1) | 1) & _WINDOW_MASK
            s.bad_seq = -1
        else:
            self._sequence_extras(s, seq, d)

    def _sequence_extras(self, s: Stream, seq: int, d: int) -> None:
        """Duplicates and interval loss from our own extended sequence number (RFC 3550 A.1
        style: jumps over 3000 or back over 128 need a second, sequential packet before they are
        believed — then they count as a restart, not as loss); ``d`` = seq − highest mod 2¹⁶."""
        hi = s.hi_seq
        if d == 0:
            s.duplicates += 1
            return
        back = 0x10000 - d
        if d <= 3000 or (d < 0x8000 and s.bad_seq == seq):
            if d > 3000:  # confirmed restart ahead: this packet and the unconfirmed one
                s.cur_exp += 2
                s.dup_mask = 1
            else:
                s.cur_exp += d
                s.dup_mask = ((s.dup_mask << d) | 1) & _WINDOW_MASK
            s.hi_seq = hi + d
            s.bad_seq = -1
        elif back < 128:
            bit = 1 << back
            if s.dup_mask & bit:
                s.duplicates += 1
            else:
                s.dup_mask |= bit
        elif s.bad_seq == seq:  # confirmed restart behind
            s.hi_seq = hi - back
            s.cur_exp += 2
            s.dup_mask = 1
            s.bad_seq = -1
        else:
            s.bad_seq = (seq + 1) & 0xFFFF

    def _close_interval(self, s: Stream) -> None:
        if s.cur_packets == 0:
            return
        self._store_interval(s, s.codec, s.cur_start, s.cur_packets, s.cur_exp, s.cur_jit_sum, s.cur_jit_n,
                             s.cur_jit_max)
        s.cur_packets = s.cur_exp = s.cur_jit_n = 0
        s.cur_jit_sum = s.cur_jit_max = 0.0

    def _store_interval(self, s: Stream, codec: str, start: float, packets: int, exp: int, jit_sum: float,
                        jit_n: int, jit_max: float) -> None:
        """Append one closed 10-s interval (with its MOS for ``codec``) to the stream's blocks."""
        lost = exp - packets
        mean_j = jit_sum / jit_n if jit_n else 0.0
        loss_pct = max(lost, 0) * 100.0 / exp if exp > 0 else 0.0
        mos = self.mos_model.mos(codec, loss_pct, mean_j) if exp > 0 else None
        record = INTERVAL.pack(start, packets, exp, lost, mean_j, jit_max, math.nan if mos is None else mos)
        blocks = s.intervals
        if blocks and len(blocks[-1]) < IV_BLOCK:
            blocks[-1] += record
        else:
            blocks.append(record)

    # -- RTCP ----------------------------------------------------------------------------------
    def _on_rtcp(
        self, flow: Flow, frame: int, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes
    ) -> bool:
        try:
            packets = parse_rtcp(payload)
        except ParseError as exc:
            if flow.kind == HEURISTIC:
                return False
            self.error_count += 1
            if len(self.errors) < _MAX_ERRORS:
                self.errors.append(ErrorItem("malformed", "rtcp", str(exc), frame=frame, offset=exc.offset))
            return True  # it was on an RTCP endpoint; consumed, reported as malformed
        call_id = flow.endpoint.call_id if flow.endpoint else None
        self._rtcp.add(frame, ts, src, sport, dst, dport, packets, call_id, self._clock_of_ssrc)
        return True

    def _clock_of_ssrc(self, ssrc: int) -> int:
        # the telephony default when the reported source is not in the capture
        return self._ssrc_clock.get(ssrc, 8000)

    # -- results -------------------------------------------------------------------------------
    def finish(self, *, release: bool = False) -> tuple[RtpStreamStats, ...]:
        """Every RTP stream with all ``RtpStreamStats`` fields, in order of first packet.

        ``release``: a last call — each stream's state is dropped as soon as its result is built,
        so the two never coexist for all streams (on a long capture the results' 10-s intervals
        are the bulk of the end-of-run memory). Packets and later calls see no streams."""
        out: list[RtpStreamStats] = []
        streams, idle = self._streams, self._idle
        if release:
            self._streams, self._idle = {}, {}
            self._epoch += 1
            self._flows.clear()
            self._flows_by_endpoint.clear()
        for key in list(streams):
            s = streams.pop(key) if release else streams[key]
            if s.slot >= 0:
                self._pull(s)
            if s.total_nr:
                out.append(self._stats(s))
        for key in list(idle):
            s = unpack_stream(key, idle.pop(key) if release else idle[key])
            out.append(self._stats(s))
            if not release:
                idle[key] = pack_stream(s)  # the closed interval stays closed on a second call
        out.sort(key=lambda st: st.first_frame)
        return tuple(out)

    def _stats(self, s: Stream) -> RtpStreamStats:
        self._close_interval(s)
        expected = s.stop_seq + s.cycles * 65536 - s.start_seq + 1
        lost = expected - s.total_nr
        loss_pct = lost * 100.0 / expected if expected else 0.0
        pt = s.main_pt if s.main_pt is not None else s.first_pt
        mos = mos_note = None
        if expected > 0:
            mos = self.mos_model.mos(s.codec, max(loss_pct, 0.0), s.mean_jitter)
            mos_note = self.mos_model.unavailable(s.codec, max(loss_pct, 0.0))
        return RtpStreamStats(
            src=s.src, src_port=s.sport, dst=s.dst, dst_port=s.dport, ssrc=s.ssrc,
            payload_type=pt, codec=s.codec, clock_rate=s.clock_rate,
            packets=s.total_nr, expected=expected, lost=lost, loss_pct=round(loss_pct, 3),
            sequence_errors=s.sequence, duplicates=s.duplicates,
            min_delta_ms=max(s.min_delta, 0.0), mean_delta_ms=s.mean_delta, max_delta_ms=s.max_delta,
            mean_jitter_ms=s.mean_jitter, max_jitter_ms=s.max_jitter, mos=mos,
            first_ts=s.first_ts, last_ts=s.last_ts, first_frame=s.first_frame, last_frame=s.last_frame,
            call_id=s.call_id, detected_by=s.detected_by, events=s.events, intervals=closed_intervals(s.intervals),
            mos_note=mos_note,
        )

    def finish_rtcp(self) -> tuple[RtcpReport, ...]:
        """One summary per (RTCP flow, sender SSRC, reported source SSRC), in order of appearance."""
        return self._rtcp.results()
