"""The realistic traffic profile of ``gen_capture.py``: a SIP trunk as it looks on the wire.

One OSBiz (192.168.1.10) and a connector (35.246.178.13, media servers .20–.23). Every number
below is drawn per call or per stream from the seeded generator, so no two streams look alike:

* Signalling: REGISTER (401, then 200) every 60 s and OPTIONS every 30 s over UDP; calls over
  SIP/UDP (most), SIP/TCP (one persistent connection, handshake at the start, an ACK segment per
  message, long messages split at 1460 bytes) or SIP/TLS (opaque records on 5061: their media is
  only found by the RTP heuristic, on ports no SDP in the capture names).
* Outcomes: answered, answered with audio one way only, 486 busy, 503, 404, cancelled (CANCEL,
  200, 487, ACK; some with early media after a 183 with SDP).
* Codecs and packetisation: PCMA/PCMU 20 ms, G.729 20 or 30 ms, G.722 20 ms, Opus (48 kHz clock,
  payload size varying per packet); RFC 4733 telephone-event bursts (marker on the first event
  packet, the timestamp held, the end packet sent three times with the same or with rising
  sequence numbers); silence suppression with comfort noise (PT 13) and a marker at each talk
  spurt on some streams.
* Network: per-stream arrival jitter with σ log-uniform in 0.3–20 ms (so large σ reorders
  packets), per-sender packetisation timer noise, RTP clock skew of ±40 ppm, loss 0–5 % per
  stream in bursts (Gilbert–Elliott), duplicates (0–0.5 %), sequence numbers and timestamps
  starting anywhere (a fifth of the streams just below the 16-bit wrap), an SSRC change in the
  middle of some calls (new sequence and timestamp bases), RTCP SR/RR every ~5 s on some calls.

Packets are written in arrival order, streaming: a stream's packets are produced in send order
and released from a small heap once no later packet can arrive before them.
"""

from __future__ import annotations

import heapq
import math
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from traces.pcap_writer import eth_tcp, eth_udp, ethernet, ip_packet

PBX = "192.168.1.10"
CONNECTOR = "35.246.178.13"
FAR_MEDIA = ("35.246.178.20", "35.246.178.21", "35.246.178.22", "35.246.178.23")
SIP_PORT, TLS_PORT = 5060, 5061
MS = 1_000_000  # ns
START_NS = 1_764_000_000 * 1_000_000_000
# Event: (arrival ns, frame bytes, or a TCP message to frame at write time)
Event = tuple[int, "bytes | TcpMessage"]

# name, payload type, clock, ptime ms, payload bytes (0 = Opus: varies), share of calls
CODECS: tuple[tuple[str, int, int, int, int, float], ...] = (
    ("PCMA", 8, 8000, 20, 160, 0.33),
    ("PCMU", 0, 8000, 20, 160, 0.12),
    ("G729", 18, 8000, 20, 20, 0.2),
    ("G729", 18, 8000, 30, 30, 0.1),
    ("G722", 9, 8000, 20, 160, 0.1),
    ("opus", 111, 48000, 20, 0, 0.15),
)
OUTCOMES = (("answered", 0.74), ("one-way", 0.04), ("busy", 0.05), ("unavailable", 0.03),
            ("not-found", 0.03), ("cancelled", 0.08), ("cancelled-early-media", 0.03))
TRANSPORTS = (("udp", 0.7), ("tcp", 0.25), ("tls", 0.05))


def _pick(rng: random.Random, table: tuple[tuple, ...]) -> tuple:
    x = rng.random() * sum(row[-1] for row in table)
    for row in table:
        x -= row[-1]
        if x <= 0:
            return row
    return table[-1]


@dataclass(frozen=True, slots=True)
class TcpMessage:
    """A SIP message on the persistent TCP connection; framed when written (sequence numbers)."""

    from_pbx: bool
    data: bytes


