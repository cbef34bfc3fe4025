"""Probes against real SIP servers on loopback: Debian kamailio over TLS, and the lab's connector."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from probe_peers import Certs

from collectors.probes import run
from core.lab import LabConfig, run_lab
from core.lab.tlsutil import CONNECTOR_NAME
from tests.peers.kamailio import kamailio_tls

pytestmark = pytest.mark.e2e

def test_sip_options_tls_against_kamailio(tmp_path: Path, certs: Certs) -> None:
    with kamailio_tls(tmp_path, certs.leaf_cert, certs.leaf_key) as port:
        result = None
        for _ in range(60):  # until kamailio answers (bounded: ≤ 60 × 0.5 s)
            result = run("sip_options_tls", f"127.0.0.1:{port}", timeout=2, ca_file=str(certs.ca),
                         server_name="connector.test")
            if result.success:
                break
            time.sleep(0.25)
        assert result is not None and result.success, result.reason if result else "no probe ran"
        assert result.details["status_code"] == 200
        assert result.details["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert result.details["cert_verified"] is True
        assert result.details["cert_not_after"] == certs.leaf_not_after
        assert "kamailio" in result.details.get("server", "").lower()
        assert set(result.phases) == {"resolve", "connect", "tls", "request"}
        # kamailio answers the OPTIONS with a To-tag: the probe matched our Call-ID in a real stack's reply
        assert any(line.startswith("< SIP 200 OK") for line in result.transcript)
        tcp = run("tcp_connect", f"127.0.0.1:{port}", timeout=2)
        assert tcp.success


def test_probes_against_the_lab_connector(tmp_path: Path) -> None:
    ready = threading.Event()
    info: dict[str, Any] = {}
    errors: list[BaseException] = []

    def on_ready(lab_json: dict[str, Any]) -> None:
        info.update(lab_json)
        ready.set()

    def lab() -> None:
        try:
            run_lab(LabConfig(scenario="healthy", out=tmp_path / "lab", duration=6.0, sip_port=0, capture=False,
                              keepalive=2.0, register_expires=6, addresses="auto"), on_ready)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=lab, daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "the lab did not become ready within 30 s"
        assert not errors, errors
        ca = info["ca_file"]
        conn = info["connector"]
        sip = run("sip_options_tls", f"{conn['ip']}:{conn['sip_tls']}", timeout=5, ca_file=ca,
                  server_name=CONNECTOR_NAME)
        assert sip.success, sip.reason
        assert sip.details["status_code"] == 200 and sip.details["cert_verified"] is True
        wrong_name = run("sip_options_tls", f"{conn['ip']}:{conn['sip_tls']}", timeout=5, ca_file=ca,
                         server_name="other.upscope.invalid")
        assert not wrong_name.success
        assert "not accepted" in wrong_name.reason and "mismatch" in wrong_name.reason.lower()
        untrusted = run("sip_options_tls", f"{conn['ip']}:{conn['sip_tls']}", timeout=5)  # system CAs only
        assert not untrusted.success and untrusted.details["cert_verified"] is False
        stun = run("stun", f"{conn['ip']}:{conn['stun']}", timeout=3)
        assert stun.success, stun.reason
        assert stun.details["mapped_address"].startswith("127.0.0.1:")
        rest_target = f"{conn['ip']}:{conn['rest']}"
        rest = run("https_rest", rest_target, timeout=5, ca_file=ca, server_name=CONNECTOR_NAME)
        assert rest.success, rest.reason  # no API key sent: answered 401/403, which proves reachability
        assert rest.details["status_code"] in (401, 403)
        wrong = run("https_rest", rest_target, timeout=5, ca_file=ca, server_name=CONNECTOR_NAME,
                    api_key="WRONG-canary-key-77")
        assert not wrong.success  # authenticated: only a 2xx is success
        assert wrong.reason.endswith("answered 401 Unauthorized (invalid_api_key — API key invalid or regenerated)")
        assert "WRONG-canary-key-77" not in json.dumps(wrong.to_dict())
        key = yaml.safe_load((tmp_path / "lab" / "site.yaml").read_text())["connectivity"]["api_key"]
        if not str(key).startswith(("env:", "file:")):
            good = run("https_rest", rest_target, timeout=5, ca_file=ca, server_name=CONNECTOR_NAME, api_key=key)
            assert good.success and good.details["status_code"] == 200, good.reason
            assert key not in json.dumps(good.to_dict())
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert not errors, errors
