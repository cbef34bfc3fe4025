"""``upscope analyze`` / ``upscope convert``: exit codes, one-line errors, JSON contract, HTML, export."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashboard.cli import app

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / ".." / "shared" / "pcaps"
runner = CliRunner()


def capture(name: str) -> Path:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {name} not found in {PCAPS}")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout, res.stderr


def test_complete_capture_exit_0_and_json_contract() -> None:
    code, out, err = invoke("analyze", "--format", "json", str(capture("sipnab_rtp-protocol.pcap")))
    assert code == 0, err
    doc = json.loads(out)
    for key in ("rtp_streams", "sip", "calls", "registrations", "keepalives", "tls_flows", "errors"):
        assert key in doc
    assert set(doc["sip"]) >= {"requests", "responses"}
    assert doc["sip"]["requests"] == {"INVITE": 1, "PRACK": 1, "ACK": 1, "BYE": 1}
    assert all(isinstance(k, str) for k in doc["sip"]["responses"])
    assert doc["partial"] is False
    call = doc["calls"][0]
    assert {"call_id", "final_code", "answered", "setup_ms", "duration_s"} <= set(call)
    assert call["answered"] is True and call["final_code"] == 200
    for s in doc["rtp_streams"]:
        assert {"src", "src_port", "dst", "dst_port", "ssrc", "payload_type", "codec", "packets", "expected",
                "lost", "max_delta_ms", "mean_jitter_ms", "max_jitter_ms", "mos", "call_id"} <= set(s)
        assert isinstance(s["ssrc"], int) and s["call_id"] == call["call_id"]


def test_truncated_capture_is_partial_exit_1(tmp_path: Path) -> None:
    src = capture("sipnab_SIP_CALL_RTP_G711.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src[:len(src) // 2])
    code, out, err = invoke("analyze", "-f", "json", str(cut))
    assert code == 1
    doc = json.loads(out)
    assert doc["partial"] is True and doc["packets"] > 1000
    assert err.count("\n") == 1 and "cut short" in err and "at byte" in err
    assert doc["errors"][0]["kind"] == "file" and doc["errors"][0]["offset"] > 0 and doc["summary"]["errors"]["file"] == 1


def test_garbage_in_the_middle_keeps_the_beginning(tmp_path: Path) -> None:
    src = capture("sipnab_rtp-protocol.pcap").read_bytes()
    bad = tmp_path / "garbage.pcap"
    bad.write_bytes(src[:20000] + b"\xff" * 64 + src[20000:])
    code, out, err = invoke("analyze", "-f", "json", str(bad))
    assert code == 1 and json.loads(out)["packets"] > 10 and "beyond the limit" in err


@pytest.mark.parametrize(("content", "needle"), [(b"", "empty"), (b"\x00" * 64, "not a pcap"),
                                                 (b"\xd4\xc3\xb2\xa1\x02\x00", "cut short")])
def test_nothing_usable_exit_2(tmp_path: Path, content: bytes, needle: str) -> None:
    f = tmp_path / "x.pcap"
    f.write_bytes(content)
    code, out, err = invoke("analyze", str(f))
    assert code == 2 and out == "" and needle in err and err.count("\n") == 1


def test_directory_and_missing_file_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("analyze", str(tmp_path))
    assert code == 2 and "directory" in err
    code, _, err = invoke("analyze", str(tmp_path / "nope.pcap"))
    assert code == 2 and "No such file" in err


def test_real_fuzzed_capture_no_crash() -> None:
    code, out, _ = invoke("analyze", "-f", "json", str(capture("ndpi_fuzz-2006-06-26-2594.pcap")))
    doc = json.loads(out)
    assert code == 0 and doc["packets"] == 691 and doc["summary"]["errors"]["malformed"] > 0


def test_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "bad.pcapng").write_bytes(b"\x0a\x0d\x0d\x0a" + b"\xff" * 40)
    exe = Path(sys.executable).parent / "upscope"
    if not exe.exists():
        pytest.skip(f"console script {exe} not installed")
    proc = subprocess.run([str(exe), "analyze", str(tmp_path / "bad.pcapng")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_table_and_html_and_out_dir(tmp_path: Path) -> None:
    pcap = str(capture("sngrep_aaa.pcap"))
    code, out, _ = invoke("analyze", pcap)
    assert code == 0 and "REGISTER" in out and "Registrations" in out
    code, out, _ = invoke("analyze", "-f", "html", pcap)
    assert code == 0 and out.startswith("<!DOCTYPE html>") and "<script" not in out
    code, out, _ = invoke("analyze", "-f", "json", "--out", str(tmp_path / "rep"), pcap)
    assert code == 0 and out == "" and json.loads((tmp_path / "rep" / "analysis.json").read_text())["packets"] == 691


def test_site_findings_are_listed() -> None:
    site = REPO / "examples" / "site-healthy.yaml"
    code, out, _ = invoke("analyze", "-f", "json", "--site", str(site), str(capture("sipnab_sip-auth-failure.pcapng")))
    doc = json.loads(out)
    assert "findings" in doc and all({"id", "severity", "evidence"} <= set(f) for f in doc["findings"])
    assert code == (1 if doc["findings"] else 0)


def test_export_one_call(tmp_path: Path) -> None:
    pcap = capture("heplify_sip_ipv4_tcp.pcap")
    _, out, _ = invoke("analyze", "-f", "json", str(pcap))
    doc = json.loads(out)
    call_id = doc["calls"][0]["call_id"]
    target = tmp_path / "call.pcap"
    code, _, err = invoke("analyze", "--call", call_id, "--export-pcap", str(target), "-f", "json", str(pcap))
    assert code == 0 and "wrote" in err
    _, out2, _ = invoke("analyze", "-f", "json", str(target))
    sub = json.loads(out2)
    assert sub["sip"] == doc["sip"]
    assert [s["packets"] for s in sub["rtp_streams"]] == [s["packets"] for s in doc["rtp_streams"]]
    code, _, err = invoke("analyze", "--call", "nope", "--export-pcap", str(target), str(pcap))
    assert code == 2 and "not found" in err


def test_call_without_export_is_a_usage_error() -> None:
    code, _, err = invoke("analyze", "--call", "x", str(capture("sipnab_sip-proxy.pcap")))
    assert code == 2 and "go together" in err


def test_convert_cli(tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    log.write_text('(SIP_SA [ldh:10.0.0.1] 1 "11/26/2026 10:00:00.000000" x)\r\nfrom 10.0.0.1:5060 to 10.0.0.2:5060\r\n'
                   "OPTIONS sip:10.0.0.2 SIP/2.0\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                   "<<OUT-END>>\r\n", newline="")
    out = tmp_path / "t.pcap"
    code, _, err = invoke("convert", str(log), "-o", str(out))
    assert code == 0 and "1 SIP messages" in err
    code, stdout, _ = invoke("analyze", "-f", "json", str(out))
    assert code == 0 and json.loads(stdout)["sip"]["requests"] == {"OPTIONS": 1}
    code, _, err = invoke("convert", str(capture("sipnab_sip-proxy.pcap")), "-o", str(tmp_path / "n.pcap"))
    assert code == 2 and "not an OSBiz SIP trace log" in err and not (tmp_path / "n.pcap").exists()


def test_export_is_readable_by_tshark(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    pcap = capture("sipnab_rtp-protocol.pcap")
    call_id = json.loads(invoke("analyze", "-f", "json", str(pcap))[1])["calls"][0]["call_id"]
    target = tmp_path / "c.pcap"
    invoke("analyze", "--call", call_id, "--export-pcap", str(target), str(pcap))
    stat = subprocess.run(["tshark", "-n", "-q", "-r", str(target), "-z", "sip,stat"], capture_output=True,
                          text=True, timeout=60, check=True).stdout
    assert "INVITE" in stat and "BYE" in stat


@pytest.mark.parametrize("port", [65061, 37083])  # the trunk port, and one only the capture shows
def test_keylog_decrypts_sip_over_tls(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    import ssl

    sys.path.insert(0, str(REPO / "tests" / "collectors" / "tls"))
    import tls_capture
    from tls_capture import tls_session, write_pcap

    monkeypatch.setattr(tls_capture, "SERVER", (tls_capture.SERVER[0], port))

    def msg(first: str, cseq: str) -> bytes:
        return (f"{first}\r\nVia: SIP/2.0/TLS 10.1.1.10:40001;branch=z9hG4bK7\r\nFrom: <sip:100@pbx>;tag=1\r\n"
                f"To: <sip:connector>\r\nCall-ID: tls-1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()

    keylog = tmp_path / "keys.log"
    s = tls_session(tmp_path, version=ssl.TLSVersion.TLSv1_3, keylog=keylog,
                    to_server=[msg("OPTIONS sip:connector SIP/2.0", "1 OPTIONS")],
                    to_client=[msg("SIP/2.0 200 OK", "1 OPTIONS")])
    cap = tmp_path / "trunk.pcap"
    write_pcap(cap, s.segments)
    code, out, _ = invoke("analyze", "-f", "json", str(cap))
    plain = json.loads(out)
    assert code == 0 and plain["sip"]["requests"] == {} and plain["tls_flows"][0]["server_port"] == port
    code, out, err = invoke("analyze", "-f", "json", "--keylog", str(keylog), str(cap))
    doc = json.loads(out)
    assert code == 0, err
    assert doc["sip"] == {"requests": {"OPTIONS": 1}, "responses": {"200": 1}}
    assert {m["transport"] for m in doc["sip_messages"]} == {"tls"}
    assert doc["tls_flows"][0]["decrypted"] is True
    secrets = [line.split()[-1] for line in keylog.read_text().splitlines() if line.strip()]
    assert secrets and not any(x in out or x.lower() in out for x in secrets)  # never in the report


def test_bad_site_file_fails_first(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text("system: [\n")
    code, out, err = invoke("analyze", "--site", str(bad), str(capture("sipnab_sip-proxy.pcap")))
    assert code == 2 and out == "" and err.count("\n") == 1 and "site.yaml" in err


def test_nothing_usable_with_a_site_is_still_one_line_exit_2(tmp_path: Path) -> None:
    """Without a timed packet the site's findings are judged as of now, not a crash."""
    import struct

    bad = tmp_path / "bad.pcap"
    bad.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + struct.pack("<IIII", 0, 0, 10**6, 10**6))
    code, _out, err = invoke("analyze", "-f", "json", "--site", str(REPO / "examples" / "site-healthy.yaml"), str(bad))
    assert code == 2 and err.count("\n") == 1 and "beyond" in err


