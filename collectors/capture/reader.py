"""Sans-IO readers for classic pcap and pcapng, producing batches of records.

Theory of operation: ``CaptureParser.feed(chunk)`` appends bytes to an internal buffer and
yields ``RecordBatch`` values, one per call, holding every complete record seen so far as
columns (numpy arrays of offsets, lengths, timestamps and link types into the batch's buffer).
Columnar batches let the decoder treat the common Ethernet/IPv4/UDP case with vectorised numpy
gathers instead of one Python object per packet (the benchmark's budget is ~1.5 µs a packet).
The per-record walk that remains in Python only reads the length field.

Damage handling follows Wireshark: a bad header or an absurd record length stops the reading
there (no resynchronisation); everything before is still delivered. ``feed`` first yields the
good records, then raises ``ParseError`` with the file byte offset of the damage. ``close``
raises ``ParseError`` when the input ends inside a record (a truncated capture).

Formats: https://www.tcpdump.org/manpages/pcap-savefile.5.html and
https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html (SHB/IDB/EPB/SPB/OPB).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from collectors.kernels import kernels as _kernels  # None: the Python walks below run
from core.errors import ParseError

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
# Wireshark refuses records above 256 KiB (WTAP_MAX_PACKET_SIZE_STANDARD) unless the link type
# needs more; a larger length means a damaged header, so stop rather than swallow the file.
MAX_RECORD = 262144
_IDB, _SPB, _OPB, _EPB = 1, 3, 2, 6
# Records a run check looks ahead at once (a longer run is taken in several checks). Runs on
# trunk captures are ~50 records (SIP breaks them); a wider window copies bytes for nothing.
_RUN_WINDOW = 256
# Timestamps a date can show (years 1 to 9999, UTC): a pcapng tick count with a coarse resolution
# (e.g. 2^0 s) and a high word near 2^31 lands far beyond, and every later step that prints a
# time would fail on it. Such a record is damage, reported like a bad length.
MIN_TS, MAX_TS = -62135596800.0 + 86400.0, 253402300799.0 - 86400.0
_ZERO_RUN = 16  # all-zero pcap record headers in a row that end the reading
_TS_RANGE_PROBLEM = "pcapng packet timestamp outside the years 1-9999 (resolution or offset damaged)"


def byte_rows(buf: bytes | np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``buf[o:o + width]`` for every offset, as the rows of an (n, width) uint8 array.

    The buffer is viewed as overlapping ``width``-byte void items (stride 1), so one fancy
    index copies each row with a memcpy: ~5× faster than gathering from a sliding-window view
    and far cheaper than an n × width index matrix. Every ``o + width`` must be ≤ ``len(buf)``
    (numpy checks the indexes against the view's length)."""
    items = np.ndarray(shape=(max(len(buf) - width + 1, 0),), dtype=np.dtype((np.void, width)), buffer=buf,
                       strides=(1,))
    rows: np.ndarray = items[offsets].view(np.uint8).reshape(-1, width)
    return rows


def _spell_out(firsts: list[int], counts: list[int], strides: list[int]) -> np.ndarray:
    """Offsets of stretches of equally spaced records: ``first + i·stride`` for i < count."""
    n = np.asarray(counts, dtype=np.int64)
    rank = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    offs: np.ndarray = np.repeat(np.asarray(firsts, dtype=np.int64), n) + rank * np.repeat(
        np.asarray(strides, dtype=np.int64), n)
    return offs


def sort_by(primary: np.ndarray, *ports: np.ndarray) -> np.ndarray:
    """``np.lexsort((*reversed(ports), primary))``: the stable order by ``primary``, then by each
    of ``ports`` (values 0..65535), the same permutation ~4× faster on a chunk — the 16-bit keys
    take numpy's radix sort and the last, stable sort of ``primary`` meets presorted runs."""
    order = np.arange(len(primary))
    for key in reversed(ports):
        order = order[np.argsort(key[order].astype(np.uint16), kind="stable")]
    result: np.ndarray = order[np.argsort(primary[order], kind="stable")]
    return result


@dataclass(slots=True)
class RecordBatch:
    """Complete records of one chunk, as columns over ``buf`` (which the batch owns)."""

    buf: bytes
    base_offset: int  # file offset of buf[0]
    first_frame: int  # frame number of the first record (1-based)
    data_off: np.ndarray  # int64, offset of the packet bytes in buf
    caplen: np.ndarray  # int64
    orig_len: np.ndarray  # int64
    ts: np.ndarray  # float64 UNIX seconds
    linktype: np.ndarray  # int64 per record

    def __len__(self) -> int:
        return int(self.data_off.shape[0])


