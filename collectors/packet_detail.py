"""One frame as Wireshark's packet-detail pane shows it, through pyshark (tshark).

Theory of operation. The dashboard asks for the frame of a ladder arrow in a given capture file;
tshark dissects it (``-Y frame.number == N``) with the TLS key log and the decode-as rules the
analysis uses for SIP over TLS on the connector's port (``tcp.port==P`` → TLS, ``tls.port==P`` →
SIP, as ``collectors.tls.decrypt`` does), so an encrypted trunk shows its SIP. pyshark gives every
layer's fields with their display text (``showname``); a field ``a.b.c`` is drawn under ``a.b``
when the layer has one, which is how tshark nests most of them.

Bounded: one frame, a deadline (``DEFAULT_TIMEOUT_S``), at most ``MAX_LINES`` lines of at most
``MAX_LINE_CHARS``. Redacted: fields that carry credentials or single-use values (digest response,
nonce, cnonce, opaque, authorization headers, key and token headers) show ``<redacted>``, and every
line passes ``traces.redact.redact_line`` with the known secret values. Without tshark, or when it
fails, the answer is one line saying so (``PacketDetail.note``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traces.redact import redact_line

DEFAULT_TIMEOUT_S = 20.0
MAX_LINES = 2000
MAX_LINE_CHARS = 300
#: Field names whose values are never shown (SIP/HTTP auth, digest parameters, keys, tokens).
_SECRET_FIELD = re.compile(
    r"(?i)(auth|nonce|opaque|\.response$|digest\.resp|rspauth|api.?key|token|secret|passw|credential|cookie)")
#: Fields that describe the authentication without revealing anything.
_PUBLIC_FIELD = re.compile(r"(?i)\.(username|realm|uri|algorithm|scheme|qop|nc)$")


@dataclass(frozen=True, slots=True)
class PacketDetail:
    frame: int
    lines: tuple[str, ...]  # the tree, two spaces per level; empty when ``note`` says why
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.frame, "lines": list(self.lines), "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PacketDetail:
        return cls(int(d.get("frame") or 0), tuple(str(x) for x in d.get("lines") or ()), str(d.get("note") or ""))


def packet_detail(capture: Path, frame: int, *, keylog: Path | None = None, tls_ports: Iterable[int] = (),
                  known_secrets: tuple[str, ...] = (), timeout_s: float = DEFAULT_TIMEOUT_S) -> PacketDetail:
    """The dissection tree of ``frame`` in ``capture``; a ``note`` instead when it cannot be had."""
    if shutil.which("tshark") is None:
        return PacketDetail(frame, (), "packet details need tshark (apt-get install tshark)")
    if frame < 1:
        return PacketDetail(frame, (), f"no frame {frame}")
    try:
        import pyshark
    except ImportError:
        return PacketDetail(frame, (), "packet details need the pyshark package")
    ports = sorted({*tls_ports, 5061, 65061})
    decode_as: dict[str, str] = {}
    for port in ports:
        decode_as[f"tcp.port=={port}"] = "tls"
        decode_as[f"tls.port=={port}"] = "sip"
    prefs = {"tls.keylog_file": str(keylog.resolve())} if keylog is not None and keylog.is_file() else None
    loop = asyncio.new_event_loop()  # pages and HTTP handlers run in threads without one
    packets: list[Any] = []
    cap = pyshark.FileCapture(str(capture), display_filter=f"frame.number == {int(frame)}", keep_packets=False,
                              decode_as=decode_as, override_prefs=prefs, eventloop=loop)
    try:
        cap.apply_on_packets(packets.append, timeout=timeout_s)
    except TimeoutError:
        if not packets:
            return PacketDetail(frame, (), f"tshark took longer than {timeout_s:.0f} s")
    except Exception as exc:  # tshark's own failure (unreadable file, crash): one line, no traceback
        return PacketDetail(frame, (), f"tshark could not dissect the frame ({type(exc).__name__})")
    finally:
        with contextlib.suppress(Exception):  # closing a capture whose tshark already exited
            cap.close()
        loop.close()
    if not packets:
        return PacketDetail(frame, (), f"frame {frame} is not in {capture.name}")
    return PacketDetail(frame, tuple(_tree(packets[0], known_secrets)))


def _tree(packet: Any, known: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    info = getattr(packet, "frame_info", None)
    layers = ([info] if info is not None else []) + list(packet.layers)
    for layer in layers:
        name = str(getattr(layer, "layer_name", "?"))
        lines.append(_clip(f"{name.upper() if len(name) <= 5 else name}"))
        fields: dict[str, Any] = getattr(layer, "_all_fields", {}) or {}
        names = [n for n in fields if n]
        present = set(names)
        for field_name in names:
            depth = 1 + _depth(field_name, present)
            for field in _all(fields[field_name]):
                show = str(getattr(field, "showname", "") or "").strip()
                if not show or getattr(field, "hide", None) == "yes":  # hidden in Wireshark too
                    continue
                if _SECRET_FIELD.search(field_name) and not _PUBLIC_FIELD.search(field_name):
                    label = show.split(":", 1)[0]
                    show = f"{label}: <redacted>"
                lines.append(_clip("  " * depth + redact_line(show, known)))
                if len(lines) >= MAX_LINES:
                    lines.append(f"… cut at {MAX_LINES} lines")
                    return lines
    return lines


def _depth(name: str, present: set[str]) -> int:
    """How many of the field's name prefixes are fields of the layer too (its ancestors)."""
    parts = name.split(".")
    return sum(1 for k in range(2, len(parts)) if ".".join(parts[:k]) in present)


def _all(container: Any) -> list[Any]:
    many = getattr(container, "all_fields", None)
    return list(many) if many else [container]


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS - 1] + "…"