def _trace_log(tmp_path: Path, ids: str) -> Path:
    from tests.traces.test_tracelog import LOG

    log = tmp_path / f"trace-{ids}.log"
    text = LOG
    for n in (1, 2, 3):
        text = text.replace(f'] {n} "', f'] {ids.format(n)} "')
    log.write_text(text, newline="")
    return log


def test_trace_log_with_0x_block_ids_reads_in_every_command(tmp_path: Path) -> None:
    log = _trace_log(tmp_path, "0x3a7{}")
    code, out, _ = invoke("analyze", str(log), "--format", "json", "--no-progress")
    doc = json.loads(out)
    assert code == 0 and doc["packets"] == 3 and doc["sip"]["requests"] == {"INVITE": 1}
    code, _, err = invoke("convert", str(log), "-o", str(tmp_path / "o.pcap"))
    assert code == 0 and "3 SIP messages written" in err
    code, out, _ = invoke("diagnose", "--trace-log", str(log), "--format", "json")
    assert code == 0 and json.loads(out)["sources"] == [str(log)]


def test_unreadable_trace_log_never_exits_without_a_line(tmp_path: Path) -> None:
    log = _trace_log(tmp_path, '0x3a7{} "junk')  # the timestamp no longer follows the id
    for args in (("analyze", str(log), "--no-progress"), ("convert", str(log), "-o", str(tmp_path / "o.pcap")),
                 ("diagnose", "--trace-log", str(log))):
        code, _, err = invoke(*args)
        assert code == 2, args
        assert "no SIP message blocks found" in err and "start line not understood" in err, (args, err)
