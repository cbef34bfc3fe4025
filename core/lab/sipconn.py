"""One SIP-over-TLS connection of the lab, shared by the PBX side and the connector side.

Theory of operation: a reader task feeds the TLS stream into a ``Framer``. Responses complete
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
from collections.abc import Callable, Coroutine
from typing import Any

from core.errors import ParseError
from core.lab.sipmsg import Framer, SipMessage, build, parse

Observer = Callable[[str, bytes, tuple[str, int], tuple[str, int]], None]
RequestHandler = Callable[["SipConnection", SipMessage], Coroutine[Any, Any, None]]

TRANSACTION_TIMEOUT = 4.0  # Timer F is 32 s on UDP; the lab wants faults to show quickly


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
        msg = parse(data)
        num, method = msg.cseq
        key = (msg.call_id, num, method)
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
                if resp.status >= 200:
                    return resp
                # provisional: an INVITE may ring for a while (Timer C territory)
                deadline = max(deadline, loop.time() + timeout)
        finally:
            self._pending.pop(key, None)

    # --- receiving ---------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        framer = Framer(server=self._server)
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    items = framer.feed(data)
                except ParseError:
                    break  # a peer that sends garbage loses its connection, as on a real SBC
                for item in items:
                    if item == "ping":
                        if not self.writer.is_closing():
                            self.writer.write(b"\r\n")
                    elif item == "pong":
                        self.pongs += 1
                    elif isinstance(item, SipMessage):
                        self._dispatch(item)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()

    def _dispatch(self, msg: SipMessage) -> None:
        if self.observer is not None:
            self.observer("in", msg.raw, self.remote, self.local)
        if msg.is_request:
            task = asyncio.create_task(self._guarded(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        num, method = msg.cseq
        queue = self._pending.get((msg.call_id, num, method))
        if queue is not None:
            queue.put_nowait(msg)

    async def _guarded(self, msg: SipMessage) -> None:
        """A handler that trips over a hostile request answers 500 instead of killing the lab."""
        try:
            await self.handler(self, msg)
        except (ParseError, ValueError, KeyError, IndexError, TypeError, OSError):
            if msg.method != "ACK":
                self.send(build("SIP/2.0 500 Server Internal Error", [
                    *(("Via", v) for v in msg.header_all("via")), ("From", msg.header("from") or ""),
                    ("To", msg.header("to") or ""), ("Call-ID", msg.call_id),
                    ("CSeq", msg.header("cseq") or "")]))

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
        with contextlib.suppress(BaseException):
            await self._reader_task
        self.closed.set()
