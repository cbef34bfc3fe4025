"""The lab's loopback base: parsing --addresses, finding the bases in use, picking a free one,
and two labs side by side on their own addresses with nothing of the other in their capture."""

from __future__ import annotations

import ipaddress
import json
import random
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from core.lab.addresses import DEFAULT_BASE, LabAddresses, bases_in_use, parse_base, pick_free_base, resolve
from tests.lab.helpers import lab, need, parties


@given(st.text(max_size=20))
def test_parse_base_accepts_only_127_a_b(text: str) -> None:
    base = parse_base(text)
    if base is not None:
        a, b = base.split(".")[1:]
        assert ipaddress.ip_address(f"{base}.1").is_loopback and 0 <= int(a) <= 255 and 0 <= int(b) <= 255
        assert parse_base(base) == base


@given(st.integers(0, 255), st.integers(0, 255))
def test_parse_base_round_trips_every_base(a: int, b: int) -> None:
    assert parse_base(f" 127.{a}.{b} ") == f"127.{a}.{b}"
    assert parse_base(f"127.{a}.{b}.1") is None and parse_base(f"128.{a}.{b}") is None


def test_roles_follow_the_base() -> None:
    addrs = resolve(DEFAULT_BASE)
    assert (addrs.connector, addrs.pbx, addrs.clone) == ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    other = LabAddresses("127.9.200")
    assert (other.connector, other.pbx, other.clone) == ("127.9.200.1", "127.9.200.2", "127.9.200.3")


def test_bases_in_use_reads_the_kernels_socket_tables() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.33.44.2", 0))
        tcp.listen(1)
        udp.bind(("127.55.66.1", 0))
        used = bases_in_use()
    assert {"127.33.44", "127.55.66"} <= used


def test_bases_in_use_parses_both_ends(tmp_path: Path) -> None:
    table = tmp_path / "tcp"
    # 127.1.2.3:80 ⇄ 127.4.5.6:40000 and 10.0.0.1 ⇄ 0.0.0.0, as the kernel writes them (little-endian)
    table.write_text("  sl  local_address rem_address   st\n"
                     "   0: 0302017F:0050 0605047F:9C40 01\n"
                     "   1: 0100000A:0016 00000000:0000 0A\n")
    assert bases_in_use((table, tmp_path / "absent")) == {"127.1.2", "127.4.5"}


def test_auto_skips_the_bases_in_use() -> None:
    rng = random.Random(7)
    first = pick_free_base(random.Random(7), set())
    again = pick_free_base(rng, {first})
    assert again != first
    x, y = (int(o) for o in again.split(".")[1:])
    assert 1 <= x <= 254 and 1 <= y <= 254


def test_two_labs_side_by_side_capture_only_their_own_parties(tmp_path: Path) -> None:
    """Two port-443-open labs at once (the scenario whose probe once saw another lab's 443):
    different bases, and each lab.pcapng holds packets between its own addresses only."""
    tshark = need("tshark")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda name: lab(tmp_path / name, "port-443-open", duration=5.0, keepalive=1.0),
                             ("a", "b")))
    mine = [parties(r.out) for r in runs]
    assert mine[0].pbx != mine[1].pbx and mine[0].connector != mine[1].connector
    for run, who in zip(runs, mine, strict=True):
        info = json.loads((run.out / "lab.json").read_text())
        assert who.pbx == f"{info['addresses']}.2" and run.stats["probe_443"]["answered"] >= 1
        ends = subprocess.run([tshark, "-r", str(run.out / "lab.pcapng"), "-T", "fields", "-e", "ip.src",
                               "-e", "ip.dst"], capture_output=True, text=True, timeout=60, check=True).stdout
        pairs = {tuple(line.split("\t")) for line in ends.splitlines() if line}
        assert pairs == {(who.pbx, who.connector), (who.connector, who.pbx)}, pairs
