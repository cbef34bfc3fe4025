"""Calls for both lab parties: INVITE/100/180/200/ACK … BYE/200 with SDP and G.711 RTP.

Theory of operation: the caller sends an INVITE with an SDP offer (PCMA/8000, RFC 4566), waits
for the final answer, ACKs it (for a non-2xx too: RFC 3261 §17.1.1.3), streams RTP to the
answer's ``c=``/``m=`` address for the hold time (or until the lab stops), then sends BYE. The
callee asks its ``decide`` policy first: a SIP status to reject with, or None to answer (100
Trying, 180 Ringing, 200 OK with SDP) and stream RTP until the BYE. A party counts its trunk
lines from the calls it holds: a call takes a line when it is placed, or when the policy accepts
it — in the same step as the decision, with no await in between — and frees it when the call
ends. So a burst of INVITEs arriving together is decided one after the other against the lines
already taken, never against a count that lags behind the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import ParseError
from core.lab.media import PT_PCMA, Impairment, RtpEndpoint
from core.lab.sipconn import SipConnection, new_branch, new_tag
from core.wire.sdp import Sdp, SdpMedia, build_sdp, parse_sdp
from core.wire.sip import SipMessage
from core.wire.sip_build import build_request, build_response

USER_AGENT = "upscope-lab"
MIN_MEDIA_SECONDS = 0.6  # 30 packets of 20 ms each way before a stop may end an answered call


def sdp(ip: str, port: int, session: int) -> bytes:
    """The offer/answer of a lab party: G.711 A-law in 20-ms packets at ``ip``:``port``."""
    media = SdpMedia("audio", port, "RTP/AVP", (str(PT_PCMA),), ip, {PT_PCMA: ("PCMA", 8000)}, 20.0, "sendrecv")
    return build_sdp(Sdp(ip, ip, (media,)), session_id=session, session_name="upscope-lab")


def sdp_peer(body: bytes) -> tuple[str, int] | None:
    """Where the other party wants its audio: the first audio stream with an IPv4 address."""
    try:
        parsed = parse_sdp(body)
    except ParseError:
        return None
    for m in parsed.media:
        if m.media == "audio" and m.port > 0 and m.address is not None:
            try:
                ipaddress.IPv4Address(m.address)
            except ValueError:
                continue
            return m.address, m.port
    return None


def response(req: SipMessage, status: int, to_tag: str | None = None,
             extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:
    """A response to ``req`` with the lab's Server header (and the SDP content type for a body)."""
    headers = [("Server", USER_AGENT), *(extra or [])]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return build_response(req, status, headers, body, to_tag=to_tag)


@dataclass(slots=True)
class Dialog:
    call_id: str
    rtp: RtpEndpoint
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class CallStats:
    attempted: int = 0
    answered: int = 0
    rejected: dict[int, int] = field(default_factory=dict)


Decide = Callable[[SipMessage], int | None]