class TcpConnection:
    """The PBX's SIP/TCP connection to the connector: sequence numbers per direction."""

    def __init__(self, rng: random.Random) -> None:
        self.port = 40000 + rng.randrange(20000)
        self.seq = {True: rng.randrange(1 << 32), False: rng.randrange(1 << 32)}

    def _frame(self, from_pbx: bool, flags: int, payload: bytes = b"") -> bytes:
        src, sport, dst, dport = (PBX, self.port, CONNECTOR, SIP_PORT) if from_pbx else \
            (CONNECTOR, SIP_PORT, PBX, self.port)
        frame = eth_tcp(src, sport, dst, dport, self.seq[from_pbx], self.seq[not from_pbx], flags, payload)
        self.seq[from_pbx] = (self.seq[from_pbx] + len(payload) + (1 if flags & 0x02 else 0)) & 0xFFFFFFFF
        return frame

    def handshake(self) -> list[bytes]:
        return [self._frame(True, 0x02), self._frame(False, 0x12), self._frame(True, 0x10)]

    def message(self, msg: TcpMessage) -> list[bytes]:
        """The message's segments (1460-byte MSS) and the peer's ACK."""
        out = [self._frame(msg.from_pbx, 0x18, msg.data[i:i + 1460]) for i in range(0, len(msg.data), 1460)]
        out.append(self._frame(not msg.from_pbx, 0x10))
        return out


def sip(first: str, call_id: str, cseq: str, transport: str, *, body: str = "", branch: str = "z9hG4bK1",
        from_pbx: bool = True, extra: str = "") -> bytes:
    src = PBX if from_pbx else CONNECTOR
    headers = (
        f"{first}\r\nVia: SIP/2.0/{transport.upper()} {src}:{SIP_PORT};branch={branch}\r\n"
        f"From: <sip:+49897007100@{PBX}>;tag=a{call_id[:8]}\r\nTo: <sip:+4930123456@{CONNECTOR}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:100@{src}:{SIP_PORT};transport={transport}>\r\n"
        f"Max-Forwards: 70\r\nUser-Agent: OpenScape Business V3R3\r\n{extra}"
    )
    if body:
        headers += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    else:
        headers += "Content-Length: 0\r\n\r\n"
    return headers.encode()


def sdp(addr: str, port: int, sess: int, codecs: list[tuple[str, int, int, int, int, float]], ptime: int) -> str:
    pts = " ".join(str(c[1]) for c in codecs)
    event_clock = 48000 if codecs[0][2] == 48000 else 8000
    maps = "".join(f"a=rtpmap:{c[1]} {c[0]}/{c[2]}{'/2' if c[0] == 'opus' else ''}\r\n" for c in codecs)
    return (f"v=0\r\no=OSBiz {sess} 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pts} 101\r\n{maps}a=rtpmap:101 telephone-event/{event_clock}\r\n"
            f"a=fmtp:101 0-15\r\na=ptime:{ptime}\r\na=sendrecv\r\n")


@dataclass(slots=True)
class StreamSpec:
    """One direction of a call's media and its network path."""

    src: str
    sport: int
    dst: str
    dport: int
    codec: tuple[str, int, int, int, int, float]
    t0: int  # first send time, ns
    t1: int  # last send time, ns
    jitter_ms: float  # σ of the arrival jitter
    loss: float  # mean loss rate
    burst: float  # mean loss burst length (packets)
    dup: float  # duplicate rate
    vad: bool  # silence suppression with comfort noise
    dtmf: int  # digits sent (telephone-event bursts)
    dtmf_same_seq: bool  # the end packet's repeats keep its sequence number
    ssrc_change_at: float  # fraction of the stream after which the SSRC changes (0 = never)
    rtcp: bool


