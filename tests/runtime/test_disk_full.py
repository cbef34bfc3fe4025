"""A full disk under --db, on a real (tmpfs) filesystem of 1 MiB: no false verdicts, the fault is a
collector reason, history rows of the outage are written once there is room again."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.runtime.service import ServeConfig, Service
from core.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "collectors" / "capture"))
from capture_craft import eth, ipv4_udp, pcap_bytes  # noqa: E402

REGISTER = ("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n"
            "From: <sip:100@example.com>;tag=a\r\nTo: <sip:100@example.com>\r\nCall-ID: r1@192.0.2.10\r\n"
            "CSeq: 1 REGISTER\r\nContact: <sip:100@192.0.2.10:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n")
OK = ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n"
      "From: <sip:100@example.com>;tag=a\r\nTo: <sip:100@example.com>;tag=b\r\nCall-ID: r1@192.0.2.10\r\n"
      "CSeq: 1 REGISTER\r\nContact: <sip:100@192.0.2.10:5060>;expires=3600\r\nContent-Length: 0\r\n\r\n")


def _registration_capture(path: Path) -> Path:
    now = time.time()
    path.write_bytes(pcap_bytes([
        (now - 2, eth(0x0800, ipv4_udp("192.0.2.10", 5060, "192.0.2.20", 5060, REGISTER.encode()))),
        (now - 1, eth(0x0800, ipv4_udp("192.0.2.20", 5060, "192.0.2.10", 5060, OK.encode()))),
    ]))
    return path


@pytest.fixture
def volume(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    size = getattr(request, "param", "1m")
    vol = tmp_path / "vol"
    vol.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(vol)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield vol
    finally:
        subprocess.run(["umount", "-l", str(vol)], check=False)


def _fill(vol: Path) -> Path:
    filler = vol / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\1" * 4096):
            pass
    except OSError:
        pass  # ENOSPC: the volume is full
    finally:
        os.close(fd)
    return filler


def _status(snap: Snapshot, name: str) -> tuple[bool, str]:
    c = next(c for c in snap.collectors if c.name == name)
    return c.up, c.reason


def test_full_disk_marks_history_down_and_keeps_probes_and_rows(volume: Path, tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        site = tmp_path / "site.yaml"
        site.write_text((ROOT / "examples" / "site-healthy.yaml").read_text().replace(
            "connector: {host: 35.246.178.13, port: 65061,", f"connector: {{host: 127.0.0.1, port: {port},"))
        cap = _registration_capture(tmp_path / "register.pcap")  # the registration ledger is written too
        service = Service(ServeConfig(site_path=site, db_path=volume / "h.db", probes=("tcp_connect",),
                                      probe_timeout_s=2.0, captures=(cap,)))
        snap = service.run_once()
        assert _status(snap, "history") == (True, "") and snap.probes[0].success

        filler = _fill(volume)
        outage = [service.run_once() for _ in range(5)]
        for snap in outage:
            # the probe measured the connector: up and successful, not "internal error"
            assert _status(snap, "probe:tcp_connect") == (True, "") and snap.probes[0].success
            assert _status(snap, "capture") == (True, "")  # the analysis ran; only its rows wait
            up, reason = _status(snap, "history")
            assert not up and reason.startswith("disk full")
        assert service.history.pending >= 5

        filler.unlink()  # room again: no restart
        snap = service.run_once()
        assert _status(snap, "history") == (True, "") and service.history.pending == 0
        rows = service.history.rows("probes")
        assert len(rows) == 7 and all(r["success"] == 1 for r in rows)  # the outage's rows too
        assert service.history.registrations()  # the ledger is written again once there is room
        service.stop()


@pytest.mark.skipif(not (shutil.which("dumpcap") or shutil.which("tcpdump")), reason="no capture tool")
@pytest.mark.parametrize("volume", ["8m"], indirect=True)
def test_full_disk_marks_the_capture_ring_down_and_it_resumes(volume: Path, tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text((ROOT / "examples" / "site-healthy.yaml").read_text())
    service = Service(ServeConfig(site_path=site, db_path=tmp_path / "h.db", interface="lo", probes=(),
                                  ring_dir=volume / "ring", ring_files=2, ring_file_mb=1,
                                  analysis_interval_s=0.5, tick_s=0.2))
    service.start()
    try:
        filler = _fill(volume)

        def capture_status() -> tuple[bool, str]:
            deadline = time.monotonic() + 20
            while True:
                snap = service.snapshot()
                if snap is not None and any(c.name == "capture" for c in snap.collectors):
                    status = _status(snap, "capture")
                    if status[1] in ("disk full", "") or time.monotonic() > deadline:
                        return status
                time.sleep(0.2)

        time.sleep(1.5)
        assert capture_status() == (False, "disk full")
        filler.unlink()
        deadline = time.monotonic() + 30
        while capture_status()[1] == "disk full":
            assert time.monotonic() < deadline, "capture did not resume after the disk had room again"
            time.sleep(0.5)
    finally:
        service.stop()
