"""The full SIP messages of one call, read again from the evidence files when someone asks.

Theory of operation. The analysis keeps one summary per SIP message (``SipMessageInfo``): no
headers, no bodies, so no credential can reach a report, a snapshot or a page, and the analysis
JSON stays small. When an engineer opens a call, this module reads the same files again (the
captures, the OSBiz trace log — as files or as messages already read —, SIP over TLS through the
key log) through the same pipeline and SIP analyser, so frame numbers, times and addresses are
exactly those of the ladder; it keeps the messages whose Call-ID is the call's (or whose Call-ID
digest is the one the service's history stores), redacted (``traces.redact.redact_sip``) and
bounded: at most ``MAX_MESSAGES`` messages per call, ``MAX_MESSAGE_CHARS`` characters each,
``MAX_TOTAL_CHARS`` in all, a deadline on the whole read. The media analyser is switched off for this pass: only signalling is wanted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.analyze import Pipeline, feed_decrypted_sip
from collectors.capture.reader import RecordBatch
from core.analysis import SeenAt, SipMessageInfo
from core.errors import UpscopeError
from traces.redact import redact_sip
from traces.tracelog import TraceMessage, looks_like_trace_log

MAX_MESSAGES = 500
MAX_MESSAGE_CHARS = 64 * 1024
MAX_TOTAL_CHARS = 32 * 1024 * 1024
DEFAULT_DEADLINE_S = 30.0


@dataclass(frozen=True, slots=True)
class FullMessage(SeenAt):
    """One SIP message as sent, redacted: where it was seen and its text."""

    call_id: str
    source: str  # the file it was read from (its name), "trace log" for messages handed in
    text: str  # start line, headers, body; CRLF as LF
    truncated: bool = False  # longer than MAX_MESSAGE_CHARS: cut

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "frame": self.frame, "ts": self.ts, "src": self.src, "src_port": self.src_port, "dst": self.dst,
                "dst_port": self.dst_port, "transport": self.transport, "source": self.source, "text": self.text,
                "truncated": self.truncated}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FullMessage:
        return cls(int(d["frame"]), float(d["ts"]), str(d["src"]), int(d["src_port"]), str(d["dst"]),
                   int(d["dst_port"]), str(d["transport"]), str(d["call_id"]), str(d["source"]), str(d["text"]),
                   bool(d.get("truncated")))


class ReadTimeout(UpscopeError):
    """The files took longer than the deadline to read."""


def message_text(raw: bytes, known: tuple[str, ...] = ()) -> tuple[str, bool]:
    """Raw message bytes → (redacted text with LF line ends, cut?)."""
    cut = len(raw) > MAX_MESSAGE_CHARS
    text = raw[:MAX_MESSAGE_CHARS].decode("utf-8", "replace").replace("\r\n", "\n")
    return redact_sip(text, known), cut


class _SignallingPipeline(Pipeline):
    """The analysis pipeline without media, keeping the raw bytes of one call's messages."""

    def __init__(self, wanted: Callable[[str], bool], known: tuple[str, ...], deadline: float) -> None:
        super().__init__(keep_messages=0)
        self.rtp = None  # signalling only: the fast lane and RTP/RTCP are skipped
        self._wanted = wanted
        self._known = known
        self._deadline = deadline
        self.source = ""
        self.found: list[FullMessage] = []
        self.more = 0  # matching messages beyond the bounds
        self._per_call: dict[str, int] = {}
        self._chars = 0

    def _on_sip(self, info: SipMessageInfo, msg: Any, raw: bytes) -> None:
        if not info.call_id or not self._wanted(info.call_id):
            return
        if self._per_call.get(info.call_id, 0) >= MAX_MESSAGES or self._chars >= MAX_TOTAL_CHARS:
            self.more += 1
            return
        self._per_call[info.call_id] = self._per_call.get(info.call_id, 0) + 1
        text, cut = message_text(raw, self._known)
        self._chars += len(text)
        self.found.append(FullMessage(info.frame, info.ts, info.src, info.src_port, info.dst, info.dst_port,
                                      info.transport, info.call_id, self.source, text, cut))

    def feed_batch(self, batch: RecordBatch) -> None:
        if time.monotonic() > self._deadline:
            raise ReadTimeout("reading the capture files took too long")
        super().feed_batch(batch)


def as_text(found: Iterable[FullMessage]) -> str:
    """Messages as one text for a ticket or a bundle: a line saying where each was seen, then the
    message (already redacted)."""
    parts = []
    for m in found:
        parts.append(f"=== frame {m.frame} · {m.ts:.6f} (UNIX s) · {m.src}:{m.src_port} -> {m.dst}:{m.dst_port} · "
                     f"{m.transport} · {m.source}" + (" · cut at 64 KiB" if m.truncated else ""))
        parts.append(m.text.rstrip("\n") + "\n")
    return "\n".join(parts)


def texts_by_call(found: Iterable[FullMessage]) -> dict[str, str]:
    """``as_text`` per Call-ID."""
    grouped: dict[str, list[FullMessage]] = {}
    for m in found:
        grouped.setdefault(m.call_id, []).append(m)
    return {cid: as_text(ms) for cid, ms in grouped.items()}


def read_call_messages(
    files: Sequence[Path],
    wanted: Callable[[str], bool],
    *,
    trace_messages: Iterable[TraceMessage] = (),
    keylog: Path | None = None,
    tls_ports: Iterable[int] = (),
    known_secrets: tuple[str, ...] = (),
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> tuple[tuple[FullMessage, ...], int]:
    """(the messages whose Call-ID ``wanted`` accepts, in time order; how many more were not kept).

    ``files`` are read in the order the analysis read them (captures and OSBiz trace logs);
    ``trace_messages`` are trace messages already read (the service tails its log);
    ``keylog`` decrypts SIP over TLS as the analysis did. ``ReadTimeout`` past the deadline."""
    pipe = _SignallingPipeline(wanted, known_secrets, time.monotonic() + deadline_s)
    ports = tuple(tls_ports)
    for path in files:
        pipe.source = path.name
        if path.is_file() and looks_like_trace_log(path):
            pipe.add_trace_log(path)
        else:
            pipe.add_capture(path)
            if keylog is not None and path.is_file():
                feed_decrypted_sip(pipe, path, keylog, ports)
    for piece in pipe.tcp_streams.finish():  # what the streams still hold, as the analysis's finish does
        pipe._stream(piece)
    pipe.source = "trace log"
    pipe.add_trace_messages(trace_messages)
    found = sorted(pipe.found, key=lambda m: (m.ts, m.frame))
    return tuple(found), pipe.more
