"""Full SIP messages read again on demand: the same frames and times as the analysis's ladder
(UDP, TCP, SIP over TLS through the key log, the OSBiz trace log), credentials redacted (checked
against tshark's decryption of the lab's digest REGISTER), bounds, and Wireshark's packet detail
through pyshark."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.analyze import analyze_files
from collectors.call_messages import MAX_MESSAGE_CHARS, ReadTimeout, message_text, read_call_messages
from collectors.packet_detail import packet_detail
from traces.redact import redact_sip

# one worker runs the module: its tests share one module fixture
pytestmark = pytest.mark.xdist_group("call_messages")
PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"


def _shared(name: str) -> Path:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"{path} not present (the shared capture corpus lives in ../shared/pcaps)")
    return path


@pytest.mark.parametrize("name", ["sipnab_SIP_CALL_RTP_G711.pcap", "heplify_sip_ipv4_tcp.pcap",
                                  "sipnab_sip-488-codec-reject.pcapng", "suricata_sip-compact-form.pcap"])
def test_the_messages_of_each_call_are_the_ladders(name: str) -> None:
    """Every call's full messages sit at the frames and times the analysis put on its ladder, and
    each one starts with the start line the analysis summarised."""
    path = _shared(name)
    result = analyze_files([path])
    assert result.calls
    for call in result.calls:
        found, more = read_call_messages([path], lambda cid, want=call.call_id: cid == want)
        ladder = sorted((m.frame, m.ts, m.src, m.dst, m.summary) for m in result.sip_messages
                        if m.call_id == call.call_id)
        assert sorted((m.frame, m.ts, m.src, m.dst, m.text.split("\n", 1)[0]) for m in found) == ladder
        assert more == 0 and all(m.source == name and m.call_id == call.call_id for m in found)


def test_a_deadline_stops_the_read() -> None:
    path = _shared("sipnab_SIP_CALL_RTP_G711.pcap")
    with pytest.raises(ReadTimeout):
        read_call_messages([path], lambda cid: True, deadline_s=-1.0)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The healthy lab for 8 s: SIP over TLS with a key log, a digest REGISTER, an OSBiz trace log."""
    if shutil.which("dumpcap") is None:
        pytest.skip("dumpcap (tshark package) not installed: the lab cannot capture")
    out = tmp_path_factory.mktemp("lab")
    proc = subprocess.run([sys.executable, "-c", "from dashboard.cli import main; main()", "lab", "--scenario",
                           "healthy", "--duration", "8", "--port", "0", "--calls-per-minute", "30", "--out", str(out),
                           "--addresses", "auto"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-500:]
    yield out


def _api_key(site: Path) -> str:
    line = next(x for x in site.read_text(encoding="utf-8").splitlines() if x.strip().startswith("api_key:"))
    return line.split(":", 1)[1].strip()


def test_sip_over_tls_and_the_trace_log_read_like_the_analysis(lab: Path) -> None:
    info = json.loads((lab / "lab.json").read_text())
    port = int(info["sip_tls"])
    cap, keys, trace = lab / "lab.pcapng", lab / "sslkeys.log", lab / "osbiz-trace.log"
    result = analyze_files([cap], keylog=keys, tls_ports=(port,))
    call = result.calls[0]
    found, _ = read_call_messages([cap], lambda cid: cid == call.call_id, keylog=keys, tls_ports=(port,))
    assert sorted((m.frame, m.ts) for m in found) == sorted((m.frame, m.ts) for m in result.sip_messages
                                                             if m.call_id == call.call_id)
    assert {m.transport for m in found} == {"tls"}
    assert any("m=audio " in m.text for m in found)  # the SDP bodies are there
    with_trace = analyze_files([cap, trace])
    traced = with_trace.calls[0]
    found, _ = read_call_messages([cap, trace], lambda cid: cid == traced.call_id)
    assert {m.source for m in found} == {"osbiz-trace.log"}
    assert sorted((m.frame, m.ts) for m in found) == sorted((m.frame, m.ts) for m in with_trace.sip_messages
                                                             if m.call_id == traced.call_id)


def test_digest_credentials_never_leave(lab: Path) -> None:
    """The lab's REGISTER carries Authorization: Digest … response=…, nonce=… (the API key is the
    password): tshark decrypts the values; none of them, nor the API key, is in the text shown."""
    info = json.loads((lab / "lab.json").read_text())
    port = int(info["sip_tls"])
    cap, keys = lab / "lab.pcapng", lab / "sslkeys.log"
    out = subprocess.run(
        ["tshark", "-r", str(cap), "-o", f"tls.keylog_file:{keys}", "-d", f"tcp.port=={port},tls",
         "-d", f"tls.port=={port},sip", "-Y", "sip.auth.digest.response", "-T", "fields",
         "-e", "sip.auth.digest.response", "-e", "sip.auth.nonce", "-e", "sip.Call-ID"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    assert rows, "the lab sent no digest REGISTER"
    secrets = {v.strip('"') for response, nonce, _ in rows for v in (response, nonce) if v}
    call_ids = {cid for _, _, cid in rows}
    found, _ = read_call_messages([cap], lambda cid: cid in call_ids, keylog=keys, tls_ports=(port,),
                                  known_secrets=(_api_key(lab / "site.yaml"),))
    text = "\n".join(m.text for m in found)
    assert "Authorization: Digest " in text and "response=<redacted>" in text and "nonce=<redacted>" in text
    assert not any(s in text for s in secrets)
    assert _api_key(lab / "site.yaml") not in text
    # the frame itself in the packet detail: decrypted SIP, the same values redacted
    register = next(m for m in found if "Authorization:" in m.text)
    detail = packet_detail(cap, register.frame, keylog=keys, tls_ports=(port,))
    tree = "\n".join(detail.lines)
    assert not detail.note and "Request-Line: REGISTER" in tree
    assert not any(s in tree for s in secrets)


def test_packet_detail_is_wiresharks_tree() -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    path = _shared("sipnab_SIP_CALL_RTP_G711.pcap")
    detail = packet_detail(path, 1)
    assert not detail.note
    tops = [line for line in detail.lines if not line.startswith(" ")]
    assert tops[:5] == ["FRAME", "ETH", "IP", "UDP", "SIP"]
    assert "  Request-Line: INVITE sip:francisco@bestel.com:55060 SIP/2.0" in detail.lines
    assert any(line.startswith("    ") for line in detail.lines)  # nested fields
    assert packet_detail(path, 10**6).note == f"frame {10**6} is not in {path.name}"


def test_packet_detail_without_tshark_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tshark on it
    detail = packet_detail(tmp_path / "x.pcap", 1)
    assert detail.lines == () and detail.note == "packet details need tshark (apt-get install tshark)"


@given(st.binary(max_size=2 * MAX_MESSAGE_CHARS))
@settings(max_examples=50, deadline=None)
def test_any_message_bytes_give_bounded_text(raw: bytes) -> None:
    text, cut = message_text(raw)
    assert cut == (len(raw) > MAX_MESSAGE_CHARS)
    assert len(text) <= 4 * MAX_MESSAGE_CHARS  # replacement characters and redaction marks only


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=300))
@settings(max_examples=200, deadline=None)
def test_redaction_removes_any_digest_response(secret: str) -> None:
    value = "".join(ch for ch in secret if ch not in '",\r\n\t ') or "x"
    text = (f'REGISTER sip:a SIP/2.0\nAuthorization: Digest username="u", response="{value}", nonce={value}\n'
            f"X-Api-Key: {value}\n\nbody")
    shown = redact_sip(text)
    assert re.search(r"response=([^,\n]*)", shown).group(1) == "<redacted>"  # type: ignore[union-attr]
    assert re.search(r"nonce=([^,\n]*)", shown).group(1) == "<redacted>"  # type: ignore[union-attr]
    assert re.search(r"X-Api-Key: ([^\n]*)", shown).group(1).startswith("<redacted sha256:")  # type: ignore[union-attr]
    assert shown.endswith("\n\nbody")
