#!/usr/bin/env python3
"""Regenerate the tshark reference outputs for the shared test captures.

For every capture in ``<repo>/../shared/pcaps`` this runs
``tshark -n -q -r FILE [per-file options] -z rtp,streams -z sip,stat`` with the per-file options that
``INVENTORY.md`` records ("tshark options used: `...`"), parses the two text reports and writes
``tests/reference/tshark/<capture>.json``. The JSON files are checked in so that the agreement tests
run without tshark; ``tests/collectors/test_tshark_agreement.py`` also has a live variant that calls
:func:`run_tshark` directly.

It also writes ``tests/reference/tshark-synthetic/quirky-<variant>.json`` for the synthetic call
of ``synthetic_media.py`` (every RTP quirk the corpus lacks, over Ethernet, 802.1Q, SLL, IPv6).

Usage:  .venv/bin/python tests/reference/make_tshark_refs.py [CAPTURE_DIR] [OUT_DIR]
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PCAPS = REPO / ".." / "shared" / "pcaps"
DEFAULT_OUT = Path(__file__).resolve().parent / "tshark"

HEURISTIC = ["-o", "rtp.heuristic_rtp:TRUE"]
# Options added to INVENTORY.md's, each with the reason (reviewable): keep this list short.
OVERRIDES: dict[str, tuple[list[str], str]] = {
    "rtpproxy_DLT_NULL.a.pcap": (
        ["-d", "udp.port==12344,rtp"],
        "tshark 4.0 never tries its RTP heuristic on these BSD-loopback frames (it shows LLC/3COM "
        "XNS, see INVENTORY.md); Decode-As on the receiving port yields the three streams",
    ),
}

_SECTION = re.compile(r"^### `(?P<name>[^`]+)`", re.MULTILINE)
_OPTIONS = re.compile(r"tshark options used: `(?P<opts>[^`]*)`")


def inventory_options(inventory: Path) -> dict[str, list[str]]:
    """Capture name → the extra tshark arguments INVENTORY.md lists for it (empty when none)."""
    text = inventory.read_text(encoding="utf-8")
    result: dict[str, list[str]] = {}
    sections = list(_SECTION.finditer(text))
    for i, m in enumerate(sections):
        end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
        opts = _OPTIONS.search(text, m.end(), end)
        result[m.group("name")] = shlex.split(opts.group("opts")) if opts else []
    return result


_SIP_CODE = re.compile(r"^\s+SIP (\d{3}) .*:\s+(\d+) Packets", re.MULTILINE)
_SIP_METHOD = re.compile(r"^\s+([A-Z][A-Z0-9_-]*)\s+:\s+(\d+) Packets", re.MULTILINE)


def parse_sip_stat(text: str) -> dict[str, Any]:
    """The ``-z sip,stat`` block → message totals, request and response counts."""
    start = text.find("SIP Statistics")
    if start < 0:
        return {"messages": 0, "resent": 0, "requests": {}, "responses": {}}
    block = text[start : text.find("=====", start)]
    messages = re.search(r"Number of SIP messages: (\d+)", block)
    resent = re.search(r"Number of resent SIP messages: (\d+)", block)
    req_start = block.find("List of SIP Request methods")
    responses: dict[str, int] = {}
    for code, count in _SIP_CODE.findall(block[:req_start]):
        responses[code] = responses.get(code, 0) + int(count)
    requests = {m: int(c) for m, c in _SIP_METHOD.findall(block[req_start:])} if req_start >= 0 else {}
    return {
        "messages": int(messages.group(1)) if messages else 0,
        "resent": int(resent.group(1)) if resent else 0,
        "requests": requests,
        "responses": responses,
    }


def parse_rtp_streams(text: str) -> list[dict[str, Any]]:
    """The ``-z rtp,streams`` table (tshark 4.x layout) → one dict per stream, in tshark's order."""
    start = text.find("RTP Streams ===")
    if start < 0:
        return []
    lines = text[start:].splitlines()[2:]
    streams: list[dict[str, Any]] = []
    for line in lines:
        if line.startswith("====="):
            break
        tok = line.split()
        if len(tok) < 17:
            continue
        problem = tok[-1] == "X"
        if problem:
            tok = tok[:-1]
        # fixed columns on the left (7) and right (9); the payload list may in theory hold spaces
        (start_t, end_t, src, sport, dst, dport, ssrc) = tok[:7]
        right = tok[-9:]
        payload = " ".join(tok[7:-9])
        pkts, lost, lost_pct, min_d, mean_d, max_d, min_j, mean_j, max_j = right
        streams.append(
            {
                "src": src,
                "src_port": int(sport),
                "dst": dst,
                "dst_port": int(dport),
                "ssrc": int(ssrc, 16),
                "payload": payload,
                "packets": int(pkts),
                "lost": int(lost),
                "lost_pct": float(lost_pct.strip("()%")),
                "start_time": float(start_t),
                "end_time": float(end_t),
                "min_delta_ms": float(min_d),
                "mean_delta_ms": float(mean_d),
                "max_delta_ms": float(max_d),
                "min_jitter_ms": float(min_j),
                "mean_jitter_ms": float(mean_j),
                "max_jitter_ms": float(max_j),
                "problem": problem,
            }
        )
    return streams


