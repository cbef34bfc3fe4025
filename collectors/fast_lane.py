"""The capture pipeline's fast lane: which records of a chunk are plain IPv4/UDP datagrams with
RTP-looking payloads (found with one compiled pass or a few numpy passes), and the bookkeeping
that feeds them to the media analyser in capture order relative to everything that changes its
view (an SDP naming their address, a datagram that took the per-frame path).

``collectors.analyze.Pipeline.feed_batch`` splits each chunk with ``fast_rows``; the rest of a
chunk goes through the per-frame decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from collectors.capture.packets import ipv4_int
from collectors.capture.reader import RecordBatch, byte_rows
from collectors.kernels import kernels as _kernels  # None: the Python walks below run

#: Ports SIP is expected on: never in the fast lane, and the pipeline tries SIP first on them.
#: RFC 3261 §18: 5060 (UDP/TCP), 5061 (TLS); 5062/5080 are common trunk alternatives.
SIP_PORTS = frozenset((5060, 5061, 5062, 5080))
# link types the fast lane reads directly (Ethernet, raw IPv4, BSD loopback, Linux SLL/SLL2)
_FAST_LINKTYPES = np.array([0, 1, 12, 14, 101, 108, 113, 228, 276])
_FAST_LINKTYPE_SET = frozenset(_FAST_LINKTYPES.tolist())
# never in the fast lane: SIP (either side); in no lane at all: the tunnels GTP-U (2152, either
# side) and VXLAN (4789, destination), which the per-frame decoder opens
_SIP_PORT_ARRAY = np.array(sorted(SIP_PORTS), dtype=np.int64)
_TUNNEL_PORTS = np.array([2152], dtype=np.int64)
_FAST_EXCLUDED_PORTS = np.union1d(_SIP_PORT_ARRAY, _TUNNEL_PORTS)  # either side, for the numpy lane
_VXLAN_PORT = 4789

Rows = tuple[np.ndarray, ...]


def fast_rows(batch: RecordBatch) -> tuple[Rows | None, Rows | None]:
    """The chunk's plain IPv4/UDP datagrams, in two lanes, each None when empty:

    - the fast lane, those carrying RTP-looking payloads: (rows, src, dst, sport, dport, payload
      offset, payload length, the payloads' first 12 bytes);
    - plain rows, the others (SIP, mostly): the same columns but the 12 bytes, for the
      pipeline's UDP analysers without a second decoding of the frame. Only the compiled kernel
      gives them; without it those frames take the per-frame path.

    Link layers: Ethernet (untagged or one 802.1Q tag), Linux SLL/SLL2, raw IPv4 and BSD
    loopback — what trunk captures are made of. Anything else (other tags, tunnels, IP
    options, fragments, snap-length cuts, GTP/VXLAN ports) takes the per-frame path, and SIP's
    ports never take the fast lane. The compiled kernel (``collectors._kernels.udp_fast_lane``)
    does the same checks in one pass over the records; the numpy passes below are for a tree
    without it.
    """
    if _kernels is not None:
        n = len(batch)
        out = np.empty((7, n), dtype=np.int64)  # one row per field
        plain = np.empty((7, n), dtype=np.int64)
        head = np.empty((n, 12), dtype=np.uint8)
        c64 = np.ascontiguousarray
        k, m = _kernels.udp_fast_lane(batch.buf, c64(batch.data_off, np.int64), c64(batch.caplen, np.int64),
                                      c64(batch.orig_len, np.int64), c64(batch.linktype, np.int64),
                                      _SIP_PORT_ARRAY, _TUNNEL_PORTS, _VXLAN_PORT, out, head, plain)
        col = out[:, :k]
        lane = (col[0], col[1].astype(np.uint32), col[2].astype(np.uint32), col[3], col[4], col[5], col[6],
                head[:k]) if k else None
        return lane, (tuple(plain[:, :m]) if m else None)
    return _numpy_fast_rows(batch), None


def _numpy_fast_rows(batch: RecordBatch) -> Rows | None:
    """``fast_rows``'s fast lane in numpy."""
    a = np.frombuffer(batch.buf, dtype=np.uint8)
    lt, cap = batch.linktype, batch.caplen
    # at least IPv4 (20) + UDP (8) + RTP (12) after the link header (checked per row below):
    # short RTP (comfort noise, telephone events) takes the fast lane too, so it does not cut
    # the media analyser's batches
    whole = (cap >= 40) & (cap == batch.orig_len)
    if lt.size and lt[0] == lt[-1] and bool((lt == lt[0]).all()):  # one link type (pcap: always)
        if int(lt[0]) not in _FAST_LINKTYPE_SET:
            return None
        cand = np.flatnonzero(whole)
    else:
        cand = np.flatnonzero(np.isin(lt, _FAST_LINKTYPES) & whole)
    if not cand.size:
        return None
    o, lt, cap = batch.data_off[cand], lt[cand], cap[cand]

    def u16(at: np.ndarray) -> np.ndarray:
        out: np.ndarray = a[at].astype(np.int64) << 8 | a[at + 1]
        return out

    single = bool(lt[0] == lt[-1]) and bool((lt == lt[0]).all())  # the usual case
    ipo = np.full(o.size, -1, dtype=np.int64)
    for code in ([int(lt[0])] if single else np.unique(lt).tolist()):
        rows = slice(None) if single else np.flatnonzero(lt == code)
        oo = o[rows]
        if code == 1:  # Ethernet, untagged or one 802.1Q tag
            eth_type = byte_rows(batch.buf, oo + 12, 2).view(">u2").reshape(-1)
            at = np.where(eth_type == 0x0800, 14, -1)
            tagged = np.flatnonzero(eth_type == 0x8100)
            if tagged.size:
                at[tagged[u16(oo[tagged] + 16) == 0x0800]] = 18
        elif code in (113, 276):  # Linux cooked v1 (protocol at 14) / v2 (protocol first)
            at = np.where(u16(oo + (14 if code == 113 else 0)) == 0x0800, 16 if code == 113 else 20, -1)
        elif code in (0, 108):  # BSD loopback: AF_INET = 2 in host order (NULL: either) or network order (LOOP)
            word = a[oo].astype(np.int64) << 24 | a[oo + 1].astype(np.int64) << 16 \
                | a[oo + 2].astype(np.int64) << 8 | a[oo + 3]
            at = np.where((word == 2) | ((word == 0x02000000) & (code == 0)), 4, -1)
        else:  # raw IP
            at = np.zeros(oo.size, dtype=np.int64)
        ipo[rows] = at
    ipo[ipo + 40 > cap] = -1  # the 40 bytes read below stay inside the record
    # IPv4 (20) + UDP (8) + RTP (12) headers of every candidate as one row each: one gather
    # instead of one per field, and the media analyser gets the RTP header rows with the batch
    h = byte_rows(batch.buf, o + np.maximum(ipo, 0), 40)

    half = h.view(">u2")  # the same rows as big-endian 16-bit words …
    words = h.view(">u4")  # … and 32-bit ones (40 bytes a row)

    def col16(k: int) -> np.ndarray:  # the 16-bit field at (even) byte offset k
        out: np.ndarray = half[:, k // 2].astype(np.int64)
        return out

    ok = (ipo >= 0) & (h[:, 0] == 0x45) & (h[:, 9] == 17)
    ok &= ((h[:, 6] & 0x3F) == 0) & (h[:, 7] == 0)  # neither MF nor a fragment offset
    iplen = col16(2)
    udplen = col16(24)
    ok &= (udplen == iplen - 20) & (udplen >= 20) & (iplen + ipo <= cap)
    ok &= (h[:, 28] & 0xC0) == 0x80  # RTP/RTCP version 2
    sport, dport = col16(20), col16(22)
    for port in _FAST_EXCLUDED_PORTS.tolist():
        ok &= (sport != port) & (dport != port)
    ok &= dport != _VXLAN_PORT
    sel = np.flatnonzero(ok)
    if not sel.size:
        return None
    # source and destination addresses: bytes 12..19 of the selected rows
    src = words[sel, 3].astype(np.uint32)
    dst = words[sel, 4].astype(np.uint32)
    ip = o[sel] + ipo[sel]
    return cand[sel], src, dst, sport[sel], dport[sel], ip + 28, udplen[sel] - 8, h[sel, 28:]


@dataclass(slots=True)
class FastContext:
    """The current chunk's fast-lane rows: which are fed already, which precede the current frame."""

    feed: Callable[[int, int], None]
    src: np.ndarray  # source address:port of each row as one key (``endpoint_keys``)
    dst: np.ndarray  # destination address:port
    done: int = 0
    upto: int = 0
    # per port number (index 65536 pads port + 1): the first row using it on either side, or
    # the row count; made on the first question, as most chunks are asked none
    first_row: np.ndarray | None = None

    def touches(self, addr: str, port: int) -> bool:
        """Do pending rows use ``addr`` with ``port`` or its RTCP neighbour (either direction)?

        One unsigned difference per side: key − (addr:port) is 0 or 1 for the port and its
        neighbour, and wraps round to a huge value below. (Port 65535's "neighbour" is the next
        address's port 0: at worst an early flush, which changes no result.)"""
        if not 0 <= port <= 65535:
            return False
        first = self.first_row
        if first is None:
            # an SDP usually names a port whose RTP starts later: one look-up then answers
            first = self.first_row = np.full(65537, len(self.src), dtype=np.int64)
            rows = np.arange(len(self.src), dtype=np.int64)
            for keys in (self.src, self.dst):
                np.minimum.at(first, (keys & np.uint64(0xFFFF)).astype(np.int64), rows)
        hi = self.upto
        if first[port] >= hi and first[port + 1] >= hi:
            return False
        try:
            key = np.uint64(ipv4_int(addr) << 16 | port)
        except OSError:
            return False  # not IPv4: fast-lane rows are IPv4 only
        lo = self.done
        return bool(((self.dst[lo:hi] - key) <= 1).any() or ((self.src[lo:hi] - key) <= 1).any())


def endpoint_keys(addr: np.ndarray, port: np.ndarray) -> np.ndarray:
    """IPv4 address and port as one 48-bit key per row."""
    keys: np.ndarray = addr.astype(np.uint64) << np.uint64(16) | port.astype(np.uint64)
    return keys


def nothing(lo: int, hi: int) -> None:
    """Fast-lane rows with no media analyser to feed."""
