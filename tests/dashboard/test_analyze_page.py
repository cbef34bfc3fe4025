"""The Analyze page through AppTest's file uploader: a real capture, a damaged one, garbage, the
size limit; after an analysis the other pages show the upload."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, sources

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"

SCRIPT = """
import streamlit as st
from dashboard.pages import {page}
{page}.render()
"""


def _capture(name: str) -> bytes:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"{path} not found (the shared captures live in ../shared/pcaps)")
    return path.read_bytes()


def _upload(name: str, blob: bytes, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    # No default source: only the upload exists in this session.
    monkeypatch.delenv(data.SOURCE_ENV, raising=False)
    at = AppTest.from_string(SCRIPT.format(page="analyze"), default_timeout=60)
    at.run()
    at.file_uploader(key="analyze.capture").set_value((name, blob, "application/octet-stream"))
    at.run()
    at.button(key="analyze.go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_upload_a_real_capture_then_other_pages_show_it(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _upload("sipnab_SIP_CALL_RTP_G711.pcap", _capture("sipnab_SIP_CALL_RTP_G711.pcap"), monkeypatch)
    summary = at.success[0].value
    assert summary.startswith("upload sipnab_SIP_CALL_RTP_G711.pcap: 4269 packets")  # tshark: 4269 frames
    streams = at.dataframe[-1].value
    # tshark -z rtp,streams (SDP-announced): 891 and 548 packets of PCMA; both are in the table.
    assert {891, 548} <= set(streams["packets"])
    src = at.session_state[data.UPLOAD_KEY]
    assert isinstance(src, sources.OfflineSource)
    # The other pages of this session read the upload, with a banner saying so.
    media = AppTest.from_string(SCRIPT.format(page="media"), default_timeout=30)
    media.session_state[data.UPLOAD_KEY] = src
    media.run()
    assert "Showing the uploaded capture" in media.info[0].value
    assert {891, 548} <= set(media.dataframe[0].value["packets"])
    media.button(key="upscope.back-live").click().run()
    assert data.UPLOAD_KEY not in media.session_state


def test_damaged_capture_shows_what_was_still_analysed(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _capture("sipnab_SIP_CALL_RTP_G711.pcap")
    at = _upload("cut.pcap", blob[: len(blob) // 2 + 7], monkeypatch)
    assert at.success and "packets" in at.success[0].value
    assert "could not be parsed; the rest was analysed" in at.warning[0].value


def test_garbage_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _upload("garbage.pcap", b"this is not a capture at all\n" * 10, monkeypatch)
    assert at.error[0].value.startswith("garbage.pcap: nothing could be analysed: ")
    assert "\n" not in at.error[0].value
    assert data.UPLOAD_KEY not in at.session_state  # the pages keep showing what they showed


def test_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.pages import analyze

    monkeypatch.setattr(analyze, "MAX_UPLOAD_MB", 1)
    at = _upload("big.pcap", b"\0" * (2 << 20), monkeypatch)
    assert at.error[0].value == "big.pcap: 2.1 MB is over the 1 MB limit"


def test_an_engine_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the analysis engine raises on hostile input, the page shows one line."""
    import collectors.analyze

    def boom(*args: object, **kwargs: object) -> None:
        raise IndexError("S3cr3t value quoted by a bug")

    monkeypatch.setattr(collectors.analyze, "analyze_files", boom)
    at = _upload("hostile.pcap", b"\xd4\xc3\xb2\xa1" + b"\0" * 100, monkeypatch)
    # The exception's own text may quote the input: only its kind is shown.
    assert at.error[0].value == "hostile.pcap: analysis failed (IndexError)"


@pytest.mark.parametrize("name", ["asterisk_ast-2016-003_t38_crash.pcap", "asterisk_ast-2017-012_crash-27382.pcap",
                                  "ndpi_fuzz-2006-06-26-2594.pcap", "ndpi_fuzz-2021-10-13_cut-short.pcap",
                                  "sngrep_hist_tlssaved.pcap", "zeek_trunc-hdr.pcap"])
def test_hostile_real_captures_never_crash_the_page(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash reproducers, fuzzed and truncated files from the shared corpus: a result or one line."""
    at = _upload(name, _capture(name), monkeypatch)
    shown = [e.value for e in at.error] + [s.value for s in at.success]
    assert len(shown) == 1, shown
    assert "\n" not in shown[0]


def test_gzip_bomb_upload_is_refused_before_any_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """3.6 MB uploaded, 1 GiB once inflated: the 200 MB upload limit bounds only the former."""
    import struct
    import zlib

    record = struct.pack("<IIII", 1, 0, 60, 60) + bytes(60)
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    blob = z.compress(head) + b"".join(z.compress(record * (1 << 14)) for _ in range(1024)) + z.flush()
    at = _upload("bomb.pcap.gz", blob, monkeypatch)
    assert "decompression bomb" in at.error[0].value and "\n" not in at.error[0].value
    assert data.UPLOAD_KEY not in at.session_state


def test_network_monitor_cap_is_not_offered() -> None:
    """A Microsoft Network Monitor .cap is not a pcap: the uploader does not offer the extension."""
    from dashboard.pages import analyze

    assert "cap" not in analyze.CAPTURE_TYPES
