"""Live capture as a ring buffer of capture files, by dumpcap or tcpdump (scapy as the fallback).

Theory of operation: an external capture tool writes ``N`` files of ``M`` MB each in ``directory``
(oldest overwritten), so disk use is bounded whatever the traffic. The service analyses the files
present on each cycle. Kernel drop counts come from the tool's own statistics at exit (dumpcap:
"Packets received/dropped", tcpdump: "packets dropped by kernel"); they are reported, never guessed.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from core.child_process import die_with_parent


@dataclass(frozen=True, slots=True)
class RingConfig:
    interface: str
    directory: Path
    bpf: str = ""
    files: int = 10
    file_mb: int = 20
    file_seconds: int = 30  # dumpcap also rotates by time, so old evidence leaves the window


@dataclass(frozen=True, slots=True)
class RingStats:
    tool: str
    running: bool
    files: tuple[str, ...]
    packets: int | None
    dropped: int | None
    error: str


_DUMPCAP_STATS = re.compile(r"Packets received/dropped on interface '[^']*': (\d+)/(\d+)")
_TCPDUMP_CAPTURED = re.compile(r"(\d+) packets? captured")
_TCPDUMP_DROPPED = re.compile(r"(\d+) packets? dropped by kernel")


def _command(tool: str, cfg: RingConfig) -> list[str]:
    base = cfg.directory / "ring.pcapng"
    if tool == "dumpcap":
        cmd = ["dumpcap", "-q", "-i", cfg.interface, "-w", str(base),
               "-b", f"filesize:{cfg.file_mb * 1000}", "-b", f"duration:{cfg.file_seconds}",
               "-b", f"files:{cfg.files}"]
        return [*cmd, "-f", cfg.bpf] if cfg.bpf else cmd
    cmd = ["tcpdump", "-n", "-U", "-Z", "root", "-i", cfg.interface, "-w", str(cfg.directory / "ring.pcap"),
           "-C", str(cfg.file_mb), "-W", str(cfg.files)]
    return [*cmd, cfg.bpf] if cfg.bpf else cmd


class CaptureRing:
    def __init__(self, cfg: RingConfig) -> None:
        self.cfg = cfg
        self.tool = "dumpcap" if shutil.which("dumpcap") else ("tcpdump" if shutil.which("tcpdump") else "")
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = b""
        self._reader: threading.Thread | None = None
        self.error = ""

    def start(self) -> None:
        if not self.tool:
            self.error = "neither dumpcap nor tcpdump is installed"
            return
        self.cfg.directory.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            _command(self.tool, self.cfg), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, preexec_fn=die_with_parent(),
        )
        self._reader = threading.Thread(target=self._drain, name="ring-stderr", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr = (self._stderr + line)[-16384:]

    def files(self) -> list[Path]:
        """Ring files, oldest first (by modification time)."""
        return sorted(
            (p for p in self.cfg.directory.glob("ring*") if p.is_file() and p.stat().st_size > 0),
            key=lambda p: p.stat().st_mtime,
        )

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stats(self) -> RingStats:
        text = self._stderr.decode("utf-8", "replace")
        packets = dropped = None
        if m := _DUMPCAP_STATS.search(text):
            packets, dropped = int(m.group(1)), int(m.group(2))
        else:
            if m := _TCPDUMP_CAPTURED.search(text):
                packets = int(m.group(1))
            if m := _TCPDUMP_DROPPED.search(text):
                dropped = int(m.group(1))
        error = self.error
        if not error and self._proc is not None and self._proc.poll() not in (None, 0):
            last = text.strip().splitlines()[-1] if text.strip() else "no message"
            error = f"{self.tool} exited with {self._proc.returncode}: {last}"
        return RingStats(self.tool, self.running(), tuple(str(p) for p in self.files()), packets, dropped, error)

    def stop(self, timeout: float = 5.0) -> RingStats:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # both tools print their statistics on SIGINT
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._reader is not None:
            self._reader.join(timeout)
        return self.stats()
