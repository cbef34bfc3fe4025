"""Hostile inputs through the real CLI: one line on stderr, the documented exit code, bounded memory.

Every case runs ``upscope`` as a subprocess under ``/usr/bin/time`` (peak RSS of the process), as a
user would. Exit 2 = unusable input, never a traceback (which Python ends with exit 1).
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "collectors" / "capture"))
from capture_craft import eth, ipv4_udp, ng_epb, ng_idb, ng_shb, pcap_bytes  # noqa: E402

CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
TIME = "/usr/bin/time"
MAX_RSS_KB = 300 * 1024


def upscope(*args: str, timeout: float = 120, stdin: int | None = None) -> tuple[int, str, str, int]:
    """(exit code, stdout, stderr without the time line, peak RSS in KB or 0 without /usr/bin/time)."""
    timed = [TIME, "-f", "RSS %M"] if os.path.exists(TIME) else []
    proc = subprocess.run([*timed, *CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          stdin=stdin)
    err = proc.stderr
    rss = 0
    if timed:
        m = re.search(r"RSS (\d+)\s*$", err)
        assert m, err[-500:]
        rss = int(m.group(1))
        err = err[:m.start()]
        err = re.sub(r"Command exited with non-zero status \d+\n$", "", err)
    return proc.returncode, proc.stdout, err, rss


def one_line_error(code: int, err: str, expect: int = 2) -> str:
    assert code == expect, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning:" not in ln]
    assert len(lines) == 1, err
    return lines[0]


# --- item 4: timestamps beyond what a date can hold ---------------------------------------------

def _far_future_pcapng(path: Path) -> Path:
    frame = eth(0x0800, ipv4_udp("192.0.2.1", 5060, "192.0.2.2", 5060, b"OPTIONS sip:x SIP/2.0\r\n\r\n"))
    # if_tsresol 2^0 (one tick = one second) and a high word of 0x7fffffff: year ~292 billion
    data = ng_shb() + ng_idb(1, tsresol=0x80) + ng_epb(0, (0x7FFFFFFF << 32) | 5, frame)
    path.write_bytes(data * 8)
    return path


@pytest.mark.parametrize("command", [
    ["analyze", "{cap}", "--no-progress"],
    ["analyze", "{cap}", "--site", "{site}", "--no-progress"],
    ["analyze", "{cap}", "-f", "html", "--out", "{tmp}/html", "--no-progress"],
    ["diagnose", "--capture", "{cap}"],
    ["firewall", "--capture", "{cap}"],
    ["bundle", "-o", "{tmp}/b.zip", "--capture", "{cap}"],
])
def test_timestamps_beyond_year_9999_are_unusable_input(tmp_path: Path, command: list[str]) -> None:
    cap = _far_future_pcapng(tmp_path / "future.pcapng")
    site = ROOT / "examples" / "site-healthy.yaml"
    args = [a.format(cap=cap, site=site, tmp=tmp_path) for a in command]
    code, _, err, _ = upscope(*args)
    line = one_line_error(code, err)
    assert "timestamp outside the years 1-9999" in line or "nothing usable" in line, line
    assert "--out None" not in line and "Errno" not in line


# --- item 1: decompression bombs --------------------------------------------------------------------

def _gzip_bomb(path: Path, inflated_mb: int) -> Path:
    """A pcap whose records (60 zero bytes each) gzip ~300:1 — a valid capture, just enormous."""
    record = struct.pack("<IIII", 1, 0, 60, 60) + bytes(60)
    block = record * (1 << 14)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with path.open("wb") as fh:
        fh.write(z.compress(pcap_bytes([])))
        for _ in range(inflated_mb * (1 << 20) // len(block)):
            fh.write(z.compress(block))
        fh.write(z.flush())
    return path


def test_gzip_bomb_stops_early_with_a_reason(tmp_path: Path) -> None:
    bomb = _gzip_bomb(tmp_path / "bomb.pcap.gz", 1024)  # 1 GiB inflated from ~3.5 MB
    assert bomb.stat().st_size < 4 << 20
    code, _, err, rss = upscope("analyze", str(bomb), "--no-progress")
    assert "decompression bomb" in one_line_error(code, err)
    assert rss <= MAX_RSS_KB, f"peak RSS {rss} KB"


def test_real_gzip_capture_still_reads(tmp_path: Path) -> None:
    frames = [(float(i), eth(0x0800, ipv4_udp("192.0.2.1", 4000, "192.0.2.2", 4000, bytes(160))))
              for i in range(2000)]
    gz = tmp_path / "ok.pcap.gz"
    gz.write_bytes(gzip.compress(pcap_bytes(frames)))
    code, out, err, _ = upscope("analyze", str(gz), "--no-progress")
    assert code == 0 and "2000 packets" in out, err


# --- item 10: special and sparse files ------------------------------------------------------------

def test_fifo_as_capture_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "cap.pcap"
    os.mkfifo(fifo)
    done = threading.Event()

    def writer() -> None:  # never opened by upscope: if it were, this open would unblock it
        done.wait(30)

    threading.Thread(target=writer, daemon=True).start()
    code, _, err, _ = upscope("analyze", str(fifo), "--no-progress", timeout=30)
    done.set()
    assert "not a regular file" in one_line_error(code, err)


def test_fifo_as_secret_file_does_not_hang_check_site(tmp_path: Path) -> None:
    fifo = tmp_path / "key"
    os.mkfifo(fifo)
    site = tmp_path / "site.yaml"
    site.write_text((ROOT / "examples" / "site-healthy.yaml").read_text().replace(
        "api_key: env:UPSCOPE_API_KEY", f"api_key: file:{fifo}"))
    code, out, err, _ = upscope("check-site", str(site), timeout=30)
    assert code in (0, 1) and "Traceback" not in err
    assert "not resolvable" in out


def test_sparse_file_with_a_pcap_header_stops_at_the_hole(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.pcap"
    with sparse.open("wb") as fh:
        fh.write(pcap_bytes([]))
        fh.truncate(256 << 20)
    code, _, err, rss = upscope("analyze", str(sparse), "--no-progress")
    assert "zero-filled pcap records" in one_line_error(code, err)
    assert rss <= MAX_RSS_KB


def test_flat_yaml_within_the_size_cap_is_refused_quickly_and_small(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("x:\n" + "- 0\n" * 1_250_000)  # 5 MB, 1.25 million nodes
    code, _, err, rss = upscope("check-site", str(site))
    assert "YAML nodes" in one_line_error(code, err)
    assert rss <= MAX_RSS_KB


def test_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    site = tmp_path / "site.yaml"
    site.write_text("\n".join(lines) + "\n")  # 10^7 leaves once expanded
    for args in (["check-site", str(site)], ["bundle", "-o", str(tmp_path / "b.zip"), "--site", str(site)]):
        code, _, err, rss = upscope(*args)
        assert "anchors" in one_line_error(code, err) and rss <= MAX_RSS_KB


def test_4301_digit_integer_names_file_and_line(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text((ROOT / "examples" / "site-healthy.yaml").read_text().replace(
        "simultaneous_calls: 8", "simultaneous_calls: " + "9" * 4301))
    code, _, err, _ = upscope("check-site", str(site))
    line = one_line_error(code, err)
    assert f"{site}:" in line and "connectivity.simultaneous_calls" in line and "9999" not in line


# --- item 8: the TLS key log ----------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"not a key log\nat all\n", b"", None])
def test_unusable_keylog_is_one_warning_line(tmp_path: Path, content: bytes | None) -> None:
    keys = tmp_path / "keys.log"
    if content is None:
        keys.mkdir()
    else:
        keys.write_bytes(content)
    cap = tmp_path / "c.pcap"
    cap.write_bytes(pcap_bytes([(1.0, eth(0x0800, ipv4_udp("192.0.2.1", 5060, "192.0.2.2", 5060,
                                                                b"OPTIONS sip:a SIP/2.0\r\n\r\n")))]))
    code, _, err, _ = upscope("analyze", str(cap), "--keylog", str(keys), "--no-progress")
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and str(keys) in warnings[0], err
    assert code == 0  # no TLS in this capture: nothing stayed encrypted


# --- the last line of defence --------------------------------------------------------------------

def test_an_unexpected_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A bug must not print a traceback or the exception's text (it could quote the input)."""
    code = ("import sys; sys.argv = ['upscope', 'check-site', 'x']\n"
            "import dashboard.cli_site as m\n"
            "def boom(*a, **k): raise KeyError('S3cr3t-canary')\n"
            "m.load_site = boom\n"
            "from dashboard.cli import main; main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "S3cr3t" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "internal error (KeyError" in proc.stderr


@pytest.mark.parametrize("option", ["--jwt-file", "--gcp-ranges"])
def test_fifo_as_jwt_or_cloud_json_is_refused_without_blocking(tmp_path: Path, option: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err, _ = upscope("diagnose", "--site", str(ROOT / "examples" / "site-healthy.yaml"), option, str(fifo),
                              timeout=30)
    line = one_line_error(code, err)
    assert "not a regular file" in line and str(fifo) in line
