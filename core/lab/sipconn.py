"""One SIP-over-TLS connection of the lab, shared by the PBX side and the connector side.

Theory of operation: a reader task feeds the TLS stream into the SIP codec's stream framer
(``core.wire.sip.SipStreamFramer``; the client side marks every read as a segment end, so a
lone CRLF there is the server's pong at once). Responses complete
the pending client transaction keyed by (Call-ID, CSeq number, CSeq method); requests go to the
owner's handler, each in its own task so a slow handler (a ringing phone) never blocks the
stream. RFC 5626 pings are answered with a pong here. Every message sent or received is also
handed to ``observer`` (the PBX side writes its OSBiz trace log from it). Over TLS there are no
retransmissions (RFC 3261 §17.1.1.2, reliable transport), so a transaction is one future with a
timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from core.errors import ParseError
from core.wire.sip import NEED_DATA, CrlfPing, CrlfPong, SipFrame, SipMessage, SipStreamFramer, parse_message
from core.wire.sip_build import BRANCH_MAGIC, build_response

Observer = Callable[[str, bytes, tuple[str, int], tuple[str, int]], None]
RequestHandler = Callable[["SipConnection", SipMessage], Coroutine[Any, Any, None]]

TRANSACTION_TIMEOUT = 4.0  # Timer F is 32 s on UDP; the lab wants faults to show quickly


def new_tag() -> str:
    return secrets.token_hex(4)


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(6)


def _key(msg: SipMessage) -> tuple[str, int, str]:
    """The client transaction a message belongs to: (Call-ID, CSeq number, CSeq method)."""
    number, method = msg.cseq or (0, "?")
    return msg.call_id, number, method


class SipConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: RequestHandler,
        observer: Observer | None = None,
        server: bool = False,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.handler, self.observer, self._server = handler, observer, server
        sock = writer.get_extra_info("sockname") or ("?", 0)
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.local: tuple[str, int] = (str(sock[0]), int(sock[1]))
        self.remote: tuple[str, int] = (str(peer[0]), int(peer[1]))
        self._pending: dict[tuple[str, int, str], asyncio.Queue[SipMessage]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()
        self.pongs = 0
        self._reader_task = asyncio.create_task(self._read_loop())

    # --- sending -----------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        if self.observer is not None and data.strip():
            self.observer("out", data, self.local, self.remote)

    def send_ping(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(b"\r\n\r\n")

    async def request(self, data: bytes, timeout: float = TRANSACTION_TIMEOUT) -> SipMessage | None:
        """Send a request and return its final response (None on timeout or closed connection)."""
        key = _key(parse_message(data, datagram=False))
        queue: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._pending[key] = queue
        try:
            self.send(data)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                left = deadline - loop.time()
                if left <= 0 or self.closed.is_set():
                    return None
                try:
                    resp = await asyncio.wait_for(queue.get(), min(left, 0.5))
                except TimeoutError:
                    continue
                if (resp.status or 0) >= 200:
                    return resp
                # provisional: an INVITE may ring for a while (Timer C territory)
                deadline = max(deadline, loop.time() + timeout)
        finally:
            self._pending.pop(key, None)

    # --- receiving ---------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        framer = SipStreamFramer()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                framer.feed(data)
                if not self._server:
                    framer.segment_boundary()  # the side that pings receives whole pongs
                try:
                    while (event := framer.next_event()) is not NEED_DATA:
                        if isinstance(event, SipFrame):
                            self._dispatch(event)
                        elif isinstance(event, CrlfPing):
                            if not self.writer.is_closing():
                                self.writer.write(b"\r\n")
                        elif isinstance(event, CrlfPong):
                            self.pongs += 1
                except ParseError:
                    break  # a peer that sends garbage loses its connection, as on a real SBC
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()

    def _dispatch(self, frame: SipFrame) -> None:
        msg = frame.message
        if self.observer is not None:
            self.observer("in", frame.raw, self.remote, self.local)
        if msg.is_request:
            task = asyncio.create_task(self._guarded(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        queue = self._pending.get(_key(msg))
        if queue is not None:
            queue.put_nowait(msg)

    async def _guarded(self, msg: SipMessage) -> None:
        """A handler that trips over a hostile request answers 500 instead of killing the lab."""
        try:
            await self.handler(self, msg)
        except (ParseError, ValueError, KeyError, IndexError, TypeError, OSError):
            if msg.method != "ACK":
                self.send(build_response(msg, 500))

    async def close(self, graceful: bool = True) -> None:
        """Close; ``graceful=False`` aborts (a dead path would hold a TLS close_notify for ever)."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            if graceful:
                self.writer.close()
                await asyncio.wait_for(self.writer.wait_closed(), 2.0)
            else:
                self.writer.transport.abort()
        self._reader_task.cancel()
        # wait() neither raises the task's end nor swallows a cancellation of this close().
        await asyncio.wait({self._reader_task})
        self.closed.set()