class CallAgent:
    """The call half of one party. ``ip`` is where its RTP binds; ``rtp_ports`` the media range."""

    def __init__(self, ip: str, rtp_ports: range, used_ports: set[int],
                 impairment: Callable[[], Impairment], domain: str) -> None:
        self.ip, self.rtp_ports, self.used_ports = ip, rtp_ports, used_ports
        self.impairment, self.domain = impairment, domain
        self.dialogs: dict[str, Dialog] = {}
        self.lines: set[str] = set()  # Call-IDs holding a line (placed, or accepted and not ended)
        self.placed = CallStats()
        self.received = CallStats()
        self.rtp_in = 0  # RTP packets received / sent over all finished calls
        self.rtp_out = 0

    async def _release(self, call_id: str, rtp: RtpEndpoint) -> None:
        self.lines.discard(call_id)
        self.dialogs.pop(call_id, None)
        await rtp.close()
        self.rtp_in += rtp.counter.received
        self.rtp_out += rtp.sent
        self.used_ports.discard(rtp.port)

    @property
    def active(self) -> int:
        """Lines in use."""
        return len(self.lines)

    async def place_call(self, conn: SipConnection, caller: str, callee: str, hold: float,
                         stop: asyncio.Event) -> int:
        """One call from ``caller`` to ``callee`` (numbers); returns the final status (0 = none)."""
        call_id = f"{secrets.token_hex(10)}@{self.ip}"
        self.lines.add(call_id)
        try:
            rtp = await RtpEndpoint.open(self.ip, self.rtp_ports, self.used_ports)
        except OSError:
            self.lines.discard(call_id)
            raise
        dialog = Dialog(call_id, rtp)
        self.dialogs[call_id] = dialog
        self.placed.attempted += 1
        local = f"{conn.local[0]}:{conn.local[1]}"
        from_hdr = f"<sip:{caller}@{self.domain}>;tag={new_tag()}"
        ruri = f"sip:{callee}@{self.domain}"
        invite_branch = new_branch()
        base = [("Via", f"SIP/2.0/TLS {local};branch={invite_branch}"), ("Max-Forwards", "70"),
                ("From", from_hdr), ("To", f"<{ruri}>"), ("Call-ID", call_id)]
        offer = sdp(self.ip, rtp.port, zlib.crc32(call_id.encode()))
        invite = build_request("INVITE", ruri, [
            *base, ("CSeq", "1 INVITE"), ("Contact", f"<sip:{caller}@{local};transport=tls>"),
            ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"), ("User-Agent", USER_AGENT),
            ("Content-Type", "application/sdp")], offer)
        try:
            resp = await conn.request(invite, timeout=6.0)
            if resp is None:
                self.placed.rejected[0] = self.placed.rejected.get(0, 0) + 1
                return 0
            to_hdr = resp.get("to") or f"<{ruri}>"
            status = resp.status or 0
            if status >= 300:
                # ACK for a non-2xx belongs to the INVITE transaction: same branch (§17.1.1.3)
                conn.send(build_request("ACK", ruri, [
                    *base[:2], ("From", from_hdr), ("To", to_hdr), ("Call-ID", call_id),
                    ("CSeq", "1 ACK")]))
                self.placed.rejected[status] = self.placed.rejected.get(status, 0) + 1
                return status
            self.placed.answered += 1
            conn.send(build_request("ACK", ruri, [
                ("Via", f"SIP/2.0/TLS {local};branch={new_branch()}"), ("Max-Forwards", "70"),
                ("From", from_hdr), ("To", to_hdr), ("Call-ID", call_id), ("CSeq", "1 ACK")]))
            peer = sdp_peer(resp.body)
            if peer is not None:
                rtp.start(peer, self.impairment(), zlib.crc32(call_id.encode()))
            # Even when the lab is stopping, let media flow a little both ways first: a call cut
            # between 200 and the first RTP packet back would look like one-way audio.
            settle = min(hold, MIN_MEDIA_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dialog.ended.wait(), settle)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, dialog.ended), hold - settle)
            if not dialog.ended.is_set():
                await conn.request(build_request("BYE", ruri, [
                    ("Via", f"SIP/2.0/TLS {local};branch={new_branch()}"), ("Max-Forwards", "70"),
                    ("From", from_hdr), ("To", to_hdr), ("Call-ID", call_id), ("CSeq", "2 BYE"),
                    ("User-Agent", USER_AGENT)]), timeout=3.0)
            return status
        finally:
            await self._release(call_id, rtp)

    async def answer(self, conn: SipConnection, req: SipMessage, decide: Decide) -> None:
        """Handle an incoming INVITE with the party's policy."""
        self.received.attempted += 1
        verdict = decide(req)
        tag = new_tag()
        if verdict is not None:
            self.received.rejected[verdict] = self.received.rejected.get(verdict, 0) + 1
            conn.send(response(req, verdict, tag))
            return
        self.lines.add(req.call_id)  # taken with the decision: the next INVITE already sees it
        conn.send(response(req, 100))
        try:
            rtp = await RtpEndpoint.open(self.ip, self.rtp_ports, self.used_ports)
        except OSError:
            self.lines.discard(req.call_id)
            raise
        dialog = Dialog(req.call_id, rtp)
        self.dialogs[req.call_id] = dialog
        try:
            conn.send(response(req, 180, tag))
            await asyncio.sleep(0.1)  # a short ring so the ladder shows 180 before 200
            local = f"{conn.local[0]}:{conn.local[1]}"
            answer_sdp = sdp(self.ip, rtp.port, zlib.crc32(req.call_id.encode()) ^ 1)
            conn.send(response(req, 200, tag, [("Contact", f"<sip:lab@{local};transport=tls>")],
                               answer_sdp))
            self.received.answered += 1
            peer = sdp_peer(req.body)
            if peer is not None:
                rtp.start(peer, self.impairment(), zlib.crc32(req.call_id.encode()) ^ 1)
            # The caller hangs up; the bound keeps a lost BYE from holding a line for ever.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(dialog.ended, conn.closed), 120.0)
        finally:
            await self._release(req.call_id, rtp)

    def bye(self, conn: SipConnection, req: SipMessage) -> None:
        dialog = self.dialogs.get(req.call_id)
        conn.send(response(req, 200 if dialog else 481))
        if dialog is not None:
            dialog.ended.set()


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
