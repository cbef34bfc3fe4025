"""The support bundle of real failing calls: the one-way-audio lab and the trunk-lines-busy lab (calls
rejected with 486) through ``upscope bundle --site … --capture …``. Each failing call must come with
its capture (SIP + RTP, checked with tshark) and its full SIP messages as redacted text; one-way RTP
that no call explains comes as a capture of its own; no secret enters the zip."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# one worker runs the module: its tests share the labs of one module fixture
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.xdist_group("bundle_labs")]

CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
SCENARIOS = ("one-way-audio", "trunk-lines-busy")


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if shutil.which("dumpcap") is None or shutil.which("tshark") is None:
        pytest.skip("dumpcap and tshark (Debian package tshark) are needed: the lab captures, tshark checks")
    root = tmp_path_factory.mktemp("bundle-labs")
    procs = {}
    for name in SCENARIOS:  # side by side, each on loopback addresses of its own
        procs[name] = subprocess.Popen(
            [*CLI, "lab", "--scenario", name, "--duration", "14", "--port", "0", "--calls-per-minute", "30",
             "--out", str(root / name), "--addresses", "auto"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"lab {name}: {err.decode(errors='replace')[-500:]}"
    yield {name: root / name for name in SCENARIOS}


def _bundle(lab: Path, out: Path, *evidence: str) -> zipfile.ZipFile:
    proc = subprocess.run([*CLI, "bundle", "-o", str(out), "--site", str(lab / "site.yaml"), *evidence],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return zipfile.ZipFile(out)


def _api_key(lab: Path) -> str:
    line = next(x for x in (lab / "site.yaml").read_text().splitlines() if x.strip().startswith("api_key:"))
    return line.split(":", 1)[1].strip()


def _tshark(pcap: bytes, tmp: Path, *args: str) -> list[str]:
    path = tmp / "x.pcap"
    path.write_bytes(pcap)
    out = subprocess.run(["tshark", "-r", str(path), *args], capture_output=True, text=True, timeout=60, check=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def _index(zf: zipfile.ZipFile) -> list[list[str]]:
    return [line.split("  ") for line in zf.read("calls/index.txt").decode().splitlines()[1:]]


def test_one_way_calls_come_with_their_capture_and_messages(labs: dict[str, Path], tmp_path: Path) -> None:
    lab = labs["one-way-audio"]
    zf = _bundle(lab, tmp_path / "b.zip", "--capture", str(lab / "lab.pcapng"), "--keylog",
                 str(lab / "sslkeys.log"))
    rows = _index(zf)
    assert rows and all(r[3] == "one-way audio" and r[4] == "pcap:yes messages:yes" for r in rows)
    name, call_id = rows[0][0], rows[0][1]
    text = zf.read(f"calls/{name}.txt").decode()
    assert text.count("=== frame ") >= 5 and f"Call-ID: {call_id}" in text and "\nm=audio " in text
    pcap = zf.read(f"calls/{name}.pcap")
    # the capture holds the call's RTP in one direction only: one stream, one source
    streams = _tshark(pcap, tmp_path, "-q", "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams")
    rtp_lines = [line for line in streams if "0x" in line]
    assert len(rtp_lines) == 1, streams
    everything = b"".join(zf.read(n) for n in zf.namelist())
    assert _api_key(lab).encode() not in everything


def test_without_the_key_log_the_one_way_rtp_still_comes(labs: dict[str, Path], tmp_path: Path) -> None:
    """SIP over TLS without a key log: no call is known, the one-way finding is about streams of no
    call — their RTP is in the bundle (it held no capture at all before)."""
    lab = labs["one-way-audio"]
    zf = _bundle(lab, tmp_path / "b.zip", "--capture", str(lab / "lab.pcapng"))
    pcaps = [n for n in zf.namelist() if n.startswith("streams/one-way-")]
    assert pcaps
    frames = _tshark(zf.read(pcaps[0]), tmp_path, "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp", "-T", "fields",
                     "-e", "ip.src")
    assert len(frames) >= 50 and len(set(frames)) == 1  # RTP from one side only


def test_rejected_calls_come_with_the_rejection(labs: dict[str, Path], tmp_path: Path) -> None:
    """trunk-lines-busy: calls beyond the two lines are answered 486; with the OSBiz trace log for
    the SIP, each one's messages end in that answer and its capture holds them (tshark)."""
    lab = labs["trunk-lines-busy"]
    zf = _bundle(lab, tmp_path / "b.zip", "--capture", str(lab / "lab.pcapng"), "--trace-log",
                 str(lab / "osbiz-trace.log"))
    rows = [r for r in _index(zf) if r[3].startswith("486")]
    assert rows, _index(zf)
    for name, call_id, *_ in rows[:3]:
        text = zf.read(f"calls/{name}.txt").decode()
        assert text.startswith("=== frame ") and "\nSIP/2.0 486 " in text and f"Call-ID: {call_id}" in text
        sip = _tshark(zf.read(f"calls/{name}.pcap"), tmp_path, "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID",
                      "-e", "sip.Status-Code")
        assert sip and {line.split("\t")[0] for line in sip} == {call_id}
        assert "486" in {line.split("\t")[1] for line in sip}
        assert text.count("=== frame ") == len(sip)
    everything = b"".join(zf.read(n) for n in zf.namelist())
    assert _api_key(lab).encode() not in everything
    with zipfile.ZipFile(io.BytesIO((tmp_path / "b.zip").read_bytes())) as again:
        assert "report.json" in again.namelist()