@dataclass(frozen=True, slots=True)
class _Interface:
    linktype: int
    snaplen: int
    resolution: float
    offset_s: int
    units: int  # ticks per second for decimal resolutions, else 0


class CaptureParser:
    """Feed bytes, get ``RecordBatch``es; see the module docstring for the error contract."""

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0  # consumed bytes of _buf
        self._base = 0  # file offset of _buf[0]
        self.format: str | None = None  # "pcap" | "pcapng" once known
        self.link_types: list[int] = []
        self.frames = 0
        self._endian = "<"
        self._scale = 1e-6
        self._linktype = 0
        self._limit = MAX_RECORD
        self._ifaces: list[_Interface] = []
        self._failed: ParseError | None = None
        self._pending: RecordBatch | None = None  # the good records before the damage, when a walk fails

    @property
    def offset(self) -> int:
        """File offset of the first byte not yet consumed."""
        return self._base + self._pos

    def feed(self, data: bytes, *, resume: bool = False) -> Iterator[RecordBatch]:
        """The records completed by ``data``. ``resume``: ``data`` starts at ``offset`` (it
        repeats the bytes not yet consumed) — for callers that can re-read their input, which
        spares copying the unconsumed tail in front of every new chunk (a fresh 4 MiB buffer
        per chunk, ~2 ms each)."""
        if self._failed is not None:
            raise self._failed
        if resume:
            self._buf = bytes(data)
        else:
            self._buf = self._buf[self._pos:] + data if self._pos < len(self._buf) else bytes(data)
        self._base += self._pos
        self._pos = 0
        if self.format is None and not self._read_header():
            return
        try:
            batch = self._walk_pcap() if self.format == "pcap" else self._walk_pcapng()
        except ParseError as exc:
            self._failed = exc
            good = self._pending
            if good is not None and len(good):
                self.frames += len(good)
                yield good
            raise
        if batch is not None and len(batch):
            yield batch

    def release(self) -> None:
        """Drop the consumed bytes, keeping only the unfinished record (``offset`` is unchanged).

        Called between chunks, so the previous chunk's buffer can be freed before the next one
        is read: two 4 MiB buffers alive at once raise the heap's high-water mark, and on long
        captures the heap fragments around them."""
        if self._pos:
            self._buf = self._buf[self._pos:]
            self._base += self._pos
            self._pos = 0

    def close(self) -> None:
        """End of input: complain about a missing header or a record cut short."""
        if self._failed is not None:
            return
        left = len(self._buf) - self._pos
        if self.format is None:
            if left == 0 and self._base == 0:
                raise ParseError("capture is empty", 0)
            raise ParseError(f"capture header cut short ({left} of 24 bytes)", self.offset)
        if left:
            raise ParseError(f"capture cut short inside a record ({left} trailing bytes)", self.offset)

    # -- headers -------------------------------------------------------------------------------

    def _read_header(self) -> bool:
        buf = self._buf
        if len(buf) < 4:
            return False
        magic = buf[:4]
        if magic in PCAP_MAGICS:
            if len(buf) < 24:
                return False
            self._endian, self._scale = PCAP_MAGICS[magic]
            major, _minor, _tz, _sig, snaplen, linktype = struct.unpack_from(self._endian + "HHiIII", buf, 4)
            if major != 2:
                raise ParseError(f"pcap version {major} unsupported", 4)
            self.format = "pcap"
            # The low 16 bits hold the link type; the upper bits may carry FCS flags.
            self._linktype = linktype & 0xFFFF
            self.link_types = [self._linktype]
            self._limit = max(MAX_RECORD, snaplen)
            self._pos = 24
            return True
        if struct.unpack_from("<I", buf)[0] == PCAPNG_SHB:
            self.format = "pcapng"
            return True
        if magic[:2] == b"\x1f\x8b":
            raise ParseError("gzip data inside the capture stream (decompress first)", self.offset)
        raise ParseError(f"not a pcap or pcapng file (magic {magic.hex()})", self.offset)

    # -- classic pcap --------------------------------------------------------------------------

    def _walk_pcap(self) -> RecordBatch:
        offs, pos, cut = self._pcap_offsets(self._buf, self._pos)
        if cut is not None and cut > self._limit:
            self._pending = self._pcap_batch(offs)
            self._pos = pos
            raise ParseError(f"pcap record length {cut} beyond the limit of {self._limit}", self._base + pos)
        batch = self._pcap_batch(offs)
        # A run of all-zero record headers (no time, no length) is no traffic: it is the hole of
        # a sparse, preallocated or overwritten file, and millions of them would follow.
        zero = (batch.caplen == 0) & (batch.orig_len == 0) & (batch.ts == 0)
        if zero.any():
            runs = np.cumsum(np.concatenate(([0], zero.astype(np.int64))))
            zero[:] = False
            zero[:max(len(batch) - _ZERO_RUN + 1, 0)] = runs[_ZERO_RUN:] - runs[:-_ZERO_RUN] == _ZERO_RUN
        bad = np.flatnonzero((batch.caplen > self._limit) | zero)
        if bad.size:
            cut = int(bad[0])
            at = int(batch.data_off[cut]) - 16
            n = int(batch.caplen[cut])
            self._pending = self._slice(batch, cut)
            self._pos = at
            if zero[cut]:
                raise ParseError("zero-filled pcap records (a sparse, preallocated or overwritten file): "
                                 "reading stops here", self._base + at)
            raise ParseError(f"pcap record length {n} beyond the limit of {self._limit}", self._base + at)
        self._pos = pos
        self.frames += len(offs)
        return batch

    def _pcap_offsets(self, buf: bytes, pos: int) -> tuple[np.ndarray, int, int | None]:
        """Start offsets of the complete records from ``pos``: (offsets, next position, caplen of
        the record that did not fit or None).

        Records form a chain (each length says where the next starts), so this walk is
        sequential; it reads only the length field (the hot loop of the whole reader). The
        compiled walk (``collectors._kernels.pcap_walk``) costs the same whatever the records'
        lengths; without it, ``_pcap_offsets_py``."""
        if _kernels is None:
            return self._pcap_offsets_py(buf, pos)
        out = np.empty((len(buf) - pos) // 16 + 1, dtype=np.int64)
        count, nxt, cut = _kernels.pcap_walk(buf, pos, self._endian == ">", out)
        return out[:count].copy(), nxt, (None if cut < 0 else cut)

    def _pcap_offsets_py(self, buf: bytes, pos: int) -> tuple[np.ndarray, int, int | None]:
        """``_pcap_offsets`` in Python: fast on runs of equal-length records only. RTP makes
        long runs of equal-length records (one codec, one packetisation), so after two equal
        lengths in a row the walk checks the rest of the run in C: the length field of record i
        of a run of stride s sits at ``start + 8 + i*s``, and ``buf[start+8+j::s]`` for j = 0..3
        gives byte j of every such field; the leading bytes equal to the run's own (``lstrip``)
        count the records the sequential walk would take. The result is the same offsets.
        """
        size = len(buf)
        last = size - 16
        # the walk notes stretches (first offset, records, stride); numpy spells them out at the
        # end, instead of a Python int per record
        firsts: list[int] = []
        counts: list[int] = []
        strides: list[int] = []
        u32 = struct.Struct(self._endian + "I").unpack_from
        cut: int | None = None
        prev = -1
        while pos <= last:
            n = u32(buf, pos + 8)[0]
            nxt = pos + 16 + n
            if nxt > size:
                cut = n
                break
            firsts.append(pos)
            stride = nxt - pos
            k = 0
            if n == prev:
                field = buf[pos + 8:pos + 12]
                whole = min((size - nxt) // stride, _RUN_WINDOW)
                k = whole
                for j in range(4):
                    col = buf[nxt + 8 + j:nxt + 8 + j + whole * stride:stride]
                    k = min(k, whole - len(col.lstrip(field[j:j + 1])))
                nxt += k * stride
            counts.append(k + 1)
            strides.append(stride)
            prev = n
            pos = nxt
        return _spell_out(firsts, counts, strides), pos, cut

    def _pcap_batch(self, offs: np.ndarray) -> RecordBatch:
        o = np.asarray(offs, dtype=np.int64)
        dt = np.dtype(self._endian + "u4")
        if o.size:
            # one 16-byte row per record: no 16-per-record index matrix (2.3 MB of fresh pages
            # per chunk, most of this call's time)
            hdr = byte_rows(self._buf, o, 16).view(dt).astype(np.int64)
        else:
            hdr = np.zeros((0, 4), dtype=np.int64)
        ts = hdr[:, 0].astype(np.float64) + hdr[:, 1].astype(np.float64) * self._scale
        return RecordBatch(self._buf, self._base, self.frames + 1, o + 16, hdr[:, 2], hdr[:, 3], ts,
                           np.full(o.size, self._linktype, dtype=np.int64))

    @staticmethod
    def _slice(b: RecordBatch, n: int) -> RecordBatch:
        return RecordBatch(b.buf, b.base_offset, b.first_frame, b.data_off[:n], b.caplen[:n],
                           b.orig_len[:n], b.ts[:n], b.linktype[:n])

    # -- pcapng --------------------------------------------------------------------------------

    def _walk_pcapng(self) -> RecordBatch:
        """Walk the blocks. Enhanced Packet Blocks — nearly every block of a capture — are only
        noted in the loop and decoded together with numpy (``_epb_columns``); other blocks go
        through ``_ng_block`` one by one. File order is kept across both."""
        buf, pos, end = self._buf, self._pos, len(self._buf)
        parts: list[tuple[np.ndarray, ...]] = []  # (offset, caplen, orig_len, ts, linktype) columns
        offs: list[int] = []
        caps: list[int] = []
        origs: list[int] = []
        tss: list[float] = []
        lts: list[int] = []
        epbs: list[np.ndarray] = []  # offsets of runs of Enhanced Packet Blocks

        def flush_single() -> None:
            if offs:
                parts.append(self._ng_columns(offs, caps, origs, tss, lts))
                for column in (offs, caps, origs, tss, lts):
                    column.clear()

        def flush_epbs() -> None:
            if epbs:
                at = np.concatenate(epbs)
                epbs.clear()
                cols, bad, message = self._epb_columns(buf, at)
                parts.append(cols)
                if bad is not None:
                    nonlocal pos
                    pos = int(at[bad])
                    raise ParseError(message, self._base + pos)

        head = struct.Struct(self._endian + "II").unpack_from
        try:
            while pos + 12 <= end:
                btype, blen = head(buf, pos)
                if btype == _EPB and 32 <= blen <= 16 * MAX_RECORD and not blen & 3:
                    if pos + blen > end:
                        break
                    flush_single()
                    run, pos = self._epb_run(buf, pos, end)
                    epbs.append(run)
                    continue
                flush_epbs()
                nxt = self._ng_block(buf, pos, end, offs, caps, origs, tss, lts)
                if nxt < 0:
                    break
                pos = nxt
                head = struct.Struct(self._endian + "II").unpack_from  # a section header may flip it
            flush_epbs()
        except ParseError:
            flush_single()
            self._pending, self._pos = self._ng_batch(parts), pos
            raise
        flush_single()
        self._pos = pos
        batch = self._ng_batch(parts)
        self.frames += len(batch)
        return batch

    def _epb_run(self, buf: bytes, pos: int, end: int) -> tuple[np.ndarray, int]:
        """Offsets of the run of complete Enhanced Packet Blocks from ``pos`` (type 6, a sane
        length; checked further by ``_epb_columns``) and the position after it; compiled
        (``collectors._kernels.pcapng_epb_walk``) when built."""
        if _kernels is not None:
            out = np.empty((end - pos) // 32 + 1, dtype=np.int64)
            count, nxt = _kernels.pcapng_epb_walk(buf, pos, self._endian == ">", 16 * MAX_RECORD, out)
            return out[:count].copy(), nxt
        head = struct.Struct(self._endian + "II").unpack_from
        offs: list[int] = []
        prev = -1  # length of the previous EPB
        while pos + 12 <= end:
            btype, blen = head(buf, pos)
            if btype != _EPB or not 32 <= blen <= 16 * MAX_RECORD or blen & 3 or pos + blen > end:
                break
            offs.append(pos)
            nxt = pos + blen
            if blen == prev:
                # a run of EPBs of one length: the 8-byte type+length heads of the following
                # blocks are checked in C (``bytes.lstrip`` on strided slices), as in
                # ``_pcap_offsets_py``
                whole = min((end - nxt) // blen, _RUN_WINDOW)
                k = whole
                for j in range(8):
                    col = buf[nxt + j:nxt + j + whole * blen:blen]
                    k = min(k, whole - len(col.lstrip(buf[pos + j:pos + j + 1])))
                if k:
                    offs.extend(range(nxt, nxt + k * blen, blen))
                    nxt += k * blen
            prev = blen
            pos = nxt
        return np.asarray(offs, dtype=np.int64), pos

    def _epb_columns(self, buf: bytes, p: np.ndarray) -> tuple[tuple[np.ndarray, ...], int | None, str]:
        """Decode the EPBs at offsets ``p`` together: (columns of the good ones, index of the
        first bad one or None, its problem). The checks and their order are those of
        ``_parse_packet_block``."""
        dt = np.dtype(self._endian + "u4")
        hdr = byte_rows(buf, p + 4, 24).view(dt).astype(np.int64)  # no index matrices (``_pcap_batch``)
        blen, ifid, hi, lo, cap, orig = (hdr[:, i] for i in range(6))
        trailer = byte_rows(buf, p + blen - 4, 4).view(dt).reshape(-1).astype(np.int64)
        n_if = len(self._ifaces)
        bad_trailer = trailer != blen
        bad_len = (cap > blen - 32) | (cap > MAX_RECORD)
        bad_if = ifid >= n_if
        bad = np.flatnonzero(bad_trailer | bad_len | bad_if)
        cut = int(bad[0]) if bad.size else len(p)
        message = ""
        if bad.size:
            if bad_trailer[cut]:
                message = "pcapng block trailer length does not match"
            elif bad_len[cut]:
                message = f"pcapng packet length {int(cap[cut])} beyond its block"
            else:
                message = f"pcapng packet refers to undeclared interface {int(ifid[cut])}"
        if cut == 0 or not n_if:
            empty = np.zeros(0, dtype=np.int64)
            return (empty, empty, empty, np.zeros(0, dtype=np.float64), empty), (0 if bad.size else None), message
        ifid, hi, lo = ifid[:cut], hi[:cut], lo[:cut]
        units = np.array([i.units for i in self._ifaces], dtype=np.int64)[ifid]
        res = np.array([i.resolution for i in self._ifaces], dtype=np.float64)[ifid]
        shift = np.array([i.offset_s for i in self._ifaces], dtype=np.float64)[ifid]
        ticks = hi << 32 | lo  # < 2**64; int64 holds it while the high word is below 2**31
        if (hi >= 1 << 31).any():
            ticks_f = hi.astype(np.float64) * 4294967296.0 + lo
            ts = np.where(units > 0, ticks_f / np.maximum(units, 1), ticks_f * res) + shift
        else:
            # decimal resolutions split exactly into seconds and fraction, as the one-by-one path
            u = np.maximum(units, 1)
            sec, frac = np.divmod(ticks, u)
            ts = np.where(units > 0, sec.astype(np.float64) + frac / u, ticks.astype(np.float64) * res) + shift
        linktypes = np.array([i.linktype for i in self._ifaces], dtype=np.int64)[ifid]
        out_of_range = np.flatnonzero(~((ts >= MIN_TS) & (ts <= MAX_TS)))
        if out_of_range.size:
            cut, message = int(out_of_range[0]), _TS_RANGE_PROBLEM
            ts, linktypes = ts[:cut], linktypes[:cut]
            bad = out_of_range
        cols = (p[:cut] + 28, cap[:cut], orig[:cut], ts, linktypes)
        return cols, (cut if bad.size else None), message

    def _ng_block(self, buf: bytes, pos: int, end: int, offs: list[int], caps: list[int],
                  origs: list[int], tss: list[float], lts: list[int]) -> int:
        """Consume one block; return the next position, or -1 if the block is not complete yet."""
        btype = struct.unpack_from(self._endian + "I", buf, pos)[0]
        if btype == PCAPNG_SHB:
            bom = buf[pos + 8:pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                self._endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                self._endian = ">"
            else:
                raise ParseError(f"pcapng section header with bad byte-order magic {bom.hex()}",
                                 self._base + pos)
        e = self._endian
        blen: int = struct.unpack_from(e + "I", buf, pos + 4)[0]
        if blen < 12 or blen % 4 or blen > 16 * MAX_RECORD:
            raise ParseError(f"pcapng block length {blen} invalid", self._base + pos)
        if pos + blen > end:
            return -1
        if struct.unpack_from(e + "I", buf, pos + blen - 4)[0] != blen:
            raise ParseError("pcapng block trailer length does not match", self._base + pos)
        body, n = pos + 8, blen - 12
        if btype == PCAPNG_SHB:
            self._ifaces = []  # interface ids are per section
        elif btype == _IDB:
            if n < 8:
                raise ParseError("pcapng interface block too short", self._base + pos)
            self._ifaces.append(self._parse_idb(buf, body, n, e))
            self.link_types.append(self._ifaces[-1].linktype)
        elif btype in (_EPB, _OPB, _SPB):
            off, cap, orig, ts, lt = self._parse_packet_block(btype, buf, body, n, e, pos)
            offs.append(off)
            caps.append(cap)
            origs.append(orig)
            tss.append(ts)
            lts.append(lt)
        # unknown blocks (NRB, ISB, DSB, custom …) are skipped as the spec requires
        return pos + blen

    def _parse_idb(self, buf: bytes, body: int, n: int, e: str) -> _Interface:
        linktype, _res, snaplen = struct.unpack_from(e + "HHI", buf, body)
        resolution, offset_s, units = 1e-6, 0, 1_000_000
        p, stop = body + 8, body + n
        while p + 4 <= stop:
            code, length = struct.unpack_from(e + "HH", buf, p)
            if code == 0:
                break
            val = buf[p + 4:p + 4 + length]
            if code == 9 and length >= 1:  # if_tsresol
                r = val[0]
                resolution = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
                units = 0 if r & 0x80 or r > 18 else 10**r
            elif code == 14 and length >= 8:  # if_tsoffset (seconds)
                offset_s = struct.unpack_from(e + "q", val)[0]
            p += 4 + ((length + 3) & ~3)
        return _Interface(linktype, snaplen, resolution, offset_s, units)

    def _parse_packet_block(
        self, btype: int, buf: bytes, body: int, n: int, e: str, pos: int
    ) -> tuple[int, int, int, float, int]:
        if btype == _SPB:
            if n < 4:
                raise ParseError("pcapng simple packet block too short", self._base + pos)
            orig = struct.unpack_from(e + "I", buf, body)[0]
            iface = self._iface(0, pos)
            cap = min(orig, n - 4, iface.snaplen or orig)
            # SPBs carry no timestamp; Wireshark shows them at time 0.
            return body + 4, cap, orig, 0.0, iface.linktype
        if btype == _EPB:
            if n < 20:
                raise ParseError("pcapng packet block too short", self._base + pos)
            ifid, hi, lo, cap, orig = struct.unpack_from(e + "IIIII", buf, body)
            data = body + 20
        else:  # OPB: 16-bit interface id and drops counter
            if n < 20:
                raise ParseError("pcapng packet block too short", self._base + pos)
            ifid, _drops, hi, lo, cap, orig = struct.unpack_from(e + "HHIIII", buf, body)
            data = body + 20
        if cap > n - 20 or cap > MAX_RECORD:
            raise ParseError(f"pcapng packet length {cap} beyond its block", self._base + pos)
        iface = self._iface(ifid, pos)
        ticks = (hi << 32) | lo
        if iface.units:  # decimal resolution: split exactly to keep sub-µs precision
            sec, frac = divmod(ticks, iface.units)
            ts = sec + frac / iface.units + iface.offset_s
        else:
            ts = ticks * iface.resolution + iface.offset_s
        if not MIN_TS <= ts <= MAX_TS:
            raise ParseError(_TS_RANGE_PROBLEM, self._base + pos)
        return data, cap, orig, ts, iface.linktype

    def _iface(self, ifid: int, pos: int) -> _Interface:
        if ifid >= len(self._ifaces):
            raise ParseError(f"pcapng packet refers to undeclared interface {ifid}", self._base + pos)
        return self._ifaces[ifid]

    @staticmethod
    def _ng_columns(offs: list[int], caps: list[int], origs: list[int], tss: list[float],
                    lts: list[int]) -> tuple[np.ndarray, ...]:
        i64 = np.int64
        return (np.asarray(offs, dtype=i64), np.asarray(caps, dtype=i64), np.asarray(origs, dtype=i64),
                np.asarray(tss, dtype=np.float64), np.asarray(lts, dtype=i64))

    def _ng_batch(self, parts: list[tuple[np.ndarray, ...]]) -> RecordBatch:
        if not parts:
            parts = [self._ng_columns([], [], [], [], [])]
        cols = [np.concatenate([part[i] for part in parts]) for i in range(5)]
        return RecordBatch(self._buf, self._base, self.frames + 1, *cols)
