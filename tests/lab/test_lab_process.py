"""Process hygiene of ``upscope lab``: signals, --duration, taken ports, bad options."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from core.lab import LabConfig, LabError, run_lab
from core.wire.stun import build_binding_request, parse_datagram
from tests.lab.helpers import (
    ARTIFACTS,
    netns,
    nft_tables,
    parties,
    pid_alive,
    pki_dirs,
    upscope,
    upscope_popen,
)
from tests.processes import children, is_running

FAST_ARGS = ["--port", "0", "--calls-per-minute", "90", "--call-seconds", "2", "--keepalive", "2",
             "--register-expires", "6", "--addresses", "auto"]


def _wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _await_lab(proc: subprocess.Popen[str], out: Path, key: str) -> None:
    """Wait until lab.json has ``key`` set; a lab that never gets there fails the test with its stderr."""
    if not _wait_for(lambda: _lab_state(out).get(key), 40):
        proc.kill()
        pytest.fail(f"the lab did not get ready: {proc.communicate()[1][-2000:]}")


def _lab_state(out: Path) -> dict[str, object]:
    try:
        return json.loads((out / "lab.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.parametrize(("sig", "scenario"), [(signal.SIGTERM, "sip-tls-blocked"),
                                               (signal.SIGINT, "healthy")])
def test_signal_stops_cleanly_and_leaves_nothing_behind(tmp_path: Path, sig: int, scenario: str) -> None:
    out = tmp_path / "out"
    proc = upscope_popen("lab", "--scenario", scenario, "--duration", "120", "--out", str(out), *FAST_ARGS)
    try:
        _await_lab(proc, out, "capture_pid")
        state = _lab_state(out)
        capture_pid = int(state["capture_pid"])  # type: ignore[call-overload]
        assert state["running"] is True and state["pid"] == proc.pid
        if scenario == "healthy":
            trace = out / "osbiz-trace.log"
            assert _wait_for(lambda: trace.exists() and b"SIP/2.0 200 OK" in trace.read_bytes(), 30)
        elif os.geteuid() == 0:
            # the fault lives in a namespace of the lab's own, with its DROP rule inside
            assert state["netns"] and state["netns"] in netns()
            ruleset = subprocess.run(["ip", "netns", "exec", str(state["netns"]), "nft", "list", "ruleset"],
                                     capture_output=True, text=True, timeout=10).stdout
            assert f"tcp dport {state['sip_tls']} drop" in ruleset
            assert "upscope" not in nft_tables()  # the host's firewall is not touched
        time.sleep(1.0)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert json.loads(stdout)["scenario"] == scenario
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    assert _lab_state(out)["running"] is False
    assert not pid_alive(capture_pid)
    assert not pki_dirs(proc.pid)
    assert "upscope" not in nft_tables()
    # (other labs may run on this machine meanwhile: look for this one's names only)
    assert f"upscope-lab-{proc.pid}-" not in netns()
    assert not list(out.glob(".*.tmp"))
    if scenario == "healthy":  # a clean stop unregisters the trunk (Expires: 0 answered 200)
        tail = (out / "osbiz-trace.log").read_bytes().decode()[-3000:]
        assert "Expires: 0" in tail and "SIP/2.0 200 OK" in tail


def test_killed_lab_takes_its_capture_with_it(tmp_path: Path) -> None:
    """SIGKILL gives the lab no chance to stop dumpcap: the parent-death signal must."""
    out = tmp_path / "out"
    proc = upscope_popen("lab", "--duration", "120", "--out", str(out), *FAST_ARGS)
    try:
        _await_lab(proc, out, "capture_pid")
        capture_pid = int(_lab_state(out)["capture_pid"])  # type: ignore[call-overload]
        assert pid_alive(capture_pid)
        proc.kill()
        proc.communicate(timeout=10)
        # its new parent (init, or the container's PID 1) may not reap it: a zombie has stopped
        assert _wait_for(lambda: not is_running(capture_pid), 10), f"capture {capture_pid} outlived the lab"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_duration_ends_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    res = upscope("lab", "--duration", "3", "--out", str(out), *FAST_ARGS)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - started < 20
    stats = json.loads(res.stdout)["stats"]
    assert stats["pbx"]["register_answers"]["200"] >= 1
    assert _lab_state(out)["running"] is False


def test_system_name_names_the_lab_site(tmp_path: Path) -> None:
    """Labs watched side by side (a fleet) need distinct ``system`` labels: the site file's name."""
    out = tmp_path / "out"
    res = upscope("lab", "--duration", "2", "--out", str(out), "--system-name", "branch-07", *FAST_ARGS)
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load((out / "site.yaml").read_text())["system"]["name"] == "branch-07"