def rtp_stream(rng: random.Random, spec: StreamSpec) -> Iterator[Event]:
    """The packets of one stream in arrival order (see the module docstring)."""
    _name, pt, clock, ptime, size, _share = spec.codec
    step_ns = ptime * MS
    ts_step = clock * ptime // 1000
    skew = 1.0 + rng.uniform(-40e-6, 40e-6)
    base_delay = rng.randrange(2 * MS, 40 * MS)
    ssrc = rng.randrange(1 << 32)
    seq = rng.randrange(65000, 65536) if rng.random() < 0.2 else rng.randrange(65536)
    rts = rng.randrange(1 << 32)
    # Gilbert–Elliott: p(good → bad) and p(bad → good) give the mean rate and burst length
    p_bg = 1.0 / max(spec.burst, 1.0)
    p_gb = spec.loss * p_bg / max(1e-9, 1.0 - spec.loss)
    bad = False
    prefix: dict[int, bytes] = {}
    heap: list[tuple[int, int, bytes]] = []
    tie = 0
    n_total = max(1, (spec.t1 - spec.t0) // step_ns)
    change_at = int(n_total * spec.ssrc_change_at) if spec.ssrc_change_at else -1
    dtmf_at = sorted(rng.randrange(n_total) for _ in range(spec.dtmf))
    talking, spurt_left = True, rng.randrange(50, 400)
    cn_every = max(1, 200 // ptime)
    k = 0
    marker = True
    rtcp_next = spec.t0 + rng.randrange(1000, 5000) * MS

    def emit(send: int, m: bool, ptype: int, payload: bytes, s: int, t: int) -> None:
        nonlocal tie
        if spec.loss:
            nonlocal bad
            bad = (rng.random() >= p_bg) if bad else (rng.random() < p_gb)
            if bad:
                return
        n = len(payload)
        pre = prefix.get(n)
        if pre is None:
            udp = struct.pack("!HHHH", spec.sport, spec.dport, 8 + 12 + n, 0)  # checksum 0: legal over IPv4
            pre = prefix[n] = ethernet(ip_packet(spec.src, spec.dst, 17, udp + bytes(12 + n)))[:42]
        frame = pre + struct.pack("!BBHII", 0x80, ptype | (0x80 if m else 0), s & 0xFFFF, t & 0xFFFFFFFF,
                                  ssrc) + payload
        arrival = send + base_delay + int(abs(rng.gauss(0.0, spec.jitter_ms)) * MS)
        tie += 1
        heapq.heappush(heap, (arrival, tie, frame))
        if spec.dup and rng.random() < spec.dup:
            tie += 1
            heapq.heappush(heap, (arrival + rng.randrange(50_000, 5 * MS), tie, frame))

    def audio_payload() -> bytes:
        n = size or rng.randrange(60, 161)
        return bytes([0xD5]) * n

    while k < n_total:
        send = spec.t0 + int(k * step_ns * skew) + rng.randrange(-300_000, 300_000)
        while heap and heap[0][0] <= send:
            arrival, _t, frame = heapq.heappop(heap)
            yield arrival, frame
        if spec.rtcp and send >= rtcp_next:
            rtcp_next += rng.randrange(4000, 6000) * MS
            sr = struct.pack("!BBHIIIIII", 0x81, 200, 12, ssrc, 0xE9000000 + k, 0, rts & 0xFFFFFFFF, k, k * 160)
            sr += struct.pack("!IIIIII", 0x1234, (2 << 24) | 3, 0x10000 | (seq & 0xFFFF), 40, 0, 0)
            sr += struct.pack("!BBHI", 0x81, 202, 3, ssrc) + b"\x01\x05osbiz\x00"
            tie += 1
            heapq.heappush(heap, (send + base_delay, tie,
                                  eth_udp(spec.src, spec.sport + 1, spec.dst, spec.dport + 1, sr)))
        if 0 <= change_at <= k:
            ssrc, seq, rts, marker = rng.randrange(1 << 32), rng.randrange(65536), rng.randrange(1 << 32), True
            change_at = -1
        if dtmf_at and k >= dtmf_at[0]:
            dtmf_at.pop(0)
            # RFC 4733: one event, updates every ptime with the timestamp of its start, 3 end packets
            digit, updates = rng.randrange(16), rng.randrange(4, 10)
            for u in range(updates + 3):
                end = u >= updates
                dur = ts_step * min(u + 1, updates)
                payload = struct.pack("!BBH", digit, (0x80 if end else 0) | 10, dur)
                emit(spec.t0 + int((k + u) * step_ns * skew), u == 0, 101, payload, seq, rts)
                if not (end and spec.dtmf_same_seq and u < updates + 2):
                    seq += 1
            k += updates + 3
            rts += ts_step * (updates + 3)
            marker = True
            continue
        if spec.vad:
            spurt_left -= 1
            if spurt_left <= 0:
                talking = not talking
                spurt_left = rng.randrange(50, 400) if talking else rng.randrange(25, 150)
                marker = talking
            if not talking:
                if spurt_left % cn_every == 0:
                    emit(send, False, 13, b"\x40", seq, rts)
                    seq += 1
                k += 1
                rts += ts_step
                continue
        emit(send, marker, pt, audio_payload(), seq, rts)
        marker = False
        seq += 1
        rts += ts_step
        k += 1
    while heap:
        arrival, _t, frame = heapq.heappop(heap)
        yield arrival, frame


@dataclass(slots=True)
class Plan:
    """What one call will be: drawn up front so the packet budget can be met."""

    index: int
    t0: int
    outcome: str
    transport: str
    codec: tuple[str, int, int, int, int, float]
    seconds: float


def call(rng: random.Random, plan: Plan, jitter_max_ms: float) -> Iterator[Event]:
    i, t0, transport = plan.index, plan.t0, plan.transport
    cid = f"{rng.getrandbits(64):016x}-{i}@{PBX}"
    pbx_port = 10000 + 2 * rng.randrange(5000)
    far, far_port = rng.choice(FAR_MEDIA), 20000 + 2 * rng.randrange(5000)
    codec = plan.codec
    offer = [codec, *[c for c in CODECS if c[1] != codec[1]][:2]]

    def msg(t: int, data: bytes, from_pbx: bool) -> Event:
        if transport == "tcp":
            return t, TcpMessage(from_pbx, data)
        if transport == "tls":  # opaque application-data records of about the message's size
            rec = b"\x17\x03\x03" + struct.pack("!H", len(data) + 29) + bytes(len(data) + 29)
            src, dst = (PBX, CONNECTOR) if from_pbx else (CONNECTOR, PBX)
            return t, eth_tcp(src, 45000 + i % 1000, dst, TLS_PORT, i * 100000, 0, 0x18, rec) if from_pbx else \
                eth_tcp(src, TLS_PORT, dst, 45000 + i % 1000, i * 100000, 0, 0x18, rec)
        src, dst = (PBX, CONNECTOR) if from_pbx else (CONNECTOR, PBX)
        return t, eth_udp(src, SIP_PORT, dst, SIP_PORT, data)

    def s(first: str, cseq: str, *, body: str = "", from_pbx: bool = True, branch: str = "z9hG4bK1") -> bytes:
        return sip(first, cid, cseq, transport, body=body, branch=branch, from_pbx=from_pbx)

    ruri = f"sip:+4930{rng.randrange(10**6, 10**7)}@{CONNECTOR}"
    yield msg(t0, s(f"INVITE {ruri} SIP/2.0", "1 INVITE", body=sdp(PBX, pbx_port, i, offer, codec[3])), True)
    yield msg(t0 + rng.randrange(3, 30) * MS, s("SIP/2.0 100 Trying", "1 INVITE", from_pbx=False), False)
    outcome = plan.outcome
    if outcome in ("busy", "unavailable", "not-found"):
        code = {"busy": "486 Busy Here", "unavailable": "503 Service Unavailable", "not-found": "404 Not Found"}
        t = t0 + rng.randrange(50, 3000) * MS
        yield msg(t, s(f"SIP/2.0 {code[outcome]}", "1 INVITE", from_pbx=False), False)
        yield msg(t + 2 * MS, s(f"ACK {ruri} SIP/2.0", "1 ACK"), True)
        return
    ring = t0 + rng.randrange(50, 400) * MS
    yield msg(ring, s("SIP/2.0 180 Ringing", "1 INVITE", from_pbx=False), False)
    answer = sdp(far, far_port, i + 7, [codec], codec[3])
    media_t0 = ring + rng.randrange(500, 8000) * MS
    media_t1 = media_t0 + int(plan.seconds * 1e9)
    streams: list[Iterator[Event]] = []
    net = [_network(rng, jitter_max_ms) for _ in range(2)]
    pbx_side = StreamSpec(PBX, pbx_port, far, far_port, codec, media_t0, media_t1, *net[0],
                          dtmf=rng.choice((0, 0, 0, 1, 2, 4)), dtmf_same_seq=rng.random() < 0.5,
                          ssrc_change_at=0.0, rtcp=rng.random() < 0.5)
    far_side = StreamSpec(far, far_port, PBX, pbx_port, codec, media_t0 + rng.randrange(1, 40) * MS, media_t1,
                          *net[1], dtmf=0, dtmf_same_seq=False,
                          ssrc_change_at=rng.uniform(0.2, 0.8) if rng.random() < 0.08 else 0.0,
                          rtcp=pbx_side.rtcp)
    if outcome.startswith("cancelled"):
        cancel = media_t0
        if outcome == "cancelled-early-media":
            yield msg(media_t0 - 20 * MS, s("SIP/2.0 183 Session Progress", "1 INVITE", body=answer,
                                            from_pbx=False), False)
            far_side.t1 = media_t1
            for event in rtp_stream(rng, far_side):
                cancel = event[0] + MS
                yield event
        yield msg(cancel, s(f"CANCEL {ruri} SIP/2.0", "1 CANCEL"), True)
        yield msg(cancel + 20 * MS, s("SIP/2.0 200 OK", "1 CANCEL", from_pbx=False), False)
        yield msg(cancel + 25 * MS, s("SIP/2.0 487 Request Terminated", "1 INVITE", from_pbx=False), False)
        yield msg(cancel + 30 * MS, s(f"ACK {ruri} SIP/2.0", "1 ACK"), True)
        return
    yield msg(media_t0 - 30 * MS, s("SIP/2.0 200 OK", "1 INVITE", body=answer, from_pbx=False), False)
    yield msg(media_t0 - 25 * MS, s(f"ACK {ruri} SIP/2.0", "1 ACK"), True)
    streams.append(rtp_stream(rng, pbx_side))
    if outcome != "one-way":
        streams.append(rtp_stream(rng, far_side))
    t = media_t1 + 100 * MS
    for event in heapq.merge(*streams, key=lambda e: e[0]):
        t = max(t, event[0] + MS)
        yield event
    by_pbx = rng.random() < 0.5
    yield msg(t, s(f"BYE {ruri} SIP/2.0", "2 BYE", from_pbx=by_pbx, branch="z9hG4bK2"), by_pbx)
    yield msg(t + rng.randrange(5, 60) * MS, s("SIP/2.0 200 OK", "2 BYE", from_pbx=not by_pbx, branch="z9hG4bK2"),
              not by_pbx)


def _network(rng: random.Random, jitter_max_ms: float) -> tuple[float, float, float, float, bool]:
    """(jitter σ ms, loss rate, mean burst, duplicate rate, silence suppression) of one path."""
    jitter = math.exp(rng.uniform(math.log(0.3), math.log(jitter_max_ms)))
    loss = 0.0 if rng.random() < 0.4 else rng.uniform(0.0, 0.05)
    dup = 0.0 if rng.random() < 0.7 else rng.uniform(0.0, 0.005)
    return jitter, loss, rng.uniform(1.0, 4.0), dup, rng.random() < 0.15


def housekeeping(t0: int, t_end: int) -> Iterator[Event]:
    """REGISTER (401, then 200) every 60 s and OPTIONS every 30 s over UDP until t_end."""
    n, t = 0, t0
    while t < t_end:
        n += 1
        cid = f"reg-{n}@{PBX}"
        reg = f"REGISTER sip:{CONNECTOR} SIP/2.0"
        yield t, eth_udp(PBX, SIP_PORT, CONNECTOR, SIP_PORT, sip(reg, cid, f"{2 * n} REGISTER", "udp",
                                                                  extra="Expires: 120\r\n"))
        yield t + 20 * MS, eth_udp(CONNECTOR, SIP_PORT, PBX, SIP_PORT, sip(
            "SIP/2.0 401 Unauthorized", cid, f"{2 * n} REGISTER", "udp", from_pbx=False,
            extra='WWW-Authenticate: Digest realm="bench", nonce="abc", algorithm=MD5\r\n'))
        yield t + 30 * MS, eth_udp(PBX, SIP_PORT, CONNECTOR, SIP_PORT, sip(
            reg, cid, f"{2 * n + 1} REGISTER", "udp", branch="z9hG4bK3",
            extra='Expires: 120\r\nAuthorization: Digest username="x", realm="bench", nonce="abc", '
                  'uri="sip:bench", response="00000000000000000000000000000000"\r\n'))
        yield t + 55 * MS, eth_udp(CONNECTOR, SIP_PORT, PBX, SIP_PORT, sip(
            "SIP/2.0 200 OK", cid, f"{2 * n + 1} REGISTER", "udp", from_pbx=False, extra="Expires: 120\r\n"))
        for off in (0, 30_000):
            ocid = f"opt-{n}-{off}@{PBX}"
            ts = t + (off + 500) * MS
            yield ts, eth_udp(PBX, SIP_PORT, CONNECTOR, SIP_PORT, sip(f"OPTIONS sip:{CONNECTOR} SIP/2.0", ocid,
                                                                      "1 OPTIONS", "udp"))
            yield ts + 25 * MS, eth_udp(CONNECTOR, SIP_PORT, PBX, SIP_PORT, sip("SIP/2.0 200 OK", ocid, "1 OPTIONS",
                                                                                "udp", from_pbx=False))
        t += 60_000 * MS


def sources(packets: int, calls: int, seed: int, *, concurrency: int = 80,
            jitter_max_ms: float = 20.0) -> tuple[list[Iterator[Event]], TcpConnection, int]:
    """The event sources (housekeeping + one per call), the TCP connection and the call count.

    Call lengths are drawn (log-normal) and scaled so the media adds up to about ``packets``;
    calls start at random (Poisson) times with about ``concurrency`` in progress at once."""
    rng = random.Random(seed)
    calls = calls or max(10, packets // 1600)
    plans = []
    for i in range(calls):
        outcome = _pick(rng, OUTCOMES)[0]
        plans.append(Plan(i, 0, outcome, _pick(rng, TRANSPORTS)[0], _pick(rng, CODECS),
                          rng.lognormvariate(0.0, 0.8)))
    # packets per second of media, both directions, per second of a call
    rate = {id(p): (2 if p.outcome == "answered" else 1) * 1000.0 / p.codec[3] for p in plans}
    weight = sum(rate[id(p)] * p.seconds for p in plans if p.outcome in ("answered", "one-way"))
    weight += sum(0.1 * rate[id(p)] * p.seconds for p in plans if p.outcome == "cancelled-early-media")
    scale = max(packets * 1.04, 1.0) / max(weight, 1e-9)
    mean_len = 0.0
    for p in plans:
        p.seconds *= scale if p.outcome != "cancelled-early-media" else 0.1 * scale
        mean_len += p.seconds / calls
    span_ns = int(calls * mean_len / concurrency * 1e9) + 1
    t = START_NS + 1000 * MS
    for p in plans:
        p.t0 = t
        t += int(rng.expovariate(1.0) * span_ns / calls)
    t_end = t + int(max(p.seconds for p in plans) * 1e9) + 20_000 * MS
    tcp = TcpConnection(rng)
    srcs: list[Iterator[Event]] = [housekeeping(START_NS, t_end)]
    srcs += [call(random.Random(rng.getrandbits(64)), p, jitter_max_ms) for p in plans]
    return srcs, tcp, calls
