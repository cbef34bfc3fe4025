"""Media and STUN for the lab: G.711 A-law RTP with 20-ms packets, and RFC 5389 binding.

RTP (RFC 3550 §5.1): version 2, payload type 8 (PCMA, RFC 3551 table 4), 160 samples = 20 ms
at 8 kHz per packet, timestamp += 160, sequence += 1. The sender paces on an absolute schedule so
the packet clock does not drift. Impairment is applied at send time: loss as an evenly spread
schedule (exactly ``loss_pct`` of the packets, the first within 100 / ``loss_pct`` packets, so
every impaired call loses packets however short), jitter as a random extra delay from a
generator seeded per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import socket
from dataclasses import dataclass
from typing import cast

from core.errors import ParseError
from core.wire import stun
from core.wire.rtp import build_rtp, parse_rtp

PT_PCMA = 8           # RFC 3551: PCMA, 8000 Hz
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
PACKET_INTERVAL = 0.020

# --- G.711 A-law (ITU-T G.711 §A) ----------------------------------------------------------------

def _alaw(sample: int) -> int:
    """16-bit linear PCM sample → A-law byte (segment/mantissa encoding, even bits inverted)."""
    sign = 0x80 if sample >= 0 else 0x00
    mag = min(abs(sample) >> 3, 0x0FFF)  # 13-bit magnitude
    if mag < 32:
        code = mag >> 1
    else:
        seg = mag.bit_length() - 5  # 1..7
        code = (seg << 4) | ((mag >> seg) & 0x0F)
    return (code | sign) ^ 0x55


def _tone_frame(freq: float = 400.0, level: float = 0.25) -> bytes:
    """One 20-ms frame of a 400-Hz tone; 400 Hz divides 8 kHz, so every frame is identical."""
    return bytes(
        _alaw(int(level * 32767 * math.sin(2 * math.pi * freq * n / 8000)))
        for n in range(SAMPLES_PER_PACKET)
    )


TONE = _tone_frame()


@dataclass(frozen=True, slots=True)
class Impairment:
    """What the sender does to its own stream: loss in percent, jitter as max extra delay in ms."""

    loss_pct: float = 0.0
    jitter_ms: float = 0.0
    mute: bool = False  # send nothing at all (the one-way-audio fault)


def _lost(n: int, loss_pct: float) -> bool:
    """Whether packet ``n`` (0-based) is dropped: one more drop each time n·loss/100 passes a whole number."""
    return (n + 1) * loss_pct // 100 > n * loss_pct // 100


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            parse_rtp(data)
        except ParseError:
            return
        self.received += 1


class RtpEndpoint:
    """A bound UDP socket that receives (and counts) RTP and can send one stream to a peer."""

    def __init__(self, transport: asyncio.DatagramTransport, counter: _Counter, port: int) -> None:
        self.transport, self.counter, self.port = transport, counter, port
        self.sent = 0
        self.send_errors = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, ports: range, used: set[int]) -> RtpEndpoint:
        loop = asyncio.get_running_loop()
        for port in ports:
            if port in used or port % 2:  # RTP on even ports, RFC 3550 §11
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            counter = _Counter()
            transport, _ = await loop.create_datagram_endpoint(lambda c=counter: c, sock=sock)  # type: ignore[misc]
            used.add(port)
            return cls(transport, counter, port)
        raise OSError(f"no free even UDP port on {host} in {ports.start}-{ports.stop - 1}")

    def start(self, peer: tuple[str, int], impairment: Impairment, seed: int) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._send_loop(peer, impairment, random.Random(seed)))

    async def _send_loop(self, peer: tuple[str, int], imp: Impairment, rng: random.Random) -> None:
        loop = asyncio.get_running_loop()
        seq, ts, ssrc = rng.randrange(1 << 16), rng.randrange(1 << 32), secrets.randbits(32)
        start = loop.time()
        n = 0
        while True:
            if not imp.mute and not _lost(n, imp.loss_pct):
                packet = build_rtp(PT_PCMA, seq + n, ts + n * SAMPLES_PER_PACKET, ssrc, TONE, marker=n == 0)
                delay = rng.uniform(0, imp.jitter_ms / 1000) if imp.jitter_ms > 0 else 0.0
                if delay:
                    loop.call_later(delay, self._emit, packet, peer)
                else:
                    self._emit(packet, peer)
            n += 1
            await asyncio.sleep(max(0.0, start + n * PACKET_INTERVAL - loop.time()))

    def _emit(self, packet: bytes, peer: tuple[str, int]) -> None:
        if self.transport.is_closing():
            return
        try:
            self.transport.sendto(packet, peer)
        except OSError:  # an unreachable peer (a real server's SDP) must not end the call
            self.send_errors += 1
            return
        self.sent += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.transport.close()


# --- STUN binding (RFC 5389 §7.3) ----------------------------------------------------------------

class StunServer(asyncio.DatagramProtocol):
    """Answers binding requests with the source address; ignores anything else (RFC 5389 §7.3)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            request = stun.parse_datagram(data)
        except ParseError:
            return
        if (request.method, request.klass, request.classic) == ("Binding", "request", False) and self.transport:
            txid = bytes.fromhex(request.transaction_id)
            self.transport.sendto(stun.build_binding_success(txid, (str(addr[0]), int(addr[1])), "upscope-lab"), addr)
            self.answered += 1
