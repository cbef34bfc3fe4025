"""Runs one lab: connector + PBX (+ clone) on loopback, the capture, the fault, the artifacts.

Theory of operation: the lab's loopback addresses are chosen before it starts
(``core.lab.addresses``); then the signal handlers come first; for sip-tls-blocked as root the
loop's thread then enters the lab's own network namespace; then every listening socket is bound
on the lab's addresses (so a taken port fails fast with exit 2 and port 0 resolves to real
numbers), then site.yaml and
scenario.json are written and the capture starts, then the connector listens and lab.json
appears (an attaching process waits for it), then the PBX and the call scheduler run. A fault
controller applies the scenario at ``fault_from`` and lifts it at ``fault_until`` (site.yaml,
jwt.txt, nft rule, clone, port-443 listener, connector behaviour). On stop (duration, SIGINT,
SIGTERM) the scheduler ends, callers send BYE, the PBX unregisters; then one exit stack undoes
every host effect in the reverse order of its making, the capture flushed after the sockets
closed and before the namespace goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import secrets
import signal
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import netns
from core.lab import addresses, artifacts
from core.lab.addresses import LabAddresses
from core.lab.artifacts import TraceLog, write_json
from core.lab.config import RTP_RANGE_SIZE, LabConfig, validate
from core.lab.connector import Connector
from core.lab.media import Impairment, StunServer
from core.lab.netio import Capture, LabError, SipBlock, bind_tcp, bind_udp
from core.lab.pbx import Pbx
from core.lab.port443 import Port443
from core.lab.scenarios import Scenario
from core.lab.sipconn import TRANSACTION_TIMEOUT
from core.lab.tlsutil import CONNECTOR_NAME, make_pki
from core.lab.traffic import CallSchedule, sleep_until


@dataclass(slots=True)
class LabSummary:
    scenario: str
    out: Path
    stats: dict[str, Any] = field(default_factory=dict)


def _rtp_range(rng: random.Random, base: int = 0) -> range:
    base = base or rng.randrange(20000, 60000 - RTP_RANGE_SIZE, 2)
    return range(base, base + RTP_RANGE_SIZE)


class Lab:
    def __init__(self, cfg: LabConfig, scenario: Scenario, addrs: LabAddresses,
                 on_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.cfg, self.scenario, self.addrs, self.on_ready = cfg, scenario, addrs, on_ready
        self.out = cfg.out.resolve()
        self.today = dt.datetime.now(dt.UTC).date()
        self.api_key = str(uuid.uuid4())
        self.regenerated_key = str(uuid.uuid4())
        self.jwt_key = secrets.token_bytes(32)
        self.fault_active = False
        self.jwt_token: str | None = None
        self.base_site: dict[str, Any] = {}
        self.site: dict[str, Any] = {}
        self.plan: dict[str, str] = {}
        self.block: SipBlock | None = None
        self.use_blackhole = False
        self.connector: Connector | None = None
        self.pbx: Pbx | None = None
        self.clone: Pbx | None = None
        self.clone_task: asyncio.Task[None] | None = None
        self.clone_stop = asyncio.Event()
        self.port_443: Port443 | None = None
        self.started = time.time()
        self.stop = asyncio.Event()
        self.traffic_stop = asyncio.Event()
        self.calls: CallSchedule | None = None
        self.warnings: list[str] = []
        self.fault_times: dict[str, float | None] = {"start": None, "end": None}
        self.trace: TraceLog | None = None
        self.capture: Capture | None = None
        self.server_ctx: ssl.SSLContext | None = None
        self.sip_server: asyncio.AbstractServer | None = None
        self.ports: dict[str, int] | None = None  # bound listening ports, once known
        self._out_ready = False  # --out checked and cleared: the final state may be written
        self.rtp = range(0)  # the media port range

    # --- artifacts ---------------------------------------------------------------------------------
    @property
    def jwt_path(self) -> Path:
        return self.out / "jwt.txt"

    def apply_state(self, active: bool) -> None:
        """Write site.yaml / jwt.txt for the fault state (atomic: a watcher sees whole files)."""
        self.fault_active = active
        jwt_state = self.scenario.jwt if active else "valid"
        path: Path | None = None
        if self.scenario.flavour == "unify-video" and jwt_state != "missing":
            self.jwt_token = artifacts.make_jwt(jwt_state, self.jwt_key, dt.datetime.now(dt.UTC))
            artifacts.write_atomic(self.jwt_path, self.jwt_token + "\n", 0o600)
            path = self.jwt_path
        else:
            self.jwt_token = None
            with contextlib.suppress(FileNotFoundError):
                self.jwt_path.unlink()
        self.site = artifacts.site_for(self.base_site, self.scenario, active, path, self.today)
        self.plan = artifacts.plan_numbers(self.site)
        note = f"scenario {self.scenario.name}: fault {'ACTIVE' if active else 'inactive'}"
        if self.port_443 is not None:
            note += f"; the PBX's TCP 443 is emulated on {self.port_443.ip}:{self.port_443.port}"
        artifacts.write_site(self.out / "site.yaml", self.site, note)

    def directory(self) -> dict[str, str]:
        """The connector's view: Unify Phone number → callno (as provisioned from the site)."""
        return {str(u.get("call_number") or self.plan.get(str(u["callno"]), "")): str(u["callno"])
                for u in self.site.get("users", [])}

    def connector_key(self) -> str:
        return self.regenerated_key if self.scenario.wrong_api_key and self.fault_active else self.api_key

    def impairment(self) -> Impairment:
        if not self.fault_active:
            return Impairment()
        if self.scenario.mute_connector_rtp:
            return Impairment(mute=True)
        if self.scenario.impair_connector_rtp:
            return Impairment(self.cfg.loss_pct, self.cfg.jitter_ms)
        return Impairment()

    def scenario_json(self) -> dict[str, Any]:
        window = None
        if self.cfg.fault_from > 0 or self.cfg.fault_until is not None:
            window = {"from": self.cfg.fault_from, "until": self.cfg.fault_until,
                      "start_ts": self.fault_times["start"], "end_ts": self.fault_times["end"]}
        return {
            "scenario": self.scenario.name,
            "fault": self.scenario.fault,
            "expected_findings": list(self.scenario.expected_findings),
            "fault_window": window,
            "flavour": self.scenario.flavour,
            "block_mode": ("blackhole" if self.use_blackhole else "netns") if self.scenario.block_sip else None,
            "media_impairment": {"loss_pct": self.cfg.loss_pct, "jitter_ms": self.cfg.jitter_ms}
            if self.scenario.impair_connector_rtp else None,
            "trace_timezone": "UTC",
        }

    def lab_json(self, ports: dict[str, int], rtp: range, running: bool) -> dict[str, Any]:
        connector_ip = self.cfg.connector[0] if self.cfg.connector else self.addrs.connector
        return {
            "running": running,
            "pid": os.getpid(),
            "started": dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(),
            "stopped": None if running else dt.datetime.now(dt.UTC).isoformat(),
            "out_dir": str(self.out),
            "scenario": self.scenario.name,
            "sip_tls": ports["sip_tls"], "stun": ports.get("stun"), "rest": ports.get("rest"),
            "rtp_range": [rtp.start, rtp.stop - 1],
            "connector": {"ip": connector_ip, "sip_tls": ports["sip_tls"], "stun": ports.get("stun"),
                          "rest": ports.get("rest"), "external": self.cfg.connector is not None},
            "pbx": {"ip": self.addrs.pbx, "https_443": self.port_443.port if self.port_443 else None,
                    "clone_ip": self.addrs.clone if self.scenario.clone else None},
            "addresses": self.addrs.base,  # the loopback base 127.A.B of the lab's parties
            "keylog": str(self.out / "sslkeys.log"),
            "ca_file": str(self.out / "lab-ca.pem") if self.cfg.connector is None else None,
            "capture": str(self.out / "lab.pcapng") if self.capture is not None else None,
            "warnings": list(self.warnings),
            "capture_tool": self.capture.tool if self.capture is not None else None,
            "capture_pid": self.capture.pid if self.capture is not None and running else None,
            # where the lab's parties live: an attaching monitor captures and probes from inside
            "netns": self.block.netns if self.block is not None else None,
            "trace": str(self.out / "osbiz-trace.log"),
            "decode_as": [f"tcp.port=={ports['sip_tls']},tls", f"tls.port=={ports['sip_tls']},sip"],
        }

    # --- the run -----------------------------------------------------------------------------------
    async def run(self) -> LabSummary:
        """Set up, run until the duration ends or a signal arrives, tear down.

        Every host effect is pushed on one exit stack right after it is made, so the tear-down
        is the set-up in reverse whatever failed in between: tasks, listeners, the capture
        (stopped after the sockets close, so the last packets are in it), the namespace, the
        PKI, the signal handlers, and last the final scenario.json and lab.json.
        """
        cfg, sc = self.cfg, self.scenario
        async with contextlib.AsyncExitStack() as stack:
            # Signals first: a SIGTERM during set-up must still run the tear-down.
            self._install_signals(asyncio.get_running_loop())
            stack.callback(self._write_final_state)
            stack.callback(self._remove_signals)
            self._prepare_out()
            rtp = self.rtp = _rtp_range(random.Random(), cfg.rtp_base)
            external = cfg.connector is not None
            pki = make_pki((self.addrs.connector, self.addrs.pbx))
            stack.callback(pki.cleanup)
            # The CA certificate is public: probes of an attaching monitor can verify the lab with it.
            artifacts.write_atomic(self.out / "lab-ca.pem", pki.ca_pem.read_text())
            keylog = self.out / "sslkeys.log"
            if sc.block_sip and not external:
                # Before anything is bound or any worker thread exists: both must live inside.
                self._choose_block(stack)
            socks = self._bind_listeners(stack, pki.server_context() if sc.port_443 else None)
            ports = self.ports = {k: s.getsockname()[1] for k, s in socks.items()}
            if external:
                assert cfg.connector is not None
                ports["sip_tls"] = cfg.connector[1]
            if self.block is not None:
                self.block.port = ports["sip_tls"]
            conn_ip, pbx_ip = self.addrs.connector, self.addrs.pbx
            connector_ep = cfg.connector or (conn_ip, ports["sip_tls"])
            self.base_site = artifacts.base_site(
                name=cfg.system_name, pbx_ip=pbx_ip, connector=connector_ep,
                stun=(conn_ip, ports["stun"]) if not external else ("34.159.228.55", 3478),
                rest=(conn_ip, ports["rest"]) if not external else ("34.117.105.255", 443),
                media=rtp, users=cfg.users, flavour=sc.flavour, api_key=self.api_key, today=self.today,
                lines=cfg.trunk_lines)
            self.apply_state(cfg.fault_from == 0 and sc.name != "healthy")
            if self.fault_active:
                self.fault_times["start"] = time.time()
            write_json(self.out / "scenario.json", self.scenario_json())
            if cfg.capture:
                await self._start_capture(stack, self._bpf(ports, rtp, connector_ep, external))
            if not external:
                await self._start_connector(stack, pki.server_context, socks)
            self.trace = stack.enter_context(contextlib.closing(TraceLog(self.out / "osbiz-trace.log", pbx_ip)))
            self.pbx = self._make_pbx(pbx_ip, self._client_ctx(pki.ca_pem, keylog, external), connector_ep, ports,
                                      rtp, set(), self.trace, pki.client_context(keylog), external)
            if self.fault_active:
                await self._set_fault(True)  # before the PBX's first connect
            # lab.json appears only now, when every listener and the capture run: its existence
            # is what an attaching process (upscope serve --lab-dir) waits for.
            write_json(self.out / "lab.json", self.lab_json(ports, rtp, True))
            if self.on_ready is not None:
                self.on_ready(self.lab_json(ports, rtp, True))
            self.calls = CallSchedule(
                calls_per_minute=cfg.calls_per_minute, call_seconds=cfg.call_seconds, busy_burst=sc.busy_burst,
                pbx=self.pbx, connector=self.connector, site=lambda: self.site, directory=self.directory,
                fault_active=lambda: self.fault_active, stop=self.traffic_stop)
            tasks = [asyncio.create_task(self.pbx.run(self.stop)), asyncio.create_task(self._fault_controller()),
                     asyncio.create_task(self.calls.run())]
            if self.port_443 is not None:
                # the "internet" knocking on the PBX's 443, from the connector's address
                tasks.append(asyncio.create_task(self.port_443.probe(
                    conn_ip, pki.client_context(keylog), cfg.keepalive, self.traffic_stop)))
            stack.push_async_callback(self._cancel, tasks)
            await self._until_stopped()
            self.traffic_stop.set()
            await self.calls.drain()
            self.stop.set()
            self.clone_stop.set()
            if self.clone_task is not None:
                await asyncio.wait([self.clone_task], timeout=5.0)
            await asyncio.wait(tasks, timeout=8.0)
            summary = LabSummary(sc.name, self.out, self._stats())
        return summary

    def _prepare_out(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / f".write-test.{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise LabError(f"--out {self.out}: not a writable directory ({exc.strerror})") from None
        for name in ("osbiz-trace.log", "sslkeys.log", "lab.pcapng", "jwt.txt", "lab.json"):
            with contextlib.suppress(FileNotFoundError):
                (self.out / name).unlink()
        self._out_ready = True

    def _bind_listeners(self, stack: contextlib.AsyncExitStack,
                        https_ctx: ssl.SSLContext | None) -> dict[str, socket.socket]:
        """Bind every listening socket now, so a taken port fails fast and port 0 gets a number."""
        socks: dict[str, socket.socket] = {}
        ip = self.addrs.connector
        if self.cfg.connector is None:
            socks["sip_tls"] = stack.enter_context(bind_tcp(ip, self.cfg.sip_port, "SIP/TLS"))
            socks["rest"] = stack.enter_context(bind_tcp(ip, self.cfg.rest_port, "REST"))
            socks["stun"] = stack.enter_context(bind_udp(ip, self.cfg.stun_port, "STUN"))
        if self.scenario.port_443:
            sock = bind_tcp(self.addrs.pbx, self.cfg.https_port, "PBX 443-equivalent")
            self.port_443 = Port443(sock, https_ctx)
            stack.callback(self.port_443.close)
        return socks

    async def _start_capture(self, stack: contextlib.AsyncExitStack, bpf: str) -> None:
        capture = Capture(self.out / "lab.pcapng", bpf)
        try:
            # On the loop's own thread, not a worker: the capture's parent-death signal is tied
            # to the thread that forks it (core.child_process). Nothing runs yet.
            capture.start()
        except LabError as exc:
            # Without capture rights the lab still serves the dashboard and the service (they
            # capture or follow on their own); say so instead of refusing to run.
            self.warnings.append(f"no lab.pcapng: {exc}")
            return
        self.capture = capture
        stack.push_async_callback(asyncio.to_thread, capture.stop)

    async def _start_connector(self, stack: contextlib.AsyncExitStack,
                               server_context: Callable[[], ssl.SSLContext],
                               socks: dict[str, socket.socket]) -> None:
        sc = self.scenario
        connector = self.connector = Connector(
            ip=self.addrs.connector, api_key=self.connector_key, jwt_key=self.jwt_key, flavour=sc.flavour,
            directory=self.directory, impairment=self.impairment, rtp_ports=self.rtp, used_ports=set())
        stack.push_async_callback(connector.close)
        self.server_ctx = server_context()
        stack.callback(self._close_sip_listener)
        await self._sip_listener(False, socks["sip_tls"])
        socks["rest"].listen(16)
        rest = await asyncio.start_server(connector.on_rest, sock=socks["rest"], ssl=server_context())
        stack.callback(rest.close)
        loop = asyncio.get_running_loop()
        stun_transport, _ = await loop.create_datagram_endpoint(StunServer, sock=socks["stun"])
        stack.callback(stun_transport.close)

    async def _until_stopped(self) -> None:
        if self.cfg.duration is None:
            await self.traffic_stop.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.traffic_stop.wait(), self.cfg.duration)

    async def _cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        """Stop every task of the run (on the normal path they have ended already)."""
        self.stop.set()
        self.traffic_stop.set()
        self.clone_stop.set()
        running = [t for t in [*tasks, self.clone_task] if t is not None and not t.done()]
        for task in running:
            task.cancel()
        if running:
            # wait() reports the ends without raising them, and lets a cancellation of this
            # tear-down itself propagate.
            await asyncio.wait(running)

    def _close_sip_listener(self) -> None:
        if self.sip_server is not None:
            self.sip_server.close()

    def _write_final_state(self) -> None:
        """scenario.json with the fault window closed, lab.json marked stopped (if set up that far)."""
        if self.fault_active and self.fault_times["end"] is None and self.fault_times["start"]:
            self.fault_times["end"] = time.time()
        if not self._out_ready:
            return
        with contextlib.suppress(OSError):
            write_json(self.out / "scenario.json", self.scenario_json())
            if self.ports is not None and "sip_tls" in self.ports:
                write_json(self.out / "lab.json", self.lab_json(self.ports, self.rtp, False))

    def _bpf(self, ports: dict[str, int], rtp: range, connector: tuple[str, int], external: bool) -> str:
        """The lab's ports between the lab's own addresses: another lab, or a monitor probing
        this one from another address, stays out of lab.pcapng."""
        parts = [f"tcp port {connector[1]}", f"udp portrange {rtp.start}-{rtp.stop - 1}"]
        if "stun" in ports:
            parts += [f"udp port {ports['stun']}", f"tcp port {ports['rest']}"]
        if self.port_443 is not None:
            parts.append(f"tcp port {self.port_443.port}")
        # An external connector is named by the user (perhaps by name): the lab's side alone filters.
        return f"({self.addrs.host_bpf(with_connector=not external)}) and ({' or '.join(parts)})"

    def _client_ctx(self, ca: Path, keylog: Path, external: bool) -> ssl.SSLContext:
        if not external:
            ctx = ssl.create_default_context(cafile=str(ca))
        elif self.cfg.connector_ca is not None:
            try:
                ctx = ssl.create_default_context(cafile=str(self.cfg.connector_ca))
            except (OSError, ssl.SSLError) as exc:
                raise LabError(f"--connector-ca {self.cfg.connector_ca}: no usable CA certificate ({exc})") from None
        else:
            # A real server's certificate cannot be checked without its CA; the lab is a test
            # tool, and the capture analysis reports certificate validity separately.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.keylog_filename = str(keylog)
        return ctx

    def _make_pbx(self, ip: str, ctx: ssl.SSLContext, connector: tuple[str, int], ports: dict[str, int],
                  rtp: range, used: set[int], trace: TraceLog | None, rest_ctx: ssl.SSLContext,
                  external: bool) -> Pbx:
        return Pbx(
            ip=ip, site=lambda: self.site, plan=lambda: self.plan, connector=connector, ctx=ctx,
            server_hostname=None if external and self.cfg.connector_ca is None else (
                CONNECTOR_NAME if not external else connector[0]),
            stun=None if external else (self.addrs.connector, ports["stun"]),
            rest=None if external else (self.addrs.connector, ports["rest"]), rest_ctx=rest_ctx,
            jwt=lambda: self.jwt_token, keepalive=self.cfg.keepalive,
            register_expires=self.cfg.register_expires, observer=trace, rtp_ports=rtp,
            used_ports=used, instance=self._instance)

    @property
    def _instance(self) -> str:
        # A clone carries the same configuration, RFC 5626 instance id included.
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.cfg.system_name}.lab.upscope.invalid"))

    # --- fault control -----------------------------------------------------------------------------
    async def _fault_controller(self) -> None:
        cfg, sc = self.cfg, self.scenario
        if sc.name == "healthy":
            return
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if not self.fault_active:
            if not await sleep_until(self.traffic_stop, t0 + cfg.fault_from):
                return
            self.apply_state(True)
            self.fault_times["start"] = time.time()
            await self._set_fault(True)
            write_json(self.out / "scenario.json", self.scenario_json())
        if cfg.fault_until is None or not await sleep_until(self.traffic_stop, t0 + cfg.fault_until):
            return
        self.apply_state(False)
        self.fault_times["end"] = time.time()
        await self._set_fault(False)
        write_json(self.out / "scenario.json", self.scenario_json())

    async def _sip_listener(self, blackhole: bool, sock: socket.socket | None = None) -> None:
        """(Re)open the connector's SIP port: TLS normally, a silent plain listener as black hole."""
        assert self.connector is not None and self.server_ctx is not None
        if self.sip_server is not None:
            assert isinstance(self.sip_server, asyncio.Server)
            port = self.sip_server.sockets[0].getsockname()[1]
            self.sip_server.close()
            await self.sip_server.wait_closed()
            self.sip_server = None
            sock = bind_tcp(self.addrs.connector, port, "SIP/TLS")
        assert sock is not None
        sock.listen(64)
        if blackhole:
            self.sip_server = await asyncio.start_server(self.connector.on_blackhole, sock=sock)
        else:
            self.sip_server = await asyncio.start_server(self.connector.on_sip, sock=sock,
                                                         ssl=self.server_ctx)

    def _choose_block(self, stack: contextlib.AsyncExitStack) -> None:
        """sip-tls-blocked: a namespace of the lab's own with the DROP rule (entered by this thread
        until ``stack`` unwinds), or the black-hole listener where that is not possible or asked."""
        mode = self.cfg.block_mode
        if mode == "blackhole" or (mode == "auto" and not SipBlock.available()):
            self.use_blackhole = True
            return
        block = SipBlock(self.addrs.connector)
        try:
            block.open()
        except LabError as exc:
            if mode != "auto":
                raise
            # root without the right to make namespaces (a locked-down container)
            self.use_blackhole = True
            self.warnings.append(f"black-hole listener instead: {exc}")
            return
        self.block = block
        stack.callback(block.close)  # after the thread has left it (the callback below runs first)
        stack.enter_context(netns.entered(block.netns))

    async def _set_fault(self, on: bool) -> None:
        sc = self.scenario
        if self.block is not None:
            await asyncio.to_thread(self.block.add if on else self.block.remove)
        if self.use_blackhole and self.connector is not None:
            await self._sip_listener(on)
            # existing connections must be cut too, or the established trunk would survive
            for conn in list(self.connector.conns):
                await conn.close()
        if sc.wrong_api_key and on and self.connector is not None:
            # A regenerated key takes effect at the next registration; make it happen now.
            for conn in list(self.connector.conns):
                await conn.close()
        if sc.clone:
            if on and self.clone_task is None:
                self.clone_stop.clear()
                assert self.pbx is not None
                self.clone = Pbx(
                    ip=self.addrs.clone, site=lambda: self.site, plan=lambda: self.plan,
                    connector=self.pbx.connector, ctx=self.pbx.ctx,
                    server_hostname=self.pbx.server_hostname, stun=None, rest=None, rest_ctx=None,
                    jwt=lambda: None, keepalive=self.cfg.keepalive,
                    register_expires=self.cfg.register_expires, observer=None,
                    rtp_ports=self.pbx.calls.rtp_ports, used_ports=set(), instance=self._instance)
                self.clone_task = asyncio.create_task(self.clone.run(self.clone_stop))
                await self._clone_registered()
            elif not on and self.clone_task is not None:
                self.clone_stop.set()
                await asyncio.wait([self.clone_task], timeout=5.0)
                self.clone_task = None
        if self.port_443 is not None:
            await self.port_443.switch(on)

    async def _clone_registered(self) -> None:
        """Make the clone visible in the PBX's own trace: once the clone is registered, the PBX
        (re-)registers, and the connector's 200 to it lists both contacts. At the start the PBX
        has not connected yet, so its first registration comes after the clone's."""
        assert self.pbx is not None and self.clone is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2 * TRANSACTION_TIMEOUT
        while not self.clone.stats.registered and loop.time() < deadline and not self.traffic_stop.is_set():
            await sleep_until(self.traffic_stop, min(deadline, loop.time() + 0.05))
        self.pbx.register_now()

    def _stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pbx is not None:
            s = self.pbx.stats
            out["pbx"] = {"register_answers": s.register_answers, "options_ok": s.options_ok,
                          "crlf_pongs": s.crlf_pongs,
                          "connects": s.connects, "connect_failures": s.connect_failures,
                          "stun_answers": s.stun_answers, "rest_answers": s.rest_answers,
                          "calls_placed": _calls(self.pbx.calls.placed),
                          "calls_received": _calls(self.pbx.calls.received),
                          "rtp_in": self.pbx.calls.rtp_in, "rtp_out": self.pbx.calls.rtp_out}
        if self.connector is not None:
            out["connector"] = {"register_answers": self.connector.registers,
                                "rest_answers": self.connector.rest_answers,
                                "calls_placed": _calls(self.connector.calls.placed),
                                "calls_received": _calls(self.connector.calls.received),
                                "rtp_in": self.connector.calls.rtp_in,
                                "rtp_out": self.connector.calls.rtp_out}
        if self.clone is not None:
            out["clone"] = {"register_answers": self.clone.stats.register_answers}
        if self.port_443 is not None:
            out["probe_443"] = dict(self.port_443.counts)
        out["call_errors"] = self.calls.errors if self.calls is not None else 0
        out["warnings"] = list(self.warnings)
        out["capture_tool"] = self.capture.tool if self.capture else None
        return out

    # --- signals -----------------------------------------------------------------------------------
    _signals_installed = False

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.traffic_stop.set)
        self._signals_installed = True

    def _remove_signals(self) -> None:
        if self._signals_installed:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def _calls(stats: Any) -> dict[str, Any]:
    return {"attempted": stats.attempted, "answered": stats.answered,
            "rejected": {str(k): v for k, v in sorted(stats.rejected.items())}}


def run_lab(cfg: LabConfig, on_ready: Callable[[dict[str, Any]], None] | None = None) -> LabSummary:
    """Run the lab to completion (duration or signal). Raises LabError for unusable options.

    ``on_ready`` gets the lab.json content once every port is bound and the capture runs.
    """
    scenario = validate(cfg)
    addrs = addresses.resolve(cfg.addresses)

    async def main() -> LabSummary:
        return await Lab(cfg, scenario, addrs, on_ready).run()

    return asyncio.run(main())
