"""Helpers of the lab tests: run the lab, read its artifacts, ask tshark (the oracle)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.lab import LabConfig, LabSummary, run_lab

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = ("site.yaml", "osbiz-trace.log", "sslkeys.log", "lab.pcapng", "scenario.json", "lab.json")
# addresses "auto": every lab on a loopback base of its own, so tests run side by side
FAST = {"sip_port": 0, "calls_per_minute": 90.0, "call_seconds": 2.0, "keepalive": 2.0,
        "register_expires": 6, "addresses": "auto"}


def lab(tmp_path: Path, scenario: str, duration: float = 5.0, **kw: Any) -> LabSummary:
    opts = {**FAST, **kw}
    return run_lab(LabConfig(scenario=scenario, out=tmp_path / "out", duration=duration, **opts))


@dataclass(frozen=True)
class Parties:
    """The lab's loopback addresses, as its lab.json records them."""

    connector: str
    pbx: str
    clone: str | None


def parties(out: Path) -> Parties:
    info = json.loads((out / "lab.json").read_text())
    return Parties(info["connector"]["ip"], info["pbx"]["ip"], info["pbx"]["clone_ip"])


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package; `make test` installs it)")
    return path


@dataclass(frozen=True)
class Sip:
    frame: int
    src: str
    method: str
    status: int
    call_id: str
    cseq: str
    expires: str


def tshark_sip(out: Path) -> list[Sip]:
    """SIP decoded from lab.pcapng with the key log and the DOMAIN §9 decode-as flags."""
    tshark = need("tshark")
    port = json.loads((out / "lab.json").read_text())["sip_tls"]
    who = parties(out)
    cmd = [tshark, "-r", str(out / "lab.pcapng"), "-o", f"tls.keylog_file:{out / 'sslkeys.log'}",
           "-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},sip", "-Y", "sip",
           "-T", "fields", "-E", "occurrence=f", "-e", "frame.number", "-e", "ip.src", "-e", "sip.Method",
           "-e", "sip.Status-Code", "-e", "sip.Call-ID", "-e", "sip.CSeq", "-e", "sip.Expires"]
    lines = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    rows = []
    for line in lines.splitlines():
        f = line.split("\t")
        # Only the lab's own parties (the capture filter keeps others out; this says so).
        if len(f) >= 7 and f[1] in (who.connector, who.pbx, who.clone):
            rows.append(Sip(int(f[0]), f[1], f[2], int(f[3] or 0), f[4], f[5], f[6]))
    return rows


def tshark_rtp(out: Path) -> list[dict[str, Any]]:
    """RTP streams as tshark's `rtp,streams` tap reports them (src, dst, packets, lost)."""
    tshark = need("tshark")
    cmd = [tshark, "-r", str(out / "lab.pcapng"), "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    streams = []
    for line in text.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+\S+\s+(\S+)\s+(\d+)\s+(-?\d+)",
                     line)
        if m:
            streams.append({"src": (m[1], int(m[2])), "dst": (m[3], int(m[4])), "payload": m[5],
                            "packets": int(m[6]), "lost": int(m[7])})
    return streams


def tshark_rtp_gaps(out: Path) -> list[dict[str, Any]]:
    """Per RTP stream (SSRC): its source, packets seen and the sequence numbers missing between the
    first and the last seen. Unlike the `rtp,streams` tap's "lost", a packet that arrives late (jitter
    reorders) does not cancel a real gap."""
    tshark = need("tshark")
    cmd = [tshark, "-r", str(out / "lab.pcapng"), "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp",
           "-T", "fields", "-e", "rtp.ssrc", "-e", "ip.src", "-e", "udp.srcport", "-e", "rtp.p_type",
           "-e", "rtp.seq"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    seen: dict[str, tuple[tuple[str, int], int, set[int]]] = {}
    last: dict[str, int] = {}
    for line in text.splitlines():
        ssrc, src, port, pt, seq_text = (line.split("\t") + [""] * 5)[:5]
        if not seq_text:
            continue
        seq = int(seq_text)
        prev = last.get(ssrc, seq)
        ext = prev + ((seq - prev + 0x8000) % 0x10000 - 0x8000)  # unwrap to the nearest of the 16-bit cycle
        last[ssrc] = ext
        entry = seen.setdefault(ssrc, ((src, int(port)), int(pt), set()))
        entry[2].add(ext)
    return [{"src": src, "pt": pt, "packets": len(seqs), "missing": max(seqs) - min(seqs) + 1 - len(seqs)}
            for src, pt, seqs in seen.values()]


def trace_messages(path: Path) -> list[tuple[str, str, str, str]]:
    """(direction, first line, Call-ID, CSeq) of every block of an OSBiz trace log (DOMAIN §11)."""
    text = path.read_bytes().decode("utf-8")  # keep the CRLFs (read_text would translate them)
    blocks = re.findall(
        r'\(SIP_SA \[ldh:([\d.]+)\] [0-9a-f]+ "\d\d/\d\d/\d{4} \d\d:\d\d:\d\d\.\d{6}"[^\r\n]*\r\n'
        r"from ([\d.]+):\d+ to ([\d.]+):\d+\r\n(.*?)(<<OUT-END>>|>>IN-END<<)\r\n", text, re.S)
    out = []
    for ldh, src, _dst, raw, end in blocks:
        direction = "out" if src == ldh else "in"
        assert (end == "<<OUT-END>>") == (direction == "out")
        call_id = re.search(r"(?m)^Call-ID: (.+?)\r$", raw)
        cseq = re.search(r"(?m)^CSeq: (.+?)\r$", raw)
        out.append((direction, raw.split("\r\n", 1)[0], call_id[1] if call_id else "",
                    cseq[1] if cseq else ""))
    return out


def upscope(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from dashboard.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def upscope_popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from dashboard.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes only once reaped; report it as alive
    return True


def nft_tables() -> str:
    if shutil.which("nft") is None or os.geteuid() != 0:
        return ""
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10).stdout


def netns() -> str:
    if shutil.which("ip") is None:
        return ""
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout


def pki_dirs(pid: int) -> list[Path]:
    import tempfile
    return list(Path(tempfile.gettempdir()).glob(f"upscope-lab-pki-{pid}-*"))


def diagnose_ids(out: Path) -> list[str]:
    """Finding ids of ``upscope diagnose`` on the lab's artifacts, as a real site would hand them in."""
    info = json.loads((out / "lab.json").read_text())
    args = ["diagnose", "--site", str(out / "site.yaml"), "--capture", str(out / "lab.pcapng"),
            "--trace-log", str(out / "osbiz-trace.log"), "--keylog", str(out / "sslkeys.log"),
            "--format", "json"]
    if (out / "jwt.txt").exists():
        args += ["--jwt-file", str(out / "jwt.txt")]
    if info["pbx"]["https_443"]:
        args += ["--osbiz-https-port", str(info["pbx"]["https_443"])]
    res = upscope(*args, timeout=120)
    assert res.returncode in (0, 1) and res.stdout.strip(), (res.returncode, res.stderr)
    return sorted({f["id"] for f in json.loads(res.stdout)["findings"]})
