"""Decrypt SIP over TLS with a key log (SSLKEYLOGFILE format) through tshark.

tshark is the one TLS decryptor used. For
SIP on a non-standard port it needs both decode-as rules and an absolute key-log path
(checked with tshark 4.0: without either ``-d`` no SIP is decoded on 65061)::

    tshark -r CAP -o tls.keylog_file:/abs/keys.log -d tcp.port==P,tls -d tls.port==P,sip
           -Y "sip && tls" -T json -x -j "frame ip ipv6 tcp sip"

``-x`` adds ``sip_raw`` — the hex of each whole decrypted SIP message (start line, headers and
body, reassembled across records and segments) — so the messages go through our own parser
exactly like cleartext SIP. A frame holding several messages repeats the ``sip_raw`` key in
one JSON object; the JSON is read with a hook that keeps every duplicate.

The key log is only handed to tshark; its content is never read, logged or copied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.capture.packets import Addressed
from collectors.sip.analyzer import SipAnalyzer
from core.analysis import TlsFlowInfo
from core.errors import UpscopeError

DEFAULT_TIMEOUT_S = 900.0
DEFAULT_PORTS = frozenset({5061, 65061})  # SIP over TLS (RFC 3261) and the Unify Phone trunk


@dataclass(slots=True)
class DecryptedMessage(Addressed):
    """One SIP message tshark decrypted, where its TLS record was seen."""

    data: bytes


def tshark_command(capture: Path, keylog: Path, ports: Iterable[int], tshark: str = "tshark") -> list[str]:
    cmd = [tshark, "-n", "-r", str(capture), "-o", f"tls.keylog_file:{keylog.resolve()}"]
    for port in sorted(set(ports)):
        cmd += ["-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},sip"]
    cmd += ["-Y", "sip && tls", "-T", "json", "-x", "-j", "frame ip ipv6 tcp sip"]
    return cmd


def _multi(pairs: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


def _first(layer: dict[str, list[Any]], name: str) -> str | None:
    values = layer.get(name)
    if not values:
        return None
    v = values[0]
    return str(v[0] if isinstance(v, list) else v)


def parse_tshark_json(text: str) -> list[DecryptedMessage]:
    """The ``-T json -x`` output above → one DecryptedMessage per SIP message, in frame order."""
    try:
        packets = json.loads(text, object_pairs_hook=_multi) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise UpscopeError(f"tshark JSON output unreadable: {exc.msg} at char {exc.pos}") from None
    out: list[DecryptedMessage] = []
    for pkt in packets if isinstance(packets, list) else []:
        try:
            layers = pkt["_source"][0]["layers"][0]
            frame = layers["frame"][0]
            ip = (layers.get("ip") or layers.get("ipv6") or [{}])[0]
            tcp = layers["tcp"][0]
            number = int(_first(frame, "frame.number") or 0)
            ts = float(_first(frame, "frame.time_epoch") or 0.0)
            src = _first(ip, "ip.src") or _first(ip, "ipv6.src") or ""
            dst = _first(ip, "ip.dst") or _first(ip, "ipv6.dst") or ""
            sport = int(_first(tcp, "tcp.srcport") or 0)
            dport = int(_first(tcp, "tcp.dstport") or 0)
            raws = layers.get("sip_raw", [])
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # a packet without the expected layers is not a decrypted SIP message
        for raw in raws:
            hexdata = raw[0] if isinstance(raw, list) and raw else raw
            try:
                data = bytes.fromhex(str(hexdata))
            except ValueError:
                continue
            out.append(DecryptedMessage(number, ts, src, sport, dst, dport, data))
    return out


def decrypt_sip(capture: Path, keylog: Path, ports: Iterable[int], *, tshark: str = "tshark",
                timeout: float = DEFAULT_TIMEOUT_S) -> list[DecryptedMessage]:
    """Run tshark with the key log; raise ``UpscopeError`` with a one-line reason on failure."""
    exe = shutil.which(tshark)
    if exe is None:
        raise UpscopeError(f"TLS decryption needs tshark, not found on PATH ({tshark})")
    if not keylog.is_file():
        raise UpscopeError(f"key log {keylog} is not a readable file")
    if not capture.is_file():
        raise UpscopeError(f"capture {capture} is not a readable file")
    ports = sorted(set(ports))
    if not ports:
        return []
    try:
        proc = subprocess.run(tshark_command(capture, keylog, ports, exe), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise UpscopeError(f"tshark did not finish decrypting {capture} within {timeout:.0f} s") from None
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        # A damaged capture ("cut short in the middle of a packet") still yields the packets
        # before the damage: keep them when tshark wrote a complete JSON document.
        if out.strip():
            with contextlib.suppress(UpscopeError):
                return parse_tshark_json(out)
        lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                 if ln.strip() and "Running as user" not in ln]
        reason = lines[0] if lines else f"exit status {proc.returncode}"
        raise UpscopeError(f"tshark could not decrypt {capture}: {reason}")
    return parse_tshark_json(out)


def feed(analyzer: SipAnalyzer, messages: Iterable[DecryptedMessage]) -> int:
    """Hand every decrypted message to the SIP analyser as transport "tls"; returns the count."""
    n = 0
    for m in messages:
        analyzer.on_message_bytes(m.frame, m.ts, m.src, m.sport, m.dst, m.dport, "tls", m.data)
        n += 1
    return n


def tls_ports(flows: Iterable[TlsFlowInfo], default: Iterable[int] = DEFAULT_PORTS) -> set[int]:
    """Server ports of the TLS flows seen, plus the trunk defaults."""
    return {f.server_port for f in flows} | set(default)


def mark_decrypted(flows: tuple[TlsFlowInfo, ...],
                   messages: Iterable[DecryptedMessage]) -> tuple[TlsFlowInfo, ...]:
    """Set ``decrypted`` on the flows whose endpoints carried decrypted SIP."""
    seen = set()
    for m in messages:
        seen.add((m.src, m.sport, m.dst, m.dport))
        seen.add((m.dst, m.dport, m.src, m.sport))
    return tuple(dataclasses.replace(f, decrypted=True)
                 if (f.client, f.client_port, f.server, f.server_port) in seen else f for f in flows)