def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        res = upscope("lab", "--port", str(port), "--duration", "2", "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"upscope lab: SIP/TLS port 127.0.0.1:{port} is already in use"]
    assert not pki_dirs(os.getpid())


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "nope"], "unknown scenario 'nope'"),
    (["--fault-from", "5", "--fault-until", "2"], "--fault-until must be after --fault-from"),
    (["--connector", "nohost"], "is not HOST:PORT"),
    (["--scenario", "one-way-audio", "--connector", "127.0.0.1:5061"], "needs the emulated connector"),
    (["--loss", "150"], "--loss must be 0..100"),
    (["--connector", "127.0.0.1:5061", "--connector-ca", "/nonexistent/ca.pem"], "is not a readable file"),
    (["--out", "/dev/null"], "not a writable directory"),
    (["--addresses", "10.0.0"], "--addresses '10.0.0': expected 127.A.B"),
    (["--addresses", "127.0.256"], "expected 127.A.B (A, B in 0..255) or auto"),
    (["--system-name", "two words"], "--system-name 'two words'"),
])
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    res = upscope("lab", "--out", str(tmp_path / "o"), "--duration", "1", "--port", "0", *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr


def _tls_exchange(host: str, port: int, ca: Path, data: bytes, server_hostname: str | None = None) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_hostname or host) as tls:
        tls.sendall(data)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (TimeoutError, ssl.SSLError, ConnectionError):
            pass
        return got


