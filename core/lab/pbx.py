"""The emulated OSBiz trunk side ("Unify Phone (Cloud)" native SIP server trunk over TLS).

Theory of operation: ``run`` keeps one TLS connection to the connector. On it the PBX
registers with the API key as digest password (401 → credentials → 200), refreshes at half the
granted expiry, sends an OPTIONS ping every keepalive interval and an RFC 5626 CRLF ping between
them; an unanswered OPTIONS or a lost connection means reconnect (bounded back-off). Between
pings it probes STUN and calls the provisioning REST API (with the JWT on the Unify Video
flavour). Incoming INVITEs pass ``decide``, which applies the OSBiz rules to the *current* site
file (software support, route flag, trunk lines, numbering plan, station type, licenses); the
SIP codes are documented in ``core.lab.scenarios``. A failed REGISTER is retried every keepalive
interval, as a real trunk keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import ParseError
from core.lab.calls import CallAgent, response
from core.lab.media import Impairment
from core.lab.sipconn import TRANSACTION_TIMEOUT, Observer, SipConnection, new_branch, new_tag
from core.wire import stun
from core.wire.digest import answer, format_credentials, parse_challenge
from core.wire.digits import capped
from core.wire.sip import SipMessage, header_param, user_of
from core.wire.sip_build import build_request

USER_AGENT = "OpenScape Business V3R3.0.0 (upscope-lab)"


@dataclass(slots=True)
class PbxStats:
    registered: bool = False
    register_answers: dict[int, int] = field(default_factory=dict)
    options_ok: int = 0
    crlf_pongs: int = 0
    connects: int = 0
    connect_failures: int = 0
    stun_answers: int = 0
    rest_answers: dict[int, int] = field(default_factory=dict)


class _StunClient(asyncio.DatagramProtocol):
    def __init__(self, stats: PbxStats) -> None:
        self.stats = stats

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            message = stun.parse_datagram(data)
        except ParseError:
            return
        if (message.method, message.klass) == ("Binding", "success"):
            self.stats.stun_answers += 1


class Pbx:
    def __init__(self, *, ip: str, site: Callable[[], dict[str, Any]],
                 plan: Callable[[], dict[str, str]], connector: tuple[str, int],
                 ctx: ssl.SSLContext, server_hostname: str | None, stun: tuple[str, int] | None,
                 rest: tuple[str, int] | None, rest_ctx: ssl.SSLContext | None,
                 jwt: Callable[[], str | None], keepalive: float, register_expires: int,
                 observer: Observer | None, rtp_ports: range, used_ports: set[int],
                 instance: str) -> None:
        self.ip, self.site, self.plan, self.connector, self.ctx = ip, site, plan, connector, ctx
        self.server_hostname, self.stun, self.rest, self.rest_ctx = server_hostname, stun, rest, rest_ctx
        self.jwt, self.keepalive, self.register_expires = jwt, keepalive, register_expires
        self.observer, self.instance = observer, instance
        self.stats = PbxStats()
        self.conn: SipConnection | None = None
        self.calls = CallAgent(ip, rtp_ports, used_ports, lambda: Impairment(), self.domain)
        self._reg_call_id = f"{secrets.token_hex(10)}@{ip}"
        self._refresh = asyncio.Event()  # set: register now instead of at the next refresh time
        self._reg_tag = new_tag()
        self._cseq = 0

    @property
    def domain(self) -> str:
        return str(self.site()["connectivity"].get("domain") or "phoneapp.unify.com")

    @property
    def username(self) -> str:
        return f"osbiz-{self.site()['system']['name']}"

    # --- connection life ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        stun_task = asyncio.create_task(self._side_probes(stop))
        try:
            while not stop.is_set():
                conn = await self._connect()
                if conn is None:
                    failures += 1
                    await _wait(stop, min(0.5 * 2 ** min(failures, 3), 4.0))
                    continue
                failures = 0
                self.conn = conn
                alive = True
                try:
                    alive = await self._serve(conn, stop)
                finally:
                    if alive and stop.is_set() and self.stats.registered and not conn.closed.is_set():
                        await self._register(conn, 0)
                    self.stats.registered = False
                    self.stats.crlf_pongs += conn.pongs
                    self.conn = None
                    await conn.close(graceful=alive)
        finally:
            stun_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stun_task

    async def _connect(self) -> SipConnection | None:
        self.stats.connects += 1
        try:
            reader, w = await asyncio.wait_for(asyncio.open_connection(
                self.connector[0], self.connector[1], ssl=self.ctx,
                server_hostname=self.server_hostname, local_addr=(self.ip, 0),
                ssl_handshake_timeout=3.0), 4.0)
        except (TimeoutError, OSError, ssl.SSLError):
            self.stats.connect_failures += 1
            return None
        return SipConnection(reader, w, self._on_request, self.observer)

    async def _serve(self, conn: SipConnection, stop: asyncio.Event) -> bool:
        """Keep the trunk up until stop; False when the path died (no answer to a request)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        next_register = now
        next_options = now + self.keepalive
        next_crlf = now + self.keepalive / 2
        while not stop.is_set() and not conn.closed.is_set():
            now = loop.time()
            if now >= next_register or self._refresh.is_set():
                self._refresh.clear()
                granted = await self._register(conn, self.register_expires)
                if granted is None:
                    return False  # no answer at all: the path is broken, reconnect
                next_register = loop.time() + (granted / 2 if granted else self.keepalive)
            elif now >= next_options:
                next_options = now + self.keepalive
                if not await self._options(conn):
                    return False  # the connector is gone: reconnect
            elif now >= next_crlf:
                next_crlf = now + self.keepalive
                conn.send_ping()
            wake = min(next_register, next_options, next_crlf) - loop.time()
            if wake > 0:
                await _wait(stop, wake, conn.closed, self._refresh)
        return not conn.closed.is_set()

    def register_now(self) -> None:
        """Refresh the registration now (its 200 then lists every binding of the trunk)."""
        self._refresh.set()

    def _base(self, method: str, ruri: str, call_id: str, to_tag: str | None = None) -> list[tuple[str, str]]:
        assert self.conn is not None
        self._cseq += 1
        aor = f"sip:{self.username}@{self.domain}"
        local = f"{self.conn.local[0]}:{self.conn.local[1]}"
        return [
            ("Via", f"SIP/2.0/TLS {local};branch={new_branch()};rport"), ("Max-Forwards", "70"),
            ("From", f"<{aor}>;tag={self._reg_tag if method == 'REGISTER' else new_tag()}"),
            ("To", f"<{aor if method == 'REGISTER' else ruri}>"),
            ("Call-ID", call_id), ("CSeq", f"{self._cseq} {method}"), ("User-Agent", USER_AGENT),
        ]

    @property
    def _timeout(self) -> float:
        # An unanswered keepalive must be noticed within about one interval.
        return min(TRANSACTION_TIMEOUT, max(1.0, self.keepalive))

    async def _register(self, conn: SipConnection, expires: int) -> int | None:
        """REGISTER (one digest retry) → granted expiry; 0 = rejected, None = no answer."""
        ruri = f"sip:{self.domain}"
        local = f"{conn.local[0]}:{conn.local[1]}"
        contact = (f"<sip:{self.username}@{local};transport=tls>;"
                   f'+sip.instance="<urn:uuid:{self.instance}>";expires={expires}')
        extra = [("Contact", contact), ("Expires", str(expires)), ("Supported", "path, outbound"),
                 ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")]
        resp = await conn.request(build_request("REGISTER", ruri,
                                                [*self._base("REGISTER", ruri, self._reg_call_id), *extra]),
                                  self._timeout)
        if resp is not None and resp.status in (401, 407):
            self._note(resp.status)
            auth = self._credentials(resp, ruri)
            if auth is not None:
                resp = await conn.request(build_request("REGISTER", ruri, [
                    *self._base("REGISTER", ruri, self._reg_call_id), *extra, auth]), self._timeout)
        if resp is None:
            self.stats.registered = False
            return None
        status = resp.status or 0
        self._note(status)
        if status != 200 or expires == 0:
            self.stats.registered = False
            return 0
        self.stats.registered = True
        mine = [c for c in resp.get_all("contact") if local in c]
        granted = (header_param(mine[0], "expires") if mine else None) or resp.get("expires") or ""
        seconds = capped(granted.strip(), 2**31 - 1)
        return expires if seconds is None else max(1, seconds)

    def _credentials(self, challenge: SipMessage, ruri: str) -> tuple[str, str] | None:
        """The (Proxy-)Authorization header answering a 401/407 with the API key as password."""
        www = challenge.status == 401
        value = challenge.get("www-authenticate" if www else "proxy-authenticate") or ""
        try:
            parsed = parse_challenge(value)
        except ParseError:
            return None  # a challenge the PBX cannot answer: the 401/407 is the final answer
        password = str(self.site()["connectivity"].get("api_key") or "")
        creds = answer(parsed, username=self.username, password=password, method="REGISTER", uri=ruri,
                       cnonce=secrets.token_hex(8))
        return ("Authorization" if www else "Proxy-Authorization"), format_credentials(creds)

    def _note(self, status: int) -> None:
        self.stats.register_answers[status] = self.stats.register_answers.get(status, 0) + 1

    async def _options(self, conn: SipConnection) -> bool:
        ruri = f"sip:{self.domain}"
        call_id = f"{secrets.token_hex(10)}@{self.ip}"
        resp = await conn.request(build_request("OPTIONS", ruri, [
            *self._base("OPTIONS", ruri, call_id), ("Accept", "application/sdp")]), self._timeout)
        if resp is None:
            return False
        self.stats.options_ok += 1
        return True

    async def _side_probes(self, stop: asyncio.Event) -> None:
        """STUN binding and the provisioning REST call, once per keepalive interval."""
        loop = asyncio.get_running_loop()
        transport: asyncio.DatagramTransport | None = None
        if self.stun is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _StunClient(self.stats), local_addr=(self.ip, 0))
        try:
            while not stop.is_set():
                if transport is not None and self.stun is not None:
                    transport.sendto(stun.build_binding_request(secrets.token_bytes(12)), self.stun)
                if self.rest is not None:
                    await self._rest_call()
                await _wait(stop, self.keepalive)
        finally:
            if transport is not None:
                transport.close()

    async def _rest_call(self) -> None:
        assert self.rest is not None
        key = str(self.site()["connectivity"].get("api_key") or "")
        headers = [f"Host: {self.domain}", f"X-API-Key: {key}", "Accept: application/json",
                   "Connection: close", f"User-Agent: {USER_AGENT}"]
        token = self.jwt()
        if self.site()["tenant"].get("flavour") == "unify-video" and token:
            headers.append(f"Authorization: Bearer {token}")
        request = ("GET /api/v1/provisioning/users HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n")
        writer: asyncio.StreamWriter | None = None
        try:
            reader, w = await asyncio.wait_for(asyncio.open_connection(
                self.rest[0], self.rest[1], ssl=self.rest_ctx, server_hostname=self.domain,
                local_addr=(self.ip, 0)), 3.0)
            writer = w
            w.write(request.encode())
            status_line = await asyncio.wait_for(reader.readline(), 3.0)
            await asyncio.wait_for(reader.read(), 3.0)
            status = int(status_line.split()[1])
            self.stats.rest_answers[status] = self.stats.rest_answers.get(status, 0) + 1
        except (TimeoutError, OSError, ssl.SSLError, ValueError, IndexError):
            self.stats.rest_answers[0] = self.stats.rest_answers.get(0, 0) + 1
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)

    # --- calls -------------------------------------------------------------------------------------
    async def _on_request(self, conn: SipConnection, req: SipMessage) -> None:
        method = req.method
        if method == "INVITE":
            await self.calls.answer(conn, req, self.decide)
        elif method == "BYE":
            self.calls.bye(conn, req)
        elif method == "OPTIONS":
            conn.send(response(req, 200, None, [("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")]))
        elif method != "ACK":
            conn.send(response(req, 501))

    def _trunk_verdict(self) -> int | None:
        site = self.site()
        until = site["licenses"].get("software_support_until")
        if until is not None and dt.date.fromisoformat(str(until)) < dt.datetime.now(dt.UTC).date():
            return 403
        if not site["route"].get("trusted_external_users", True):
            return 403
        lines = int(site["connectivity"].get("simultaneous_calls", 0))
        if lines == 0:
            return 503
        if self.calls.active >= lines:
            return 486
        return None

    def _user_verdict(self, user: dict[str, Any]) -> int | None:
        if user.get("station_type") != "trusted-external-user":
            return 404
        if not {"ip-user", "unify-phone"} <= set(user.get("licenses", ())):
            return 403
        return None

    def decide(self, req: SipMessage) -> int | None:
        """The OSBiz's answer to a call from a Unify Phone client (None = accept)."""
        verdict = self._trunk_verdict()
        if verdict is not None:
            return verdict
        caller = user_of(req.get("from") or "")
        user = self.user_by_plan_number(caller)
        if user is None:
            return 404
        return self._user_verdict(user)

    def user_by_plan_number(self, number: str) -> dict[str, Any] | None:
        plan = self.plan()
        for user in self.site().get("users", []):
            if plan.get(str(user["callno"])) == number:
                return dict(user)
        return None

    def callable_users(self) -> list[str]:
        """Plan numbers of the users the PBX would route a call to now (empty if it would not)."""
        if self._trunk_verdict() is not None or self.conn is None or not self.stats.registered:
            return []
        plan = self.plan()
        return [plan[str(u["callno"])] for u in self.site().get("users", [])
                if self._user_verdict(u) is None and str(u["callno"]) in plan]


async def _wait(stop: asyncio.Event, seconds: float, *others: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in (stop, *others)]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def new_instance_id() -> str:
    return str(uuid.uuid4())
