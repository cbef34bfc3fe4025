"""The emulated Unify Phone telephony connector: SIP registrar/proxy over TLS, STUN, REST.

Theory of operation: the SIP listener accepts plain TCP and upgrades to TLS itself, so the
``sip-tls-blocked`` fallback (no rights for a firewall rule) can hold a connection open without
ever answering the ClientHello. A REGISTER without valid credentials is challenged (401, digest
MD5 with qop=auth, RFC 2617 / RFC 7616 §3.3); valid credentials for the current API key give a 200
whose Contact list holds every live binding of the trunk (so a clone shows up as a second
Contact); a digest over the wrong key is answered 403. The last registered connection is the
trunk the connector places its own calls on, as Unify Phone clients calling through the OSBiz.
The REST endpoint (HTTP/1.1 over TLS) checks ``X-API-Key`` and, for the Unify Video flavour, the
bearer JWT; it is the provisioning API the OSBiz uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt as pyjwt

from core.errors import ParseError
from core.lab.calls import CallAgent, response
from core.lab.media import Impairment
from core.lab.sipconn import SipConnection
from core.wire.digest import DigestChallenge, format_challenge, parse_credentials, verify
from core.wire.digits import capped
from core.wire.sip import SipMessage, header_param, user_of

REALM = "phoneapp.unify.com"
MAX_EXPIRES = 3600
MAX_BINDINGS = 16  # per trunk: a real connector would not keep an unbounded contact list either


@dataclass(slots=True)
class Binding:
    contact: str
    expires_at: float
    conn: SipConnection


class Connector:
    def __init__(self, *, ip: str, api_key: Callable[[], str], jwt_key: bytes,
                 flavour: str, directory: Callable[[], dict[str, str]],
                 impairment: Callable[[], Impairment], rtp_ports: range, used_ports: set[int]) -> None:
        self.ip, self.api_key, self.jwt_key, self.flavour = ip, api_key, jwt_key, flavour
        self.directory = directory
        self.calls = CallAgent(ip, rtp_ports, used_ports, impairment, REALM)
        self.bindings: dict[str, dict[str, Binding]] = {}
        self.nonces: set[str] = set()
        self.conns: set[SipConnection] = set()
        self.registers: dict[int, int] = {}
        self.rest_answers: dict[int, int] = {}
        self._held: set[asyncio.StreamWriter] = set()

    # --- SIP ---------------------------------------------------------------------------------------
    async def on_sip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A TLS connection (the handshake is done by the server) becomes a SIP connection."""
        conn = SipConnection(reader, writer, self._on_request, server=True)
        self.conns.add(conn)
        try:
            await conn.closed.wait()
        finally:
            self.conns.discard(conn)
            for aor in self.bindings.values():
                for key in [k for k, b in aor.items() if b.conn is conn]:
                    del aor[key]
            await conn.close()

    async def on_blackhole(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Firewall emulation without rights for a rule: TCP is accepted, TLS never answered."""
        self._held.add(writer)
        with contextlib.suppress(Exception):
            await reader.read()  # until the client gives up
        self._held.discard(writer)
        writer.close()

    def trunk(self) -> SipConnection | None:
        """The connection of the most recent live binding (where calls to the OSBiz go)."""
        now = time.monotonic()
        live = [b for aor in self.bindings.values() for b in aor.values() if b.expires_at > now]
        live.sort(key=lambda b: b.expires_at)
        return live[-1].conn if live else None

    async def _on_request(self, conn: SipConnection, req: SipMessage) -> None:
        method = req.method
        if method == "REGISTER":
            self._register(conn, req)
        elif method == "OPTIONS":
            conn.send(response(req, 200, None, [("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER"),
                                                ("Accept", "application/sdp")]))
        elif method == "INVITE":
            await self.calls.answer(conn, req, self._decide)
        elif method == "BYE":
            self.calls.bye(conn, req)
        elif method == "ACK":
            return
        else:
            conn.send(response(req, 501 if method != "CANCEL" else 481))

    def _decide(self, req: SipMessage) -> int | None:
        """A Unify Phone client answers when its number is known; a stranger is 404."""
        if not any(b.conn for aor in self.bindings.values() for b in aor.values()):
            return 403
        return None if user_of(req.uri or "") in self.directory() else 404

    def _register(self, conn: SipConnection, req: SipMessage) -> None:
        try:
            credentials = parse_credentials(req.get("authorization") or "")
        except ParseError:
            credentials = None
        if credentials is not None and credentials.nonce in self.nonces:
            self.nonces.discard(credentials.nonce)
            if not verify(credentials, password=self.api_key(), method="REGISTER"):
                self._count(403)
                conn.send(response(req, 403, secrets.token_hex(4)))
                return
        else:
            fresh = secrets.token_hex(16)
            self.nonces.add(fresh)
            if len(self.nonces) > 256:  # bounded: a flood of unanswered challenges
                self.nonces.pop()
            self._count(401)
            challenge = DigestChallenge(REALM, fresh, "MD5", ("auth",))
            conn.send(response(req, 401, secrets.token_hex(4), [("WWW-Authenticate", format_challenge(challenge))]))
            return
        aor = user_of(req.get("to") or "") or "trunk"
        contact = req.get("contact") or ""
        requested = header_param(contact, "expires") or req.get("expires") or str(MAX_EXPIRES)
        granted = capped(requested.strip(), MAX_EXPIRES)
        expires = MAX_EXPIRES if granted is None else granted
        inner = re.search(r"<([^>]*)>", contact)
        uri = inner.group(1) if inner else contact.split(";", 1)[0].strip()
        if not uri:
            conn.send(response(req, 400, secrets.token_hex(4)))
            return
        table = self.bindings.setdefault(aor, {})
        if expires == 0:
            table.pop(uri, None)
        elif uri in table or len(table) < MAX_BINDINGS:
            table[uri] = Binding(re.sub(r";\s*expires=\d+", "", contact), time.monotonic() + expires, conn)
        now = time.monotonic()
        contacts = [("Contact", f"{b.contact};expires={max(1, int(b.expires_at - now))}")
                    for b in table.values() if b.expires_at > now]
        self._count(200)
        conn.send(response(req, 200, secrets.token_hex(4),
                           [*contacts, ("Expires", str(expires))]))

    def _count(self, status: int) -> None:
        self.registers[status] = self.registers.get(status, 0) + 1

    # --- REST --------------------------------------------------------------------------------------
    async def on_rest(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, OSError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:]) if k}
        status, body = self._rest_verdict(headers)
        self.rest_answers[status] = self.rest_answers.get(status, 0) + 1
        payload = json.dumps(body).encode()
        reason = {200: "OK", 401: "Unauthorized"}.get(status, "Error")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
        with contextlib.suppress(Exception):
            await writer.drain()
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 2.0)

    def _rest_verdict(self, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        if not secrets.compare_digest(headers.get("x-api-key", "").encode("latin-1"), self.api_key().encode()):
            return 401, {"error": "invalid_api_key", "message": "API key invalid or regenerated"}
        if self.flavour == "unify-video":
            bearer = headers.get("authorization", "")
            if not bearer.lower().startswith("bearer ") or not bearer[7:].strip():
                return 401, {"error": "jwt_missing", "message": "no JWT configured for the tenant"}
            try:
                pyjwt.decode(bearer[7:].strip(), self.jwt_key, algorithms=["HS256"],
                             options={"verify_aud": False})
            except pyjwt.ExpiredSignatureError:
                return 401, {"error": "jwt_expired", "message": "JWT expired"}
            except pyjwt.PyJWTError:
                return 401, {"error": "jwt_invalid", "message": "JWT invalid"}
        return 200, {"users": sorted(self.directory())}

    async def close(self) -> None:
        for writer in list(self._held):
            writer.close()
        for conn in list(self.conns):
            await conn.close()