def test_hostile_peers_do_not_break_the_lab(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = upscope_popen("lab", "--duration", "9", "--out", str(out), *FAST_ARGS)
    try:
        _await_lab(proc, out, "running")
        info = _lab_state(out)
        sip, rest, stun = int(info["sip_tls"]), int(info["rest"]), int(info["stun"])  # type: ignore[call-overload]
        ca = Path(str(info["ca_file"]))
        host = parties(out).connector
        time.sleep(1.0)
        # garbage and an absurd Content-Length: the connection is dropped, nothing answered
        assert _tls_exchange(host, sip, ca, b"NOT SIP AT ALL\r\n\r\n") == b""
        assert _tls_exchange(host, sip, ca, b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 999999999\r\n\r\n") == b""
        # requests without the usual headers still get a proper answer
        assert _tls_exchange(host, sip, ca, b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n").startswith(
            b"SIP/2.0 200 OK\r\n")
        forged = b'REGISTER sip:x SIP/2.0\r\nAuthorization: Digest nonce="zz", response="1"\r\n\r\n'
        assert _tls_exchange(host, sip, ca, forged).startswith(b"SIP/2.0 401 ")
        assert _tls_exchange(host, sip, ca, b"INVITE sip:+1@x SIP/2.0\r\nContent-Length: 3\r\n\r\nv=0"
                             ).startswith(b"SIP/2.0 404 ")
        # REST: no key, then an oversized header
        answer = _tls_exchange(host, rest, ca, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "phoneapp.unify.com")
        assert answer.startswith(b"HTTP/1.1 401 ")
        assert _tls_exchange(host, rest, ca, b"GET / HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
                             "phoneapp.unify.com") == b""
        # STUN: junk is ignored, a binding request is answered with the XOR-mapped source
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(3)
            udp.bind(("127.0.0.1", 0))
            udp.sendto(os.urandom(40), (host, stun))
            udp.sendto(build_binding_request(b"123456789012"), (host, stun))
            answer = parse_datagram(udp.recv(2048))
            assert (answer.klass, answer.transaction_id) == ("success", b"123456789012".hex())
            assert answer.mapped_address == "{}:{}".format(*udp.getsockname())
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "exception" not in stderr.lower()
    stats = json.loads(stdout)["stats"]
    assert stats["pbx"]["register_answers"]["200"] >= 2
    assert stats["pbx"]["calls_placed"]["answered"] + stats["pbx"]["calls_received"]["answered"] >= 3


def test_netns_block_mode_without_rights_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from core.lab import LabConfig, LabError
    from core.lab.config import validate
    from core.lab.netio import SipBlock

    monkeypatch.setattr(SipBlock, "available", staticmethod(lambda: False))
    with pytest.raises(LabError, match="needs root and the ip and nft programs"):
        validate(LabConfig(scenario="sip-tls-blocked", out=tmp_path, block_mode="netns"))
    # auto falls back to the black hole instead of failing
    validate(LabConfig(scenario="sip-tls-blocked", out=tmp_path, block_mode="auto"))


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_stale_namespace_of_a_killed_lab_is_swept() -> None:
    from core import netns as ns
    from core.lab.netio import SipBlock

    dead = 2**22 + 12345  # above the default pid_max of 4194304: never a live process
    name = f"{SipBlock.PREFIX}{dead}-1"
    ns.create(name)
    try:
        assert name in SipBlock.sweep_stale()
        assert name not in netns()
    finally:
        ns.delete(name)


def test_lab_runs_without_capture_rights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.lab import LabError, netio
    from tests.lab.helpers import lab

    def refuse(self: netio.Capture) -> None:
        raise LabError("capture on lo not permitted: Operation not permitted; try --no-capture")

    monkeypatch.setattr(netio.Capture, "start", refuse)
    summary = lab(tmp_path, "healthy", duration=3.0)
    assert summary.stats["pbx"]["register_answers"][200] >= 1
    assert summary.stats["warnings"] and "not permitted" in summary.stats["warnings"][0]
    info = _lab_state(summary.out)
    assert info["capture"] is None and info["warnings"]
    assert not (summary.out / "lab.pcapng").exists()


def test_stale_key_directory_of_a_killed_lab_is_swept() -> None:
    import tempfile

    from core.lab.tlsutil import make_pki, sweep_stale_pki

    dead = 2**22 + 54321  # above the default pid_max: never a live process
    stale = Path(tempfile.mkdtemp(prefix=f"upscope-lab-pki-{dead}-"))
    (stale / "key.pem").write_text("not a real key")
    mine = make_pki()  # sweeps on the way
    try:
        assert not stale.exists()
        assert mine.directory.exists() and mine.directory not in sweep_stale_pki()
    finally:
        mine.cleanup()


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace path is taken as root only")
def test_namespace_refused_falls_back_to_the_black_hole_in_auto_mode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root in a locked-down container may not create namespaces: auto still runs the scenario."""
    from core import netns as ns
    from core.lab import LabError
    from tests.lab.helpers import lab

    def refuse(name: str) -> None:
        raise ns.NamespaceError(f"network namespace {name} not created: Operation not permitted")

    monkeypatch.setattr(ns, "create", refuse)
    summary = lab(tmp_path, "sip-tls-blocked", duration=3.0)
    assert json.loads((summary.out / "scenario.json").read_text())["block_mode"] == "blackhole"
    assert any("Operation not permitted" in w for w in summary.stats["warnings"])
    with pytest.raises(LabError, match="try --block-mode blackhole"):
        lab(tmp_path / "forced", "sip-tls-blocked", duration=3.0, block_mode="netns")


def _open_fds() -> set[str]:
    return {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}


def test_a_set_up_that_fails_half_way_undoes_what_it_made(tmp_path: Path) -> None:
    """The STUN port is taken after the SIP and REST ports were bound: both are closed again,
    the key directory removed and the signal handlers restored; no lab.json is left."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        fds, handler = _open_fds(), signal.getsignal(signal.SIGTERM)
        with pytest.raises(LabError, match=f"STUN port 127.0.0.1:{port} cannot be bound"):
            run_lab(LabConfig(out=tmp_path / "o", sip_port=0, stun_port=port, duration=1))
    assert _open_fds() <= fds | {f"socket:[{busy.fileno()}]"}
    assert signal.getsignal(signal.SIGTERM) == handler
    assert not pki_dirs(os.getpid()) and not (tmp_path / "o" / "lab.json").exists()


def test_a_failure_once_everything_runs_stops_the_capture_and_closes_every_listener(tmp_path: Path) -> None:
    """An exception after the capture started and the connector listens (here from the ready
    callback) unwinds all of it: no capture process, no socket, lab.json marked stopped."""
    out = tmp_path / "o"
    fds, before = _open_fds(), set(children(os.getpid()))

    def boom(info: dict[str, object]) -> None:
        assert info["capture_pid"] in children(os.getpid())
        raise RuntimeError("failure injected at ready")

    with pytest.raises(RuntimeError, match="failure injected at ready") as caught:
        run_lab(LabConfig(out=out, sip_port=0, duration=30, addresses="auto"), on_ready=boom)
    assert set(children(os.getpid())) <= before
    del caught  # its traceback keeps the lab's TLS contexts, which hold the key log open
    gc.collect()
    assert _open_fds() <= fds
    state = json.loads((out / "lab.json").read_text())
    assert state["running"] is False and state["stopped"] and not pki_dirs(os.getpid())
