"""The batch lane of the RTP analyser: a whole chunk of IPv4/UDP datagrams at a time.

``on_udp_batch`` groups a chunk's RTP-like rows by stream and runs every stream's rows through one
compiled loop (``collectors._kernels.rtp_rows``) over the numeric state tables of
``collectors.media.rtp_state``: the statements of the per-packet path (``RtpAnalyzer._feed`` /
``_analyse`` / ``_sequence_extras``) in the same order, so the numbers are equal to the last bit.
Rows the kernel does not take (a heuristic stream's first packets, malformed headers, RTCP) go
through the per-packet path, which stays the reference. ``RtpAnalyzer`` inherits this lane; the
attributes and methods below are the analyser's, named here for the type checker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from collectors.capture.packets import Ipv4Names, UdpBatch
from collectors.capture.reader import byte_rows
from collectors.kernels import kernels as _kernels  # None: the Python walks below run
from collectors.media.rtp_payload import HEURISTIC, OTHER, SDP_RTCP, Endpoint, Flow
from collectors.media.rtp_state import (
    I_FIRST_PT,
    I_MAIN_PT,
    I_TOTAL_NR,
    Packed,
    StateTable,
    Stream,
    StreamIndex,
    unpack_stream,
)


class RtpBatchLane:
    """``on_udp_batch`` and its kernel runs, mixed into ``RtpAnalyzer``."""

    interval_s: float
    _idle: dict[tuple[str, int, str, int, int], Packed]
    _in_batch: bool
    _flows: dict[tuple[str, int, str, int], Flow]
    _streams: dict[tuple[str, int, str, int, int], Stream]
    _ssrc_clock: dict[int, int]
    _name: Ipv4Names
    _table: StateTable
    _epoch: int
    _index: StreamIndex

    if TYPE_CHECKING:
        def on_udp_fields(self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int,
                          payload: bytes) -> bool: ...
        def _classify(self, key: tuple[str, int, str, int]) -> Flow: ...
        def _evict_idle(self, now: float) -> None: ...
        def _push(self, s: Stream) -> None: ...
        def _store_interval(self, s: Stream, codec: str, start: float, packets: int, exp: int,
                            jit_sum: float, jit_n: int, jit_max: float) -> None: ...
        @staticmethod
        def _info(endpoint: Endpoint | None, pt: int) -> tuple[int, bool, str]: ...

    def on_udp_batch(self, batch: UdpBatch) -> None:
        """Offer a chunk of IPv4/UDP datagrams (frame order) at once; see ``_batch``."""
        self._in_batch = True
        try:
            self._batch(batch)
        finally:
            self._in_batch = False
        if len(batch):
            self._evict_idle(float(np.max(batch.ts)))

    def _batch(self, batch: UdpBatch) -> None:
        """Offer a chunk of IPv4/UDP datagrams (frame order) at once; the same results as one
        ``on_udp_fields`` call per row, whatever the traffic looks like.

        The RTP-like rows go through the compiled kernel (``collectors._kernels.rtp_rows``) in
        one call, in frame order: the per-packet statements, row by row, on the streams' state
        tables, each row's stream found by the stream index. What the kernel does not do stays
        per packet or per stream: a flow's classification and a new heuristic stream's
        confirmation (its first packets), malformed rows (error items), RTCP, naming the codec
        once a stream's main payload type is known, and the MOS of closed intervals. Without the
        compiled kernel (a source tree that was not installed) every row takes the per-packet
        path."""
        n = len(batch)
        if n == 0:
            return
        a = np.frombuffer(batch.buf, dtype=np.uint8)
        off = np.asarray(batch.payload_off, dtype=np.int64)
        plen = np.asarray(batch.payload_len, dtype=np.int64)
        ok = (plen >= 12) & (off >= 0) & (off + plen <= a.size)
        if a.size < 12:  # rows that cannot be RTP read a dummy header at offset 0
            a = np.zeros(12, dtype=np.uint8)
        # every row's 12-byte fixed header (rows that cannot be RTP read the dummy at offset 0;
        # rows the batch brings its header for are not used when they cannot be RTP)
        hdr = batch.head if batch.head is not None else byte_rows(a, np.where(ok, off, 0), 12)
        b1 = hdr[:, 1].astype(np.int64)
        src = np.asarray(batch.src, dtype=np.int64)
        dst = np.asarray(batch.dst, dtype=np.int64)
        sport = np.asarray(batch.sport, dtype=np.int64)
        dport = np.asarray(batch.dport, dtype=np.int64)
        frames = np.asarray(batch.frame, dtype=np.int64)
        ts = np.asarray(batch.ts, dtype=np.float64)
        buf = batch.buf
        fields = self.on_udp_fields
        name = self._name

        def slow(r: int) -> None:
            o = int(off[r])
            fields(int(frames[r]), float(ts[r]), name(int(src[r])), int(sport[r]),
                   name(int(dst[r])), int(dport[r]), buf[o:o + int(plen[r])])

        # RTP-like rows first; RTCP-range (RFC 5761: second octet 192..223) and short rows after,
        # so RTCP jitter is converted with the clock of a stream first seen in this same batch
        rtp_like = ok & ((b1 < 192) | (b1 > 223))
        if _kernels is None:
            for r in np.flatnonzero(rtp_like).tolist():
                slow(r)
        else:
            late = self._kernel_batch(a, hdr, b1, off, plen, src, dst, sport, dport, frames, ts,
                                      np.flatnonzero(rtp_like), slow)
            for r in late:
                slow(r)
        for r in np.flatnonzero(~rtp_like).tolist():
            slow(r)

    def _kernel_batch(
        self, a: np.ndarray, hdr: np.ndarray, b1: np.ndarray, off: np.ndarray, plen: np.ndarray,
        src: np.ndarray, dst: np.ndarray, sport: np.ndarray, dport: np.ndarray, frames: np.ndarray,
        ts: np.ndarray, rows: np.ndarray, slow: Callable[[int], None],
    ) -> list[int]:
        """The RTP-like ``rows`` of a batch through the kernel, in frame order; returns the rows
        of RTCP endpoints (for the per-packet path once the RTP is done).

        Each row's stream is found in the stream index (``StreamIndex``); only rows of streams
        the index does not vouch for (new, re-classified) are resolved in Python, once per
        stream and batch (``_resolve``)."""
        assert _kernels is not None
        if not rows.size:
            return []
        # the header checks of ``on_udp_fields`` (version, CSRC list, extension, padding): a row
        # that fails them leaves the streams alone (the per-packet path reports it, if at all)
        b0 = hdr[:, 0].astype(np.int64)
        hlen = 12 + 4 * (b0 & 0x0F)
        good = ((b0 >> 6) == 2) & (hlen <= plen)
        ext = np.flatnonzero(good & ((b0 & 0x10) != 0))
        if ext.size:
            fits = hlen[ext] + 4 <= plen[ext]
            at = off[ext] + np.where(fits, hlen[ext], 0)
            hlen[ext] += 4 + 4 * ((a[at + 2].astype(np.int64) << 8) | a[at + 3])
            good[ext] = fits & (hlen[ext] <= plen[ext])
        pad = np.flatnonzero(good & ((b0 & 0x20) != 0))
        if pad.size:
            count = a[off[pad] + plen[pad] - 1].astype(np.int64)
            good[pad] = (count > 0) & (count <= plen[pad] - hlen[pad])
        ssrc = hdr[:, 8:12].copy().view(">u4").reshape(-1).astype(np.uint64)
        key_sd = ((src << 32) | dst)[rows].astype(np.uint64)
        key_ps = ((((sport << 16) | dport).astype(np.uint64) << np.uint64(32)) | ssrc)[rows]
        table = self._table
        slot = self._index.lookup(table, self._epoch, key_sd, key_ps) if len(table.owner) else \
            np.full(len(rows), -1, dtype=np.int64)
        pt = b1[rows] & 0x7F
        g = good[rows]
        known = np.flatnonzero(slot >= 0)
        if known.size:
            ks = slot[known]
            # rows of known streams the per-packet path would not count: malformed headers (an
            # error item on an announced endpoint) and, on heuristic flows, RTCP's types 72..76
            heur = table.heur[ks]
            drop = ~g[known] | (heur & (pt[known] >= 72) & (pt[known] <= 76))
            if drop.any():
                for r in rows[known[drop & ~heur & ~g[known]]].tolist():
                    slow(r)
                slot[known[drop]] = -2
        late: list[int] = []
        if (slot == -1).any():
            late = self._resolve(np.flatnonzero(slot == -1), rows, key_sd, key_ps, g, pt, slot, slow)
        self._kernel_run(slot, rows, pt, hdr, frames, ts)
        return late

    def _resolve(self, unknown: np.ndarray, rows: np.ndarray, key_sd: np.ndarray, key_ps: np.ndarray,
                 good: np.ndarray, pt: np.ndarray, slot: np.ndarray, slow: Callable[[int], None]) -> list[int]:
        """Resolve the streams of the ``unknown`` positions (of ``rows``) one by one, in the order
        of their first row: classify the flow, confirm a heuristic stream packet by packet, start
        a stream, report malformed rows; then set ``slot`` for the rows the kernel takes (-2 for
        the others) and enter the stream in the index. Returns the rows of RTCP endpoints, stream
        by stream in key order (as the per-stream grouping always handed them on)."""
        table = self._table
        name = self._name
        sd, ps = key_sd[unknown], key_ps[unknown]
        # each stream's positions together, in frame order: sorted by a hash of the key whose low
        # bits are the position, so every sort key is unique and the fast sort is a stable one
        m = len(unknown)
        low = np.uint64(max(m.bit_length(), 1))
        mix = (sd * np.uint64(0x9E3779B97F4A7C15)) ^ (ps * np.uint64(0xC2B2AE3D27D4EB4F))
        sub = np.argsort((mix >> low << low) | np.arange(m, dtype=np.uint64))
        sd, ps = sd[sub], ps[sub]
        change = np.ones(m, dtype=bool)
        change[1:] = (sd[1:] != sd[:-1]) | (ps[1:] != ps[:-1])
        begin = np.flatnonzero(change)
        ends = np.append(begin[1:], m)
        first_pos = unknown[sub[begin]]
        rtcp: list[tuple[int, int, list[int]]] = []
        for k in np.argsort(first_pos).tolist():  # streams in the order of their first row
            at = unknown[sub[begin[k]:ends[k]]]  # this stream's positions, in frame order
            k_sd, k_ps = int(sd[begin[k]]), int(ps[begin[k]])
            key = (name(k_sd >> 32), k_ps >> 48, name(k_sd & 0xFFFFFFFF), (k_ps >> 32) & 0xFFFF)
            fl = self._flows.get(key) or self._classify(key)
            kind = fl.kind
            slot[at] = -2
            if kind == OTHER:
                continue  # never RTP: the per-packet path would drop every row
            if kind == SDP_RTCP:
                rtcp.append((k_sd, k_ps, rows[at].tolist()))
                continue
            skey = (*key, k_ps & 0xFFFFFFFF)
            s = self._streams.get(skey)
            if s is None and skey in self._idle:
                s = self._streams[skey] = unpack_stream(skey, self._idle.pop(skey))
            i = 0
            ok = good[at]
            if s is None:
                if kind == HEURISTIC:
                    # a guess is confirmed (or not) packet by packet
                    while i < len(at) and s is None:
                        slow(int(rows[at[i]]))
                        i += 1
                        s = self._streams.get(skey)
                    if s is None:
                        continue
                elif ok.any():
                    s = self._streams[skey] = Stream(*skey, fl.endpoint, "sdp")
                    table.take(s)
                    table.ints[s.slot] = 0
                    table.ints[s.slot, I_MAIN_PT] = -1
                    table.floats[s.slot] = 0.0
            rest, ok = at[i:], ok[i:]
            if kind != HEURISTIC and not ok.all():
                for r in rows[rest[~ok]].tolist():
                    slow(r)  # malformed on an announced endpoint: an error item, nothing else
            if s is None or not rest.size:
                continue
            if s.slot < 0:
                self._push(s)
            table.resolved(s.slot, k_sd, k_ps, fl, self._epoch)
            self._index.insert(table, self._epoch, k_sd, k_ps, s.slot)
            if kind == HEURISTIC:
                # heuristic flows ignore RTCP's payload types 72..76 (the per-packet path drops them)
                ok &= (pt[rest] < 72) | (pt[rest] > 76)
            slot[rest[ok]] = s.slot
        rtcp.sort()
        return [r for _sd, _ps, rs in rtcp for r in rs]

    def _kernel_run(self, slot: np.ndarray, rows: np.ndarray, pt: np.ndarray, hdr: np.ndarray, frames: np.ndarray,
                    ts: np.ndarray) -> None:
        """Run the kernel over the positions with a table row (``slot`` ≥ 0), in frame order,
        then what only Python does: codec names, the SSRC clock table for RTCP, and the MOS of
        closed intervals."""
        assert _kernels is not None
        table = self._table
        fed = np.flatnonzero(slot >= 0)
        if not fed.size:
            return
        # clock and telephone-event flag of each payload type on its stream's endpoint, looked
        # up once per stream and type
        code = slot[fed] * 128 + pt[fed]
        clocks, events = table.clock.reshape(-1), table.event.reshape(-1)
        missing = np.flatnonzero(clocks[code] < 0)
        if missing.size:
            # the distinct codes in ascending order, as np.unique gives them, without its sort
            # (a new stream brings hundreds of rows per chunk)
            wanted = np.zeros(clocks.size, dtype=bool)
            wanted[code[missing]] = True
            for c in np.flatnonzero(wanted).tolist():
                media = table.media[c >> 7]
                assert media is None or isinstance(media, Endpoint)
                clk, is_event, _codec = self._info(media, c & 127)
                clocks[c], events[c] = clk, is_event
        touched = np.zeros(len(table.owner), dtype=bool)
        touched[slot[fed]] = True
        streams = np.flatnonzero(touched)
        main_before = table.ints[:, I_MAIN_PT].copy()
        new = streams[table.ints[streams, I_TOTAL_NR] == 0]
        out = np.empty((len(rows), _kernels.CLOSE_COLS))
        closes = _kernels.rtp_rows(slot, np.ascontiguousarray(hdr[rows]), frames[rows], ts[rows], table.clock,
                                   table.event, table.ints, table.floats, self.interval_s, out)
        owner, media_of = table.owner, table.media
        for row, _at, start, packets, exp, jsum, jn, jmax, main in out[:closes].tolist():
            k = int(row)
            s = owner[k]
            assert s is not None
            media = media_of[k]
            assert media is None or isinstance(media, Endpoint)
            if main >= 0 and main_before[k] < 0:
                codec = self._info(media, int(main))[2]  # main type set in this batch
            elif main < 0 and not s.codec:
                codec = self._info(media, int(table.ints[k, I_FIRST_PT]))[2]
            else:
                codec = s.codec
            self._store_interval(s, codec, start, int(packets), int(exp), jsum, int(jn), jmax)
        for k in streams[(table.ints[streams, I_MAIN_PT] >= 0) & (main_before[streams] < 0)].tolist():
            s, media = owner[k], media_of[k]
            assert s is not None and (media is None or isinstance(media, Endpoint))
            clk, _event, s.codec = self._info(media, int(table.ints[k, I_MAIN_PT]))
            if clk:
                self._ssrc_clock[s.ssrc] = clk
        for k in new.tolist():
            s, media = owner[k], media_of[k]
            assert s is not None and (media is None or isinstance(media, Endpoint))
            if not s.codec:
                s.codec = self._info(media, int(table.ints[k, I_FIRST_PT]))[2]
