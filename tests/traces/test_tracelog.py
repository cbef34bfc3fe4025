"""OSBiz SIP trace log reader (DOMAIN §11) and ``convert`` to pcap, checked with tshark."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import UpscopeError
from traces.convert import convert_trace_log
from traces.tracelog import MAX_BLOCK_LINES, TraceLogReader, TraceMessage, looks_like_trace_log

PBX, CONN = "192.168.1.10", "35.246.178.13"
INVITE_BODY = "v=0\r\no=- 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 10000 RTP/AVP 8\r\n"


def sip(first: str, cseq: str, body: str = "") -> str:
    return (f"{first}\r\nVia: SIP/2.0/TLS {PBX}:5061;branch=z9hG4bK{abs(hash(first)) % 1000}\r\n"
            f"From: <sip:100@{PBX}>;tag=a\r\nTo: <sip:+4930123@{CONN}>\r\nCall-ID: call-1@{PBX}\r\n"
            f"CSeq: {cseq}\r\nContent-Length: {len(body)}\r\n\r\n{body}")


def block(n: int, out: bool, message: str, stamp: str = "11/26/2026 12:00:00.250000", nl: str = "\r\n",
          end: bool = True) -> str:
    src, dst = (f"{PBX}:5061", f"{CONN}:65061") if out else (f"{CONN}:65061", f"{PBX}:5061")
    text = (f'(SIP_SA [ldh:{PBX}] {n:x} "{stamp}" SIP message)\r\nfrom {src} to {dst}\r\n{message}'
            + ("" if message.endswith("\r\n") else "\r\n"))
    if end:
        text += ("<<OUT-END>>" if out else ">>IN-END<<") + "\r\n"
    return text.replace("\r\n", nl)


LOG = (block(1, True, sip("INVITE sip:+4930123@x SIP/2.0", "1 INVITE", INVITE_BODY))
       + "12:00:00 some other OSBiz trace line\r\n"
       + block(2, False, sip("SIP/2.0 100 Trying", "1 INVITE"), "11/26/2026 12:00:00.300000")
       + block(3, False, sip("SIP/2.0 200 OK", "1 INVITE"), "11/26/2026 12:00:02.000000"))


def read(text: str | bytes, step: int | None = None) -> tuple[TraceLogReader, list[TraceMessage]]:
    data = text.encode() if isinstance(text, str) else text
    r = TraceLogReader()
    out: list[TraceMessage] = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for p in pieces:
        out += r.feed(p)
    out += r.close()
    return r, out


def test_blocks_become_messages_with_addresses_direction_and_time() -> None:
    r, msgs = read(LOG)
    assert not r.errors and [m.index for m in msgs] == [1, 2, 3]
    first = msgs[0]
    assert (first.src, first.sport, first.dst, first.dport, first.outgoing) == (PBX, 5061, CONN, 65061, True)
    assert msgs[1].outgoing is False
    assert first.ts == pytest.approx(1795694400.25)
    assert first.data.endswith(INVITE_BODY.encode())  # body cut back to Content-Length
    assert first.data.startswith(b"INVITE sip:")


def test_lf_only_and_chunked_feeding_give_the_same_messages() -> None:
    whole = [m.data.replace(b"\r\n", b"\n") for m in read(LOG)[1]]
    lf, lf_msgs = read(LOG.replace("\r\n", "\n"), step=7)
    assert not lf.errors and [m.data for m in lf_msgs] == whole


def test_cut_off_last_block_is_reported_as_truncated() -> None:
    r, msgs = read(LOG + block(4, True, sip("ACK sip:x SIP/2.0", "1 ACK"), end=False))
    assert len(msgs) == 3
    assert [(e.kind, e.layer) for e in r.errors] == [("truncated", "trace")]
    assert r.errors[0].offset == len(LOG.encode())


def test_block_without_end_marker_gives_up_after_the_limit() -> None:
    runaway = block(9, True, "X-Junk: y\r\n" * (MAX_BLOCK_LINES + 5), end=False)
    r, msgs = read(runaway + LOG)
    assert len(msgs) == 3
    assert [e.kind for e in r.errors] == ["malformed"] and "after 100 lines" in r.errors[0].message


def test_next_block_start_interrupts_an_unterminated_block() -> None:
    r, msgs = read(block(7, True, sip("BYE sip:x SIP/2.0", "2 BYE"), end=False) + LOG)
    assert len(msgs) == 3 and [e.kind for e in r.errors] == ["malformed"]


def test_sniffing(tmp_path: Path) -> None:
    log = tmp_path / "trace.txt"
    log.write_text(LOG)
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"\xd4\xc3\xb2\xa1" + LOG.encode())
    assert looks_like_trace_log(log) and not looks_like_trace_log(pcap)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"(SIP_SA [ldh:1.2.3.4] 1f \"01/02/2026 03:04:05.6\" x\r\n",
                                 b"from 1.2.3.4:5 to 6.7.8.9:10\r\n", b"<<OUT-END>>\r\n", b">>IN-END<<\n",
                                 b"INVITE sip:a SIP/2.0\r\n", b"Content-Length: 3\r\n", b"\r\n", b"\xff\x00junk"]),
                max_size=30), st.binary(max_size=64), st.integers(1, 50))
def test_any_input_yields_messages_or_error_items(parts: list[bytes], noise: bytes, step: int) -> None:
    _, msgs = read(b"".join(parts) + noise, step)
    for m in msgs:
        assert m.data.strip() and 0 <= m.sport <= 65535


def test_convert_rejects_non_trace_input(tmp_path: Path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(UpscopeError, match="not an OSBiz SIP trace log"), (tmp_path / "o.pcap").open("wb") as fh:
        convert_trace_log(bad, fh)


def test_convert_output_decodes_as_sip_in_tshark(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    log = tmp_path / "trace.log"
    log.write_text(LOG + block(4, True, sip("ACK sip:x SIP/2.0", "1 ACK")), newline="")
    out = tmp_path / "out.pcap"
    with out.open("wb") as fh:
        res = convert_trace_log(log, fh)
    assert res.messages == 4 and not res.errors
    fields = subprocess.run(
        ["tshark", "-n", "-r", str(out), "-Y", "sip", "-T", "fields", "-e", "frame.number", "-e", "sip.Method",
         "-e", "sip.Status-Code", "-e", "ip.src", "-e", "udp.dstport"],
        capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in fields if line]
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    assert [r[1] or r[2] for r in rows] == ["INVITE", "100", "200", "ACK"]
    assert [r[3] for r in rows] == [PBX, CONN, CONN, PBX] and rows[0][4] == "65061"


@pytest.mark.parametrize("ident", ["0x3a71", "0X3A71", "15017", "3a71-2", ""])
def test_block_id_spelling_is_not_relied_on(ident: str) -> None:
    """The block id is unused and its format unconfirmed: ``0x3a71``, decimal or none at all read alike."""
    text = LOG.replace("] 1 \"", f"] {ident} \"").replace("] 2 \"", f"] {ident} \"").replace("] 3 \"", f"] {ident} \"")
    assert text.count(f"] {ident} \"") == 3
    r, msgs = read(text)
    assert not r.errors and [m.data for m in msgs] == [m.data for m in read(LOG)[1]]


def test_a_start_line_not_understood_is_reported_not_dropped() -> None:
    bad = LOG.replace('"11/26/2026 12:00:00.300000"', '"26.11.2026 12:00:00"')
    r, msgs = read(bad)
    assert [m.index for m in msgs] == [1, 2]  # the other two blocks still read
    assert [e.kind for e in r.errors] == ["malformed"]
    assert "start line not understood" in r.errors[0].message
    assert r.errors[0].offset == bad.encode().index(b"(SIP_SA", 1)


def test_error_items_are_bounded_but_all_counted() -> None:
    from traces.tracelog import MAX_ERRORS

    r, msgs = read("(SIP_SA [ldh:1.2.3.4] x y\r\n" * (MAX_ERRORS + 50))
    assert not msgs and len(r.errors) == MAX_ERRORS and r.error_count == MAX_ERRORS + 50
