"""Debian kamailio as a TLS SIP peer on a free loopback port, for the lab's and the probes' tests.

It runs in the foreground (``-DD -E``) in a process group of its own: a registrar (in-memory
location table) that answers OPTIONS with 200 and everything else with 404. The fixture waits until
the TLS port accepts connections and, at the end, until no process of the group is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CONFIG = """#!KAMAILIO
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

TLS_CONFIG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}
"""


def _module_path() -> str | None:
    for candidate in [*sorted(Path("/usr/lib").glob("*/kamailio/modules")), Path("/usr/lib/kamailio/modules")]:
        if (candidate / "tls.so").is_file():
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
    return members


@contextlib.contextmanager
def kamailio_tls(workdir: Path, cert: Path, key: Path) -> Iterator[int]:
    """A running kamailio with ``cert``/``key`` on 127.0.0.1; yields its TLS port."""
    exe, mpath = shutil.which("kamailio"), _module_path()
    if exe is None or mpath is None:
        pytest.skip("kamailio with kamailio-tls-modules is not installed (Debian packages)")
    port = _free_port()
    (workdir / "tls.cfg").write_text(TLS_CONFIG.format(key=key, cert=cert))
    (workdir / "kamailio.cfg").write_text(CONFIG.format(port=port, mpath=mpath, tls_cfg=workdir / "tls.cfg"))
    log_path = workdir / "kamailio.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [exe, "-f", str(workdir / "kamailio.cfg"), "-DD", "-E", "-Y", str(workdir),
             "-P", str(workdir / "kamailio.pid"), "-w", str(workdir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, log_path.read_text()[-2000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail("kamailio did not listen within 15 s")
            time.sleep(0.2)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group is gone if kamailio refused to start
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        deadline = time.monotonic() + 5
        while _group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not _group_members(proc.pid), "kamailio left processes behind"