def tshark_version() -> str:
    out = subprocess.run(["tshark", "-v"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def _tshark(capture: Path, options: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = ["tshark", "-n", "-q", "-r", str(capture), *options, "-z", "rtp,streams", "-z", "sip,stat"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def run_tshark(capture: Path, options: list[str]) -> dict[str, Any]:
    """Run tshark on one capture with its options; return the parsed reference record.

    ``rtp_streams_heuristic`` is a second run with ``rtp.heuristic_rtp`` on when the first had it
    off: streams that upscope finds by its heuristic in a SIP capture are checked against it.
    """
    extra, reason = OVERRIDES.get(capture.name, ([], ""))
    options = [*options, *extra]
    proc = _tshark(capture, options)
    record: dict[str, Any] = {
        "capture": capture.name,
        "tshark": tshark_version(),
        "options": options,
        "override_reason": reason,
        "exit_code": proc.returncode,
        "sip": parse_sip_stat(proc.stdout),
        "rtp_streams": parse_rtp_streams(proc.stdout),
    }
    if "rtp.heuristic_rtp:TRUE" not in options:
        record["rtp_streams_heuristic"] = parse_rtp_streams(_tshark(capture, [*options, *HEURISTIC]).stdout)
    return record


def main(argv: list[str]) -> int:
    pcaps = Path(argv[1]) if len(argv) > 1 else DEFAULT_PCAPS
    out = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    inventory = pcaps / "INVENTORY.md"
    if not inventory.is_file():
        print(f"error: {inventory} not found", file=sys.stderr)
        return 2
    options = inventory_options(inventory)
    out.mkdir(parents=True, exist_ok=True)
    for capture in sorted(p for p in pcaps.iterdir() if p.name in options):
        record = run_tshark(capture, options[capture.name])
        (out / f"{capture.name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{capture.name}: {len(record['rtp_streams'])} RTP streams, {record['sip']['messages']} SIP")
    write_synthetic_refs(out.parent / "tshark-synthetic")
    return 0


def write_synthetic_refs(out: Path) -> None:
    """tshark's numbers for each variant of ``synthetic_media.write_quirky_call`` (deterministic)."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import synthetic_media

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for variant, (link, ipv6) in synthetic_media.VARIANTS.items():
            capture = Path(tmp) / f"quirky-{variant}.pcap"
            synthetic_media.write_quirky_call(capture, link=link, ipv6=ipv6)
            record = run_tshark(capture, [])
            (out / f"quirky-{variant}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            print(f"synthetic {variant}: {len(record['rtp_streams'])} RTP streams")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
