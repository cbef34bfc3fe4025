"""The port-443-open scenario: the OSBiz's web front end answering on its TCP "443", and the
internet (from the connector's address) knocking on it once per keepalive interval."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl


class Port443:
    """A listener bound at set-up that answers only from the moment the fault is switched on;
    once switched off it stays closed (connections are refused)."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext | None) -> None:
        self._sock: socket.socket | None = sock
        self._ctx = ctx
        self._server: asyncio.AbstractServer | None = None
        self.ip, self.port = sock.getsockname()[:2]
        self.counts = {"answered": 0, "refused": 0}

    async def switch(self, on: bool) -> None:
        if on and self._server is None and self._sock is not None:
            self._sock.listen(8)
            self._server = await asyncio.start_server(_wbm_answer, sock=self._sock, ssl=self._ctx)
        elif not on and self._server is not None:
            self._server.close()  # closes the socket too
            self._server = None
            self._sock = None

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sock is not None:
            self._sock.close()

    async def probe(self, source_ip: str, ctx: ssl.SSLContext, interval: float, stop: asyncio.Event) -> None:
        """Until ``stop``: one HTTPS GET per ``interval`` from ``source_ip``, counted by outcome."""
        while not stop.is_set():
            writer: asyncio.StreamWriter | None = None
            try:
                reader, w = await asyncio.wait_for(asyncio.open_connection(
                    self.ip, self.port, ssl=ctx, server_hostname=self.ip,
                    local_addr=(source_ip, 0)), 3.0)
                writer = w
                w.write(f"GET / HTTP/1.1\r\nHost: {self.ip}\r\nConnection: close\r\n\r\n".encode())
                await asyncio.wait_for(reader.read(), 3.0)
                self.counts["answered"] += 1
            except (TimeoutError, OSError, ssl.SSLError):
                self.counts["refused"] += 1
            finally:
                if writer is not None:
                    writer.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


async def _wbm_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The OSBiz web front end (WBM) answering on 443: any request gets a login page."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3.0)
        body = b"<html><title>OpenScape Business Assistant</title></html>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
    writer.close()
