"""The fuzz targets: every parser entry point of upscope, and the whole capture pipeline.

One table (``TARGETS``) names each entry point by ``module:attribute``; when a codec moves (e.g.
to ``core/wire``), only its row changes. A target takes bytes and either returns or raises the
documented error type — ``core.errors.UpscopeError`` (``ParseError`` for wire and capture data,
``ConfigError`` for the site file and ``cloud.json``). Anything else is a bug: the CI property
tests (``test_fuzz_targets.py``) and the long-running harness (``fuzz.py``) both call ``run``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import UpscopeError
from core.wire.stream import NEED_DATA

DOCUMENTED_ERRORS: tuple[type[BaseException], ...] = (UpscopeError,)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    entry: str  # "module:attribute" of the public entry point
    drive: Callable[[Any, bytes], None]  # how the entry point is fed one input
    max_size: int = 4096  # largest input the CI property test draws


def _call(fn: Any, data: bytes) -> None:
    fn(data)


def _stream(framer_cls: Any, data: bytes) -> None:
    """Feed in pieces whose sizes come from the input itself, draining events after each piece."""
    framer = framer_cls()
    pos = 0
    step = 1 + (data[0] % 97 if data else 0)
    for _ in range(len(data) + 1):
        framer.feed(data[pos:pos + step])
        pos += step
        for _ in range(10_000):
            try:
                event = framer.next_event()
            except UpscopeError:
                continue  # a stream parser resynchronises after an error: keep draining
            if event is NEED_DATA:
                break
        else:
            raise AssertionError("stream parser yields more than 10 000 events for one piece")
        if pos >= len(data):
            return


def _capture(parser_cls: Any, data: bytes) -> None:
    parser = parser_cls()
    for batch in parser.feed(data):
        len(batch)
    parser.close()


def _decode(decoder_cls: Any, data: bytes) -> None:
    """One frame per 0xFF-separated piece; the first byte picks the link type."""
    from collectors.analyze import Pipeline
    from collectors.capture.decode import LINK_NAMES

    pipe = Pipeline()
    decoder = decoder_cls(pipe)
    types = sorted(LINK_NAMES)
    for frame, piece in enumerate(data.split(b"\xff\xfe"), start=1):
        if piece:
            decoder.decode(frame, float(frame), types[piece[0] % len(types)], piece[1:])
    pipe.finish()


def _trace_log(reader_cls: Any, data: bytes) -> None:
    reader = reader_cls()
    half = len(data) // 2
    reader.feed(data[:half])
    reader.feed(data[half:])
    reader.close()


def _pipeline(parser_cls: Any, data: bytes) -> None:
    """Capture bytes → batches → every analyser → the JSON report (what ``upscope analyze`` does)."""
    from collectors.analyze import Pipeline
    from collectors.report import to_json_dict

    pipe = Pipeline()
    parser = parser_cls()
    try:
        for batch in parser.feed(data):
            pipe.feed_batch(batch)
        parser.close()
    except UpscopeError:
        pass  # the reader stops at damaged data; what came before is still analysed
    to_json_dict(pipe.finish())


def _text(fn: Any, data: bytes) -> None:
    fn(data.decode("utf-8", "replace"))


def _jwt(fn: Any, data: bytes) -> None:
    fn(data.decode("utf-8", "replace"), NOW)


def _site(fn: Any, data: bytes) -> None:
    fn(data.decode("utf-8", "replace"), "fuzz.yaml")


TARGETS: tuple[Target, ...] = (
    Target("capture_reader", "collectors.capture.reader:CaptureParser", _capture, 8192),
    Target("link_decode", "collectors.capture.decode:Decoder", _decode),
    Target("trace_log", "traces.tracelog:TraceLogReader", _trace_log),
    Target("sip_message", "core.wire.sip:parse_message", _call),
    Target("sip_stream", "core.wire.sip:SipStreamFramer", _stream),
    Target("sdp", "core.wire.sdp:parse_sdp", _call),
    Target("digest_challenge", "core.wire.digest:parse_challenge", _text),
    Target("digest_credentials", "core.wire.digest:parse_credentials", _text),
    Target("stun_message", "core.wire.stun:parse_stun", _call),
    Target("stun_datagram", "core.wire.stun:parse_datagram", _call),
    Target("stun_stream", "core.wire.stun:StunStreamFramer", _stream),
    Target("rtp", "core.wire.rtp:parse_rtp", _call),
    Target("rtcp", "core.wire.rtp:parse_rtcp", _call),
    Target("telephone_event", "core.wire.rtp:parse_telephone_event", _call),
    Target("tls_records", "core.wire.tls:TlsRecordParser", _stream),
    Target("site_yaml", "core.site.loader:load_site_text", _site),
    Target("jwt", "core.jwt_status:jwt_state", _jwt),
    Target("gcp_ranges", "core.gcp_ranges:load_gcp_ranges", _text),
    Target("keylog", "collectors.tls.keylog:check_keylog_text", _call),
    Target("pipeline", "collectors.capture.reader:CaptureParser", _pipeline, 16384),
)
BY_NAME = {t.name: t for t in TARGETS}


def entry_point(target: Target) -> Any:
    module, _, attr = target.entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def runner(target: Target) -> Callable[[bytes], None]:
    """``f(data)``: feeds one input; the documented error type is swallowed, anything else raised."""
    fn = entry_point(target)
    drive = target.drive

    def run(data: bytes) -> None:
        with contextlib.suppress(*DOCUMENTED_ERRORS):
            drive(fn, data)

    return run
