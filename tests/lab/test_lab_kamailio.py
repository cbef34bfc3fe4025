"""``--connector HOST:PORT``: the emulated OSBiz registers at a real SIP server (Debian kamailio).

kamailio runs in the foreground (``-DD -E``) as a TLS registrar on a free loopback port with a
certificate made at test time; the lab verifies it against that CA.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from core.lab.tlsutil import make_pki
from tests.lab.helpers import lab, trace_messages, tshark_sip

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
tcp_children=2
enable_tls=yes
auto_aliases=no
listen=tls:127.0.0.1:{port}
mpath="{mpath}"
loadmodule "tls.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("tls", "config", "{tls_cfg}")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 60)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("REGISTER")) {{ if (!save("location")) {{ sl_reply_error(); }} exit; }}
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("ACK")) {{ exit; }}
    sl_send_reply("404", "Not Found");
    exit;
}}
"""

TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}
"""


def _module_path() -> str | None:
    for candidate in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
                      "/usr/lib/kamailio/modules", "/usr/local/lib64/kamailio/modules"):
        if Path(candidate, "tls.so").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except OSError:
                continue
    return members


def test_pbx_side_registers_at_a_real_kamailio_over_tls(tmp_path: Path) -> None:
    kamailio = shutil.which("kamailio")
    mpath = _module_path()
    if kamailio is None or mpath is None:
        pytest.skip("kamailio with kamailio-tls-modules is not installed (Debian packages)")
    pki = make_pki(("127.0.0.1",))
    ca = tmp_path / "ca.pem"
    shutil.copy(pki.ca_pem, ca)
    shutil.copy(pki.cert_pem, tmp_path / "cert.pem")
    shutil.copy(pki.key_pem, tmp_path / "key.pem")
    pki.cleanup()
    port = _free_port()
    (tmp_path / "tls.cfg").write_text(TLS_CFG.format(key=tmp_path / "key.pem", cert=tmp_path / "cert.pem"))
    (tmp_path / "kamailio.cfg").write_text(
        KAMAILIO_CFG.format(port=port, mpath=mpath, tls_cfg=tmp_path / "tls.cfg"))
    log = (tmp_path / "kamailio.log").open("w")
    proc = subprocess.Popen(
        [kamailio, "-f", str(tmp_path / "kamailio.cfg"), "-DD", "-E", "-Y", str(tmp_path),
         "-P", str(tmp_path / "k.pid"), "-w", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "kamailio.log").read_text()[-2000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("kamailio did not listen within 15 s")
        summary = lab(tmp_path, "healthy", duration=5.0, connector=("127.0.0.1", port),
                      connector_ca=ca, register_expires=30)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
    deadline = time.monotonic() + 5
    while _group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_members(proc.pid)

    out = summary.out
    pbx = summary.stats["pbx"]
    assert pbx["register_answers"].get(200, 0) >= 1 and pbx["options_ok"] >= 1
    assert "connector" not in summary.stats  # no emulated connector ran
    msgs = trace_messages(out / "osbiz-trace.log")
    register_ok = [m for m in msgs if m[0] == "in" and m[1] == "SIP/2.0 200 OK" and m[3].endswith("REGISTER")]
    assert register_ok
    # kamailio knows no Unify Phone number: the PBX's calls get its 404
    assert any(m[1] == "SIP/2.0 404 Not Found" and m[3].endswith("INVITE") for m in msgs)
    # the capture, decrypted with the lab's key log, shows the same REGISTER/200 with kamailio
    wire = tshark_sip(out)
    assert any(m.status == 200 and m.cseq.endswith("REGISTER") and m.src == "127.0.0.1" for m in wire)
    site = (out / "site.yaml").read_text()
    assert f"port: {port}" in site
