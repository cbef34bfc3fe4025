"""TLS record and handshake codec, on real OpenSSL sessions and hostile bytes."""

from __future__ import annotations

import contextlib
import ssl
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collectors" / "tls"))
from counting import CountingBuffer
from tls_capture import tls_session

from core.errors import ParseError
from core.wire.tls import (
    NEED_DATA,
    Alert,
    CertificateMsg,
    ClientHello,
    ServerHello,
    TlsRecord,
    TlsRecordParser,
)
from tests.core.wire.framing import drain


def events(data: bytes) -> list[object]:
    p = TlsRecordParser()
    p.feed(data)
    out: list[object] = []
    while (ev := p.next_event()) is not NEED_DATA:
        out.append(ev)
    return out



@pytest.mark.parametrize(("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLS 1.2"), (ssl.TLSVersion.TLSv1_3, "TLS 1.3")])
def test_hello_fields_from_a_real_handshake(tmp_path: Path, version: ssl.TLSVersion, name: str) -> None:
    s = tls_session(tmp_path, version=version, keylog=None, to_server=[], to_client=[])
    client = b"".join(d for c, d in s.segments if c)
    server = b"".join(d for c, d in s.segments if not c)
    (hello,) = [e for e in events(client) if isinstance(e, ClientHello)]
    assert hello.sni == "trunk.example" and 0x0303 in hello.offered_versions
    (sh,) = [e for e in events(server) if isinstance(e, ServerHello)]
    assert sh.selected_version == (0x0303 if name == "TLS 1.2" else 0x0304)
    certs = [e for e in events(server) if isinstance(e, CertificateMsg)]
    assert len(certs) == (1 if name == "TLS 1.2" else 0)  # TLS 1.3 encrypts the Certificate


def test_plaintext_alert_and_bad_records() -> None:
    (rec, alert) = events(b"\x15\x03\x03\x00\x02\x02\x30")
    assert isinstance(rec, TlsRecord) and isinstance(alert, Alert)
    assert (alert.level, alert.description) == ("fatal", "unknown_ca")
    with pytest.raises(ParseError):
        events(b"\x63\x03\x03\x00\x02\x02\x30")
    with pytest.raises(ParseError):
        events(b"\x16\x03\x03\xff\xff")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.binary(max_size=200).map(lambda b: b"\x16\x03\x01" + struct.pack("!H", len(b)) + b))
def test_any_bytes_give_events_or_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        events(data)




_SESSIONS: dict[str, list[bytes]] = {}


def _directions(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    if not _SESSIONS:
        s = tls_session(tmp_path_factory.mktemp("tls"), version=ssl.TLSVersion.TLSv1_2, keylog=None,
                        to_server=[b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n"], to_client=[])
        _SESSIONS["c"] = [d for c, d in s.segments if c]
        _SESSIONS["s"] = [d for c, d in s.segments if not c]
    return [b"".join(_SESSIONS["c"]), b"".join(_SESSIONS["s"])]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=20), st.integers(0, 1))
def test_a_real_handshake_gives_the_same_events_whatever_the_chunking(
        tmp_path_factory: pytest.TempPathFactory, cuts: list[int], side: int) -> None:
    stream = _directions(tmp_path_factory)[side]
    whole = TlsRecordParser()
    whole.feed(stream)
    expected = drain(whole)
    for sizes in ([1], cuts):
        p = TlsRecordParser()
        evs: list[object] = []
        pos = i = 0
        while pos < len(stream):
            n = sizes[i % len(sizes)]
            p.feed(stream[pos:pos + n])
            pos, i = pos + n, i + 1
            evs += drain(p)
        assert evs == expected
    assert any(isinstance(e, ClientHello | ServerHello) for e in expected)


def test_a_megabyte_of_tiny_records_in_one_chunk_is_parsed_in_linear_work() -> None:
    record = b"\x17\x03\x03\x00\x01x"  # application data, one byte each
    stream = b"\x16\x03\x01\x00\x04\x0e\x00\x00\x00" + record * 170_000  # (a ServerHelloDone first)
    p = TlsRecordParser()
    p._buf = CountingBuffer()
    CountingBuffer.touched = 0
    p.feed(stream)
    evs = drain(p)
    assert len(evs) == 2 + 170_000 and p._buf[p._pos:] == b""
    assert CountingBuffer.touched <= 4 * len(stream), CountingBuffer.touched / len(stream)
