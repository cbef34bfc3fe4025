"""The lab's touch on the host: its listening ports, the packet capture of its traffic and the
sip-tls-blocked firewall.

Both are external effects that must not outlive the lab: ``Capture.stop`` and ``SipBlock.close``
are idempotent and called from ``finally`` blocks; the capture also dies with the lab process
(parent-death signal) and a namespace left by a killed lab is swept at the next start. The DROP
rule sits on the input hook, after the capture point of ``lo``, so the capture still shows the
SYNs that the "firewall" swallows.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from core import netns
from core.child_process import die_with_parent
from core.errors import UpscopeError


class LabError(UpscopeError):
    """The lab cannot run as asked (port taken, missing rights, bad option); exit code 2."""


def bind_tcp(ip: str, port: int, what: str) -> socket.socket:
    """A TCP socket bound (not yet listening) to ``ip``:``port``; a taken port is a LabError."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((ip, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise LabError(f"{what} port {ip}:{port} is already in use") from None
        if exc.errno == errno.EACCES:
            raise LabError(f"{what} port {ip}:{port} needs privileges (use a port >= 1024)") from None
        raise LabError(f"{what} port {ip}:{port} cannot be bound: {exc.strerror}") from None
    return sock


def bind_udp(ip: str, port: int, what: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((ip, port))
    except OSError as exc:
        sock.close()
        raise LabError(f"{what} port {ip}:{port} cannot be bound: {exc.strerror}") from None
    return sock


class Capture:
    """dumpcap (pcapng) → tcpdump → scapy sniffer, on ``lo`` with a BPF filter."""

    def __init__(self, path: Path, bpf: str) -> None:
        self.path, self.bpf = path, bpf
        self.tool = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._sniffer: Any = None

    def start(self) -> None:
        dumpcap, tcpdump = shutil.which("dumpcap"), shutil.which("tcpdump")
        if dumpcap:
            cmd = [dumpcap, "-i", "lo", "-f", self.bpf, "-w", str(self.path), "-q"]
            if self._spawn(cmd, b"Capturing on"):
                self.tool = "dumpcap"
                return
        if tcpdump:
            # --immediate-mode: without it TPACKET_V3 holds packets in a ring block the stop loses
            cmd = [tcpdump, "-i", "lo", "-U", "--immediate-mode", "-Z", "root" if os.geteuid() == 0 else str(os.getuid()),
                   "-w", str(self.path), self.bpf]
            if self._spawn(cmd, b"listening on"):
                self.tool = "tcpdump"
                return
        self._start_scapy()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _spawn(self, cmd: list[str], ready: bytes) -> bool:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent())
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        seen = b""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError, TypeError):
                seen += proc.stderr.read() or b""
            if ready in seen:
                self._proc = proc
                time.sleep(0.2)  # the ready line precedes the first poll of the socket slightly
                return True
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        _terminate(proc)
        return False

    def _start_scapy(self) -> None:
        try:
            from scapy.config import conf
            from scapy.layers import inet  # noqa: F401  (binds IP/UDP/TCP for dissection)
            from scapy.layers.l2 import Ether
            from scapy.sendrecv import AsyncSniffer
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            raise LabError(f"capture: no dumpcap, tcpdump or scapy available ({exc}); try --no-capture") from None
        # Linux lo (ARPHRD_LOOPBACK = 772) frames carry a zeroed Ethernet header.
        conf.l2types.register_num2layer(772, Ether)  # one way: Ether still writes as DLT 1
        try:
            self._sniffer = AsyncSniffer(iface="lo", filter=self.bpf, store=True)
            self._sniffer.start()
        except (OSError, PermissionError) as exc:
            raise LabError(f"capture on lo not permitted: {exc}; try --no-capture") from None
        self.tool = "scapy"
        time.sleep(1.0)  # the sniffer opens its socket in its own thread

    def _stop_scapy(self) -> None:
        from scapy.utils import wrpcapng
        time.sleep(0.5)  # the sniffer thread still has queued packets to read
        packets = self._sniffer.stop() or []
        # A raw socket on lo sees each packet twice (outgoing and incoming, back to back); libpcap
        # drops the outgoing copy, so do the same to match what dumpcap writes.
        kept: list[Any] = []
        for pkt in packets:
            if kept and bytes(pkt) == bytes(kept[-1]) and float(pkt.time) - float(kept[-1].time) < 0.001:
                continue
            kept.append(pkt)
        wrpcapng(str(self.path), kept)  # Ether frames: DLT_EN10MB, as dumpcap writes for lo
        self._sniffer = None

    def stop(self) -> None:
        if self._proc is not None:
            time.sleep(0.3)  # let the last packets of the shutdown reach the capture
            _terminate(self._proc)
            self._proc = None
        if self._sniffer is not None:
            self._stop_scapy()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(2.0)
    if proc.stderr is not None:
        proc.stderr.close()


class SipBlock:
    """The ``sip-tls-blocked`` firewall: the lab runs in a network namespace of its own, where an
    nftables rule drops TCP to the connector's SIP port (input hook).

    The rule never touches the host's firewall and goes with the namespace. The lab's threads
    enter the namespace (``core.netns.entered``) before they bind anything; ``nft`` is run through
    ``ip netns exec`` so it works from any thread.
    """

    PREFIX = "upscope-lab-"
    TABLE = "upscope_lab"
    _made = itertools.count(1)

    def __init__(self, ip: str) -> None:
        self.ip, self.port = ip, 0  # the port is known once the lab has bound it, inside
        self.netns = f"{self.PREFIX}{os.getpid()}-{next(self._made)}"
        self.created = False
        self.active = False

    @classmethod
    def sweep_stale(cls) -> list[str]:
        """Delete the namespaces of labs that died without clean-up (kill -9); returns their names."""
        gone = []
        for name in netns.names():
            match = re.fullmatch(re.escape(cls.PREFIX) + r"(\d+)-\d+", name)
            if match and not Path(f"/proc/{match.group(1)}").exists():
                netns.delete(name)
                gone.append(name)
        return gone

    @staticmethod
    def available() -> bool:
        return netns.available() and shutil.which("nft") is not None

    def open(self) -> None:
        self.sweep_stale()
        try:
            netns.create(self.netns)
        except netns.NamespaceError as exc:
            raise LabError(f"sip-tls-blocked: {exc}; try --block-mode blackhole") from None
        self.created = True

    def close(self) -> None:
        if self.created:
            netns.delete(self.netns)
            self.created = self.active = False

    def _nft(self, argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        cmd = netns.exec_argv(self.netns, [shutil.which("nft") or "nft", *argv])
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=10)

    def add(self) -> None:
        if self.active:
            return
        rules = (
            f"table inet {self.TABLE} {{\n"
            "  chain input {\n"
            "    type filter hook input priority -10; policy accept;\n"
            f"    ip daddr {self.ip} tcp dport {self.port} drop\n"
            "  }\n}\n"
        )
        proc = self._nft(["-f", "-"], rules.encode())
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise LabError(f"nftables rule for the sip-tls-blocked fault not added: {msg[-1] if msg else '?'}")
        self.active = True

    def remove(self) -> None:
        if not self.active:
            return
        self._nft(["delete", "table", "inet", self.TABLE])
        self.active = False
