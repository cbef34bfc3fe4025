"""``--connector HOST:PORT``: the emulated OSBiz registers at a real SIP server (Debian kamailio).

kamailio (``tests.peers.kamailio``) runs as a TLS registrar on a free loopback port with a
certificate made at test time; the lab verifies it against that CA.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from core.lab.tlsutil import make_pki
from tests.lab.helpers import lab, trace_messages, tshark_sip
from tests.peers.kamailio import kamailio_tls


def test_pbx_side_registers_at_a_real_kamailio_over_tls(tmp_path: Path) -> None:
    pki = make_pki(("127.0.0.1",))
    ca = tmp_path / "ca.pem"
    shutil.copy(pki.ca_pem, ca)
    shutil.copy(pki.cert_pem, tmp_path / "cert.pem")
    shutil.copy(pki.key_pem, tmp_path / "key.pem")
    pki.cleanup()
    with kamailio_tls(tmp_path, tmp_path / "cert.pem", tmp_path / "key.pem") as port:
        summary = lab(tmp_path, "healthy", duration=5.0, connector=("127.0.0.1", port),
                      connector_ca=ca, register_expires=30)

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
