"""The lab's touch on the host: packet capture of its ports and the nftables DROP rule.

Both are external effects that must not outlive the lab: ``Capture.stop`` and
``SipBlock.remove`` are idempotent and called from ``finally`` blocks. The DROP rule lives in a
table of its own (named after the PID and port) so deleting it can never touch anyone else's
rules; it sits on the input hook, after the capture point of ``lo``, so the capture still shows
the SYNs that the "firewall" swallows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from core.errors import UpscopeError


class LabError(UpscopeError):
    """The lab cannot run as asked (port taken, missing rights, bad option); exit code 2."""


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
            cmd = [tcpdump, "-i", "lo", "-U", "-Z", "root" if os.geteuid() == 0 else str(os.getuid()),
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
                                stderr=subprocess.PIPE, start_new_session=True)
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
            from scapy.sendrecv import AsyncSniffer
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            raise LabError(f"capture: no dumpcap, tcpdump or scapy available ({exc})") from None
        try:
            self._sniffer = AsyncSniffer(iface="lo", filter=self.bpf, store=True)
            self._sniffer.start()
        except (OSError, PermissionError) as exc:
            raise LabError(f"capture on lo not permitted: {exc}") from None
        self.tool = "scapy"
        time.sleep(0.3)

    def stop(self) -> None:
        if self._proc is not None:
            time.sleep(0.3)  # let the last packets of the shutdown reach the capture
            _terminate(self._proc)
            self._proc = None
        if self._sniffer is not None:
            from scapy.utils import wrpcapng
            packets = self._sniffer.stop()
            wrpcapng(str(self.path), packets)
            self._sniffer = None


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
    """An nftables table dropping TCP to the connector's SIP port (input hook, this lab only)."""

    def __init__(self, ip: str, port: int) -> None:
        self.ip, self.port = ip, port
        self.table = f"upscope_lab_{os.getpid()}_{port}"
        self.active = False

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and shutil.which("nft") is not None

    def add(self) -> None:
        if self.active:
            return
        rules = (
            f"table inet {self.table} {{\n"
            "  chain input {\n"
            "    type filter hook input priority -10; policy accept;\n"
            f"    ip daddr {self.ip} tcp dport {self.port} drop\n"
            "  }\n}\n"
        )
        nft = shutil.which("nft") or "nft"
        proc = subprocess.run([nft, "-f", "-"], input=rules.encode(), capture_output=True, timeout=10)
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise LabError(f"nftables rule for the sip-tls-blocked fault not added: {msg[-1] if msg else '?'}")
        self.active = True

    def remove(self) -> None:
        if not self.active:
            return
        nft = shutil.which("nft") or "nft"
        subprocess.run([nft, "delete", "table", "inet", self.table], capture_output=True, timeout=10)
        self.active = False
