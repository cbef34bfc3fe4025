from __future__ import annotations

import os
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.runtime.tail import LogTail
from core.errors import UpscopeError


def _data(events: list) -> bytes:
    return b"".join(e.data for e in events if e.kind == "data")


def test_follows_appends_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    log.write_bytes(b"one\ntw")
    tail = LogTail(log)
    assert _data(tail.read_new()) == b"one\n"  # the partial line waits for its newline
    with log.open("ab") as fh:
        fh.write(b"o\nthree\n")
    assert _data(tail.read_new()) == b"two\nthree\n"

    with log.open("ab") as fh:
        fh.write(b"last-of-old\n")
    os.rename(log, tmp_path / "trace.log.1")
    log.write_bytes(b"new-1\n")
    events = tail.read_new()
    assert [e.kind for e in events] == ["data", "rotated", "data"]
    assert _data(events) == b"last-of-old\nnew-1\n"

    log.write_bytes(b"x\n")  # truncated in place (shorter than our offset)
    events = tail.read_new()
    assert "truncated" in [e.kind for e in events]
    assert _data(events) == b"x\n"

    log.unlink()
    assert [e.kind for e in tail.read_new()] == ["missing"]
    tail.close()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_appended_bytes_come_out_whole_and_in_order(tmp_path_factory, chunks: list[bytes]) -> None:
    log = tmp_path_factory.mktemp("tail") / "t.log"
    log.write_bytes(b"")
    tail = LogTail(log)
    out = b""
    for chunk in chunks:
        with log.open("ab") as fh:
            fh.write(chunk)
        out += _data(tail.read_new())
    everything = b"".join(chunks)
    assert out == everything[: everything.rfind(b"\n") + 1]
    tail.close()


def test_a_fifo_in_place_of_the_trace_log_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "trace.log"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def read() -> None:
        try:
            LogTail(fifo).read_new()
            outcome.append("read")
        except UpscopeError as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert outcome and "not a regular file" in outcome[0]
