"""The lab's capture of ``lo``: dumpcap, tcpdump and the scapy fallback all write a readable file."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from core.lab import netio
from tests.lab.helpers import need


@pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo needs root (or dumpcap capabilities)")
@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump", "scapy"])
def test_capture_tools_write_what_tshark_reads(tmp_path: Path, tool: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tshark = need("tshark")
    if tool != "scapy":
        need(tool)
    real_which = shutil.which
    # Hide the tools ranked before the one under test, as if they were not installed.
    hidden = {"dumpcap": set(), "tcpdump": {"dumpcap"}, "scapy": {"dumpcap", "tcpdump"}}[tool]
    monkeypatch.setattr(netio.shutil, "which", lambda name: None if name in hidden else real_which(name))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        cap = netio.Capture(tmp_path / "lab.pcapng", f"udp port {port}")
        cap.start()
        try:
            assert cap.tool == tool
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for i in range(5):
                    tx.sendto(b"lab-%d" % i, ("127.0.0.1", port))
                    rx.recv(64)
            # unrelated traffic stays out of the file (the BPF filter)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                other.sendto(b"x", ("127.0.0.1", port + 1 if port < 65535 else port - 1))
        finally:
            cap.stop()
    assert cap.pid is None
    res = subprocess.run([tshark, "-r", str(tmp_path / "lab.pcapng"), "-T", "fields", "-e", "udp.dstport"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert res.stdout.split() == [str(port)] * 5
