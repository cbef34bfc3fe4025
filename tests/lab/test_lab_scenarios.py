"""The lab end to end: every scenario runs, writes every artifact, and puts its fault on the wire.

tshark (with the key log and the DOMAIN §9 decode-as flags) is the oracle for what is on the wire;
``upscope check-site`` for what the site file says; ``upscope diagnose`` (capture analysis and
rules) must find exactly the scenario's expected finding ids in the artifacts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from core.lab import SCENARIOS
from tests.lab.helpers import (
    ARTIFACTS,
    diagnose_ids,
    lab,
    need,
    netns,
    parties,
    pki_dirs,
    trace_messages,
    tshark_rtp,
    tshark_sip,
    upscope,
)
from tests.processes import children, command

#: Scenarios whose evidence is the site file (or jwt.txt): check-site must report exactly them.
CONFIG_SCENARIOS = {
    "jwt-missing", "jwt-expired", "jwt-expiring", "software-support-expired", "no-trunk-lines",
    "license-missing", "not-trusted-external-user", "route-flag-off", "numbering-mismatch",
    "expert-mode-drift", "bandwidth-too-low",
}


def _check_site_ids(out: Path) -> list[str]:
    res = upscope("check-site", str(out / "site.yaml"), "--format", "json")
    assert res.returncode in (0, 1) and res.stdout.strip(), (res.returncode, res.stderr)
    return sorted(f["id"] for f in json.loads(res.stdout)["findings"])


def _no_leftovers(out: Path) -> None:
    assert not [p for p in children(os.getpid()) if command(p) in ("dumpcap", "tcpdump")]
    assert not pki_dirs(os.getpid())
    assert f"upscope-lab-{os.getpid()}-" not in netns()
    assert not list(out.glob(".*.tmp"))
    assert json.loads((out / "lab.json").read_text())["running"] is False


def test_healthy_registers_keeps_alive_and_calls_with_rtp_both_ways(tmp_path: Path) -> None:
    summary = lab(tmp_path, "healthy", duration=8.0)
    out = summary.out
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    assert not (out / "jwt.txt").exists()  # openscape flavour: no JWT
    assert json.loads((out / "scenario.json").read_text())["expected_findings"] == []
    assert _check_site_ids(out) == []
    assert diagnose_ids(out) == []

    sip = tshark_sip(out)
    reg = [(m.method, m.status) for m in sip if m.cseq.endswith("REGISTER")]
    assert ("REGISTER", 0) in reg and (0, 401) not in reg
    assert ("", 401) in reg and ("", 200) in reg
    assert sum(1 for m in sip if m.status == 200 and m.cseq.endswith("REGISTER")) >= 2  # refreshed
    assert any(m.status == 200 and m.cseq.endswith("OPTIONS") for m in sip)
    answered = {m.call_id for m in sip if m.status == 200 and m.cseq.endswith("INVITE")}
    acked = {m.call_id for m in sip if m.method == "ACK"}
    byes = {m.call_id for m in sip if m.method == "BYE"}
    bye_ok = {m.call_id for m in sip if m.status == 200 and m.cseq.endswith("BYE")}
    assert len(answered) >= 5, sip
    assert answered <= acked and answered <= byes and answered <= bye_ok
    # calls in both directions: PBX → connector and connector → PBX
    who = parties(out)
    assert {m.src for m in sip if m.method == "INVITE"} == {who.connector, who.pbx}

    streams = [s for s in tshark_rtp(out) if s["payload"] == "g711A"]
    up = [s for s in streams if s["src"][0] == who.pbx and s["dst"][0] == who.connector]
    down = [s for s in streams if s["src"][0] == who.connector and s["dst"][0] == who.pbx]
    # ≥ 5 whole calls each way (a 2-s call is ~100 packets of 20 ms; calls cut by the stop are shorter)
    assert sum(s["packets"] >= 80 for s in up) >= 5 and sum(s["packets"] >= 80 for s in down) >= 5, streams
    assert all(s["lost"] == 0 for s in up + down), streams

    # The OSBiz trace holds the same SIP messages as the decrypted capture (PBX side only).
    trace = Counter((cid, cseq, first.split(" ")[0] if not first.startswith("SIP/2.0") else first.split(" ")[1])
                    for _, first, cid, cseq in trace_messages(out / "osbiz-trace.log"))
    wire = Counter((m.call_id, m.cseq, m.method or str(m.status)) for m in sip)
    assert trace == wire
    stats = summary.stats["pbx"]
    assert stats["stun_answers"] >= 2 and stats["rest_answers"].get(200, 0) >= 2
    assert stats["crlf_pongs"] >= 2 and stats["options_ok"] >= 2  # RFC 5626 pongs and OPTIONS
    # what each side sent, the other received (loopback loses nothing; a call's last packets may
    # still be in flight when the far end closes its socket on the BYE)
    conn = summary.stats["connector"]
    for sent, got in ((stats["rtp_out"], conn["rtp_in"]), (conn["rtp_out"], stats["rtp_in"])):
        assert sent > 0 and sent - 3 * len(answered) <= got <= sent, (sent, got)
    _no_leftovers(out)


def _rejects(stats: dict[str, object], code: int) -> int:
    received = stats["calls_received"]
    assert isinstance(received, dict)
    return int(received["rejected"].get(str(code), 0))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "healthy"])
def test_every_scenario_writes_its_artifacts_and_evidence(tmp_path: Path, name: str) -> None:
    summary = lab(tmp_path, name, duration=5.0)  # media-impaired: the defaults, 5 % loss, 40 ms jitter
    out, sc, stats = summary.out, SCENARIOS[name], summary.stats
    for artifact in ARTIFACTS:
        assert (out / artifact).is_file(), artifact
    doc = json.loads((out / "scenario.json").read_text())
    assert doc["scenario"] == name and doc["expected_findings"] == list(sc.expected_findings)
    assert doc["fault"] == sc.fault and doc["fault_window"] is None
    has_jwt = sc.flavour == "unify-video" and sc.jwt != "missing"
    assert (out / "jwt.txt").exists() == has_jwt
    site = yaml.safe_load((out / "site.yaml").read_text())
    assert site["tenant"]["flavour"] == sc.flavour
    assert _check_site_ids(out) == (sorted(sc.expected_findings) if name in CONFIG_SCENARIOS else [])
    # The capture analysis + diagnosis, fed the artifacts like a real site's, finds exactly the fault.
    assert diagnose_ids(out) == sorted(sc.expected_findings)

    pbx, conn = stats["pbx"], stats["connector"]
    wire_answered = pbx["calls_placed"]["answered"] + pbx["calls_received"]["answered"]
    if name == "sip-tls-blocked":
        assert pbx["register_answers"] == {} and pbx["connect_failures"] >= 1
        _assert_syns_unanswered(out)
    elif name == "register-forbidden":
        assert conn["register_answers"].get(403, 0) >= 1 and conn["register_answers"].get(200, 0) == 0
        assert pbx["rest_answers"].get(401, 0) >= 1
        assert any(m.status == 403 and m.cseq.endswith("REGISTER") for m in tshark_sip(out))
    elif name in ("jwt-missing", "jwt-expired"):
        assert pbx["rest_answers"].get(401, 0) >= 1 and 200 not in pbx["rest_answers"]
        assert wire_answered >= 1  # SIP still works: only the REST API is broken
    elif name == "jwt-expiring":
        assert pbx["rest_answers"].get(200, 0) >= 1
    elif name in ("software-support-expired", "route-flag-off"):
        assert _rejects(pbx, 403) >= 1 and wire_answered == 0
    elif name == "no-trunk-lines":
        assert _rejects(pbx, 503) >= 1 and wire_answered == 0
    elif name == "trunk-lines-busy":
        assert _rejects(pbx, 486) >= 1 and pbx["calls_received"]["answered"] >= 2
        assert any(m.status == 486 for m in tshark_sip(out))
    elif name == "license-missing":
        assert _rejects(pbx, 403) >= 1 and wire_answered >= 1
    elif name == "not-trusted-external-user":
        assert _rejects(pbx, 404) >= 1 and wire_answered >= 1
    elif name == "numbering-mismatch":
        assert _rejects(pbx, 404) >= 1
    elif name in ("expert-mode-drift", "bandwidth-too-low"):
        assert wire_answered >= 2 and not pbx["calls_received"]["rejected"]
    elif name == "one-way-audio":
        assert pbx["rtp_in"] == 0 and conn["rtp_in"] > 100 and conn["rtp_out"] == 0
        streams = [s for s in tshark_rtp(out) if s["payload"] == "g711A"]
        assert any(s["src"][0] == parties(out).pbx for s in streams)
        assert not any(s["src"][0] == parties(out).connector for s in streams)
    elif name == "media-impaired":
        down = [s for s in tshark_rtp(out) if s["src"][0] == parties(out).connector and s["payload"] == "g711A"]
        assert down and sum(s["lost"] for s in down) > 0
    elif name == "cloned-system":
        assert stats["clone"]["register_answers"].get(200, 0) >= 1
        who = parties(out)
        assert {m.src for m in tshark_sip(out) if m.method == "REGISTER"} == {who.pbx, who.clone}
        text = (out / "osbiz-trace.log").read_text()
        assert any(len(re.findall(r"(?m)^Contact:", block)) == 2
                   for block in text.split("(SIP_SA") if "SIP/2.0 200 OK" in block and "REGISTER" in block)
    elif name == "port-443-open":
        assert stats["probe_443"]["answered"] >= 1
        port = json.loads((out / "lab.json").read_text())["pbx"]["https_443"]
        pbx = parties(out).pbx
        assert f"PBX's TCP 443 is emulated on {pbx}:{port}" in (out / "site.yaml").read_text()
        assert _tshark_count(out, f"ip.src=={pbx} && tcp.srcport=={port} && "
                                  "tcp.flags.syn==1 && tcp.flags.ack==1") >= 1
    _no_leftovers(out)


def _tshark_count(out: Path, display_filter: str) -> int:
    tshark = need("tshark")
    res = subprocess.run([tshark, "-r", str(out / "lab.pcapng"), "-Y", display_filter, "-T", "fields",
                          "-e", "frame.number"], capture_output=True, text=True, timeout=60, check=True)
    return len(res.stdout.split())


def _assert_syns_unanswered(out: Path) -> None:
    port = json.loads((out / "lab.json").read_text())["sip_tls"]
    mode = json.loads((out / "scenario.json").read_text())["block_mode"]
    syn = f"ip.src=={parties(out).pbx} && tcp.dstport=={port} && tcp.flags.syn==1 && tcp.flags.ack==0"
    assert _tshark_count(out, syn) >= 2  # retries
    if mode == "netns":
        assert _tshark_count(out, f"tcp.srcport=={port} && tcp.flags.syn==1 && tcp.flags.ack==1") == 0
    else:  # black hole: the TCP handshake completes, the ClientHello is never answered
        assert _tshark_count(out, f"tcp.dstport=={port} && tls.handshake.type==1") >= 1
        assert _tshark_count(out, f"tcp.srcport=={port} && tls.handshake.type==2") == 0


def test_sip_tls_blocked_black_hole_mode(tmp_path: Path) -> None:
    summary = lab(tmp_path, "sip-tls-blocked", duration=5.0, block_mode="blackhole")
    assert summary.stats["pbx"]["register_answers"] == {}
    assert json.loads((summary.out / "scenario.json").read_text())["block_mode"] == "blackhole"
    _assert_syns_unanswered(summary.out)
    _no_leftovers(summary.out)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace and its nft DROP rule need root")
def test_fault_window_opens_and_closes(tmp_path: Path) -> None:
    """sip-tls-blocked from 2 s to 7 s: registered before, blocked during, registered again after."""
    need("nft")
    summary = lab(tmp_path, "sip-tls-blocked", duration=10.0, fault_from=2.0, fault_until=7.0)
    out = summary.out
    window = json.loads((out / "scenario.json").read_text())["fault_window"]
    assert window["from"] == 2.0 and window["until"] == 7.0
    assert window["start_ts"] < window["end_ts"]
    ok = [m for m in tshark_sip(out) if m.status == 200 and m.cseq.endswith("REGISTER")]
    assert summary.stats["pbx"]["connects"] >= 2  # reconnected after the window
    assert len(ok) >= 2
    port = json.loads((out / "lab.json").read_text())["sip_tls"]
    # SYNs were swallowed during the window (more SYNs than SYN-ACKs) …
    syns = _tshark_count(out, f"ip.src=={parties(out).pbx} && tcp.dstport=={port} && tcp.flags.syn==1 && "
                              "tcp.flags.ack==0")
    assert syns > _tshark_count(out, f"tcp.srcport=={port} && tcp.flags.syn==1 && tcp.flags.ack==1")
    # … and one of the REGISTER 200s is after the window's end
    times = subprocess.run([need("tshark"), "-r", str(out / "lab.pcapng"), "-T", "fields", "-e",
                            "frame.time_epoch", "-Y", f"tcp.srcport=={port} && tcp.flags.syn==1 && "
                            "tcp.flags.ack==1"], capture_output=True, text=True, check=True).stdout.split()
    assert any(float(t) > window["end_ts"] for t in times)
    _no_leftovers(out)


@pytest.mark.slow
def test_config_fault_window_rewrites_the_site_file(tmp_path: Path) -> None:
    """license-missing from 1.5 s to 4 s: 403s only inside the window, a healthy site.yaml after."""
    summary = lab(tmp_path, "license-missing", duration=6.0, fault_from=1.5, fault_until=4.0,
                  calls_per_minute=120.0, call_seconds=1.0)
    out = summary.out
    window = json.loads((out / "scenario.json").read_text())["fault_window"]
    assert window["start_ts"] < window["end_ts"]
    assert _check_site_ids(out) == []  # the fault is over: the file is healthy again
    res = subprocess.run(
        [need("tshark"), "-r", str(out / "lab.pcapng"), "-o", f"tls.keylog_file:{out / 'sslkeys.log'}",
         "-d", f"tcp.port=={json.loads((out / 'lab.json').read_text())['sip_tls']},tls",
         "-d", f"tls.port=={json.loads((out / 'lab.json').read_text())['sip_tls']},sip",
         "-Y", "sip.Status-Code==403", "-T", "fields", "-e", "frame.time_epoch"],
        capture_output=True, text=True, timeout=60, check=True)
    times = [float(t) for t in res.stdout.split()]
    assert times, "no 403 during the window"
    assert all(window["start_ts"] <= t <= window["end_ts"] + 0.5 for t in times), (times, window)
    assert summary.stats["pbx"]["calls_received"]["answered"] >= 1  # healthy calls around it


@pytest.mark.parametrize("lines", [1, 2, 8, 500])
def test_every_scenario_site_is_valid_for_any_trunk_line_count(lines: int) -> None:
    import datetime as dt

    import yaml as _yaml

    from core.lab import artifacts
    from core.site.loader import load_site_text

    today = dt.date(2026, 11, 26)
    for name, sc in SCENARIOS.items():
        base = artifacts.base_site(
            name="lab", pbx_ip="127.0.0.2", connector=("127.0.0.1", 65061), stun=("127.0.0.1", 3478),
            rest=("127.0.0.1", 8443), media=range(30000, 30400), users=3, flavour=sc.flavour,
            api_key="k", today=today, lines=lines)
        site = load_site_text(_yaml.safe_dump(artifacts.site_for(base, sc, True, None, today)), name)
        wizard = site.wizard.settings.simultaneous_calls if site.wizard else None
        drifted = site.connectivity.simultaneous_calls != wizard
        assert drifted == (name == "expert-mode-drift"), name


@pytest.mark.slow
def test_clone_and_port_443_faults_open_and_close_in_a_window(tmp_path: Path) -> None:
    clone = lab(tmp_path / "clone", "cloned-system", duration=6.0, fault_from=1.0, fault_until=3.5)
    sip, who = tshark_sip(clone.out), parties(clone.out)
    from_clone = [m for m in sip if m.src == who.clone and m.method == "REGISTER"]
    assert from_clone and any(m.expires == "0" for m in from_clone)  # the clone leaves at the window end
    assert any(m.status == 200 and m.cseq.endswith("REGISTER") and m.src == who.connector for m in sip)
    assert clone.stats["clone"]["register_answers"].get(200, 0) >= 2  # registered, then unregistered

    web = lab(tmp_path / "web", "port-443-open", duration=6.0, fault_from=1.5, fault_until=4.0, keepalive=1.0)
    probes = web.stats["probe_443"]
    assert probes["answered"] >= 1 and probes["refused"] >= 2  # closed before and after, open in between
    _no_leftovers(clone.out)
    _no_leftovers(web.out)


@pytest.mark.slow
def test_key_and_jwt_faults_open_and_close_in_a_window(tmp_path: Path) -> None:
    key = lab(tmp_path / "key", "register-forbidden", duration=7.0, fault_from=1.0, fault_until=3.5)
    regs = [m.status for m in tshark_sip(key.out) if m.cseq.endswith("REGISTER") and m.status]
    first_403 = regs.index(403)
    assert 200 in regs[:first_403] and 200 in regs[first_403:]  # registered, refused, registered again
    assert key.stats["pbx"]["rest_answers"].get(401, 0) >= 1 and key.stats["pbx"]["rest_answers"].get(200, 0) >= 1

    jwt = lab(tmp_path / "jwt", "jwt-missing", duration=6.0, fault_from=1.0, fault_until=3.5, keepalive=1.0)
    rest = jwt.stats["pbx"]["rest_answers"]
    assert rest.get(401, 0) >= 1 and rest.get(200, 0) >= 2
    assert (jwt.out / "jwt.txt").is_file()  # restored after the window
    site = yaml.safe_load((jwt.out / "site.yaml").read_text())
    assert site["tenant"]["jwt"] == f"file:{jwt.out / 'jwt.txt'}"
    _no_leftovers(key.out)
    _no_leftovers(jwt.out)
