"""Calls for both lab parties: INVITE/100/180/200/ACK … BYE/200 with SDP and G.711 RTP.

Theory of operation: the caller sends an INVITE with an SDP offer (PCMA/8000, RFC 4566), waits
for the final answer, ACKs it (for a non-2xx too: RFC 3261 §17.1.1.3), streams RTP to the
answer's ``c=``/``m=`` address for the hold time (or until the lab stops), then sends BYE. The
callee asks its ``decide`` policy first: a SIP status to reject with, or None to answer (100
Trying, 180 Ringing, 200 OK with SDP) and stream RTP until the BYE. Both sides keep a dialog per
Call-ID so the line count (trunk lines) is the number of open dialogs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from core.lab.media import Impairment, RtpEndpoint
from core.lab.sipconn import SipConnection
from core.lab.sipmsg import SipMessage, build, new_branch, new_tag

#: Reason phrases of RFC 3261 §21 for the codes the lab uses.
REASONS = {
    100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 481: "Call/Transaction Does Not Exist", 486: "Busy Here",
    488: "Not Acceptable Here", 500: "Server Internal Error", 503: "Service Unavailable",
}

USER_AGENT = "upscope-lab"
MIN_MEDIA_SECONDS = 0.6  # 30 packets of 20 ms each way before a stop may end an answered call


def sdp(ip: str, port: int, session: int) -> bytes:
    lines = [
        "v=0", f"o=- {session} {session} IN IP4 {ip}", "s=upscope-lab", f"c=IN IP4 {ip}", "t=0 0",
        f"m=audio {port} RTP/AVP 8", "a=rtpmap:8 PCMA/8000", "a=ptime:20", "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def sdp_peer(body: bytes) -> tuple[str, int] | None:
    text = body.decode("utf-8", "replace")
    c = re.search(r"(?m)^c=IN IP4 ([0-9.]{7,15})\s*$", text)
    m = re.search(r"(?m)^m=audio ([0-9]{1,5}) ", text)
    if not c or not m or not 0 < int(m.group(1)) < 65536:
        return None
    try:
        ipaddress.IPv4Address(c.group(1))
    except ValueError:
        return None
    return c.group(1), int(m.group(1))


def response(req: SipMessage, status: int, to_tag: str | None = None,
             extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:
    """A response to ``req`` (RFC 3261 §8.2.6): Via, From, To (+tag), Call-ID, CSeq copied."""
    headers = [("Via", v) for v in req.header_all("via")]
    to = req.header("to") or ""
    if to_tag and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    headers += [("From", req.header("from") or ""), ("To", to), ("Call-ID", req.call_id),
                ("CSeq", req.header("cseq") or "")]
    headers += [("Server", USER_AGENT), *(extra or [])]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return build(f"SIP/2.0 {status} {REASONS.get(status, 'Unknown')}", headers, body)


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
        self.placed = CallStats()
        self.received = CallStats()
        self.rtp_in = 0  # RTP packets received / sent over all finished calls
        self.rtp_out = 0

    async def _release(self, call_id: str, rtp: RtpEndpoint) -> None:
        self.dialogs.pop(call_id, None)
        await rtp.close()
        self.rtp_in += rtp.counter.received
        self.rtp_out += rtp.sent
        self.used_ports.discard(rtp.port)

    @property
    def active(self) -> int:
        return len(self.dialogs)

    async def place_call(self, conn: SipConnection, caller: str, callee: str, hold: float,
                         stop: asyncio.Event) -> int:
        """One call from ``caller`` to ``callee`` (numbers); returns the final status (0 = none)."""
        rtp = await RtpEndpoint.open(self.ip, self.rtp_ports, self.used_ports)
        call_id = f"{secrets.token_hex(10)}@{self.ip}"
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
        invite = build(f"INVITE {ruri} SIP/2.0", [
            *base, ("CSeq", "1 INVITE"), ("Contact", f"<sip:{caller}@{local};transport=tls>"),
            ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"), ("User-Agent", USER_AGENT),
            ("Content-Type", "application/sdp")], offer)
        try:
            resp = await conn.request(invite, timeout=6.0)
            if resp is None:
                self.placed.rejected[0] = self.placed.rejected.get(0, 0) + 1
                return 0
            to_hdr = resp.header("to") or f"<{ruri}>"
            if resp.status >= 300:
                # ACK for a non-2xx belongs to the INVITE transaction: same branch (§17.1.1.3)
                conn.send(build(f"ACK {ruri} SIP/2.0", [
                    *base[:2], ("From", from_hdr), ("To", to_hdr), ("Call-ID", call_id),
                    ("CSeq", "1 ACK")]))
                self.placed.rejected[resp.status] = self.placed.rejected.get(resp.status, 0) + 1
                return resp.status
            self.placed.answered += 1
            conn.send(build(f"ACK {ruri} SIP/2.0", [
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
                await conn.request(build(f"BYE {ruri} SIP/2.0", [
                    ("Via", f"SIP/2.0/TLS {local};branch={new_branch()}"), ("Max-Forwards", "70"),
                    ("From", from_hdr), ("To", to_hdr), ("Call-ID", call_id), ("CSeq", "2 BYE"),
                    ("User-Agent", USER_AGENT)]), timeout=3.0)
            return resp.status
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
        conn.send(response(req, 100))
        rtp = await RtpEndpoint.open(self.ip, self.rtp_ports, self.used_ports)
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
