from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from core.site import load_site_text
from traces.bundle import build_bundle, trace_checklist
from traces.redact import fingerprint, redact_text, redact_tree

API_KEY = "CANARY-APIKEY-7f3e9d1c2b"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlLWNhbmFyeQ"
SIP_PASSWORD = "CANARY-sip-pass-55aa"
ROOT = Path(__file__).resolve().parents[2]


def test_fingerprint_is_short_and_not_a_prefix() -> None:
    fp = fingerprint(API_KEY)
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 6
    assert API_KEY[:4] not in fp


def test_tree_redaction_covers_nested_credentials() -> None:
    tree = {"connectivity": {"api_key": API_KEY, "domain": "phoneapp.unify.com"},
            "tenant": {"jwt": JWT}, "sip_credentials": {"user": "osbiz", "password": SIP_PASSWORD}}
    text = json.dumps(redact_tree(tree))
    for secret in (API_KEY, JWT, SIP_PASSWORD):
        assert secret not in text
    assert "phoneapp.unify.com" in text


def test_free_text_loses_jwts_and_digest_responses() -> None:
    line = f'Authorization: Digest username="osbiz", nonce="abc123", response="d41d8cd98f" token {JWT}'
    out = redact_text(line)
    assert JWT not in out and "d41d8cd98f" not in out and "abc123" not in out
    assert 'username="osbiz"' in out


def test_bundle_holds_the_parts_and_no_secret() -> None:
    report = {
        "system": "acme",
        "itsp_status": {"label": "Not registered", "reason": f"403 for key {API_KEY}"},
        "findings": [{"id": "itsp.not-registered.auth", "severity": "critical", "title": "t",
                      "evidence": [{"text": f"REGISTER 403 with {JWT}"}], "remedy": "r",
                      "trace_profiles": ["SIP_Registration"]}],
        "analysis": {"calls": [{"call_id": "c1", "answered": False, "one_way_audio": False}]},
    }
    site = load_site_text((ROOT / "examples" / "site-healthy.yaml").read_text().replace(
        "api_key: env:UPSCOPE_API_KEY", f"api_key: {API_KEY}").replace("jwt: null", f"jwt: {JWT}") + f"sip_credentials:\n  username: u\n  password: {SIP_PASSWORD}\n")
    data = build_bundle(report, site=site, secrets=(API_KEY, JWT, SIP_PASSWORD),
                        call_capture=lambda cid: b"PCAPDATA" if cid == "c1" else None)
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    assert {"report.json", "report.html", "findings.json", "site.yaml", "trace-profiles.txt",
            "versions.json"} <= names
    assert any(n.startswith("calls/") and n.endswith(".pcap") for n in names)
    for name in names:
        body = zf.read(name)
        for secret in (API_KEY, JWT, SIP_PASSWORD):
            assert secret.encode() not in body, f"{secret[:8]}… leaked into {name}"
    assert "SIP_Registration" in zf.read("trace-profiles.txt").decode()
    assert "acme-munich" in zf.read("site.yaml").decode()  # the loaded site, redacted


def test_bundle_site_is_the_loaded_site_never_a_file() -> None:
    """No raw text goes in: a site the loader refused cannot be expanded or echoed by the bundle."""
    import inspect

    assert "site_text" not in inspect.signature(build_bundle).parameters
    data = build_bundle({"findings": []}, site=None)
    assert "site.yaml" not in zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_checklist_without_findings_lists_every_family() -> None:
    text = trace_checklist([])
    assert "License_problem" in text and "PCC level 9" in text
