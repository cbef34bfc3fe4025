"""The capture filter of ``upscope serve``, run by tcpdump (the libpcap that dumpcap uses) over
a capture holding the trunk's packets and other hosts' traffic."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from collectors.runtime.capture_filter import trunk_filter
from core.site import Site, load_site

ROOT = Path(__file__).resolve().parents[2]
OSBIZ, OSBIZ_PUBLIC = "192.168.1.10", "203.0.113.10"  # examples/site-healthy.yaml
CONNECTOR, CONNECTOR_MEDIA, ROUTER = "35.246.178.13", "35.246.178.20", "198.51.100.1"

# (name, packet, kept by the filter of a site that names the OSBiz's addresses)
PACKETS = [
    ("SIP/TLS to the connector", IP(src=OSBIZ, dst=CONNECTOR) / TCP(sport=40000, dport=65061), True),
    ("the OSBiz's RTP", IP(src=OSBIZ, dst=CONNECTOR_MEDIA) / UDP(sport=10000, dport=20000) / Raw(b"\x80" * 20), True),
    ("another host's RTP in the media range", IP(src="192.168.1.99", dst="10.1.1.1") / UDP(sport=10000, dport=20000)
     / Raw(b"\x80" * 20), False),
    ("a router's unreachable to the OSBiz about its RTP", IP(src=ROUTER, dst=OSBIZ) / ICMP(type=3, code=1)
     / IP(src=OSBIZ, dst=CONNECTOR_MEDIA) / UDP(sport=10000, dport=20000), True),
    ("the OSBiz's port unreachable to the connector's media", IP(src=OSBIZ, dst=CONNECTOR_MEDIA) / ICMP(type=3, code=3)
     / IP(src=CONNECTOR_MEDIA, dst=OSBIZ) / UDP(sport=20000, dport=10000), True),
    ("an unreachable to the connector about its SIP", IP(src=ROUTER, dst=CONNECTOR) / ICMP(type=3, code=13)
     / IP(src=CONNECTOR, dst=OSBIZ_PUBLIC) / TCP(sport=65061, dport=40000), True),
    ("other hosts' unreachable", IP(src="10.9.9.9", dst="10.8.8.8") / ICMP(type=3, code=3)
     / IP(src="10.8.8.8", dst="10.9.9.9") / UDP(sport=53, dport=53), False),
    ("other hosts' ping", IP(src="10.9.9.9", dst="10.8.8.8") / ICMP(type=8), False),
    ("other hosts' ICMPv6 unreachable", IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6DestUnreach()
     / IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=53, dport=53), False),
    ("inbound HTTPS to the OSBiz", IP(src="198.51.100.7", dst=OSBIZ_PUBLIC) / TCP(sport=50000, dport=443), True),
]


def kept(capture: Path, bpf: str) -> list[str]:
    """The names of the packets ``bpf`` keeps, as tcpdump (libpcap) reads them."""
    out = subprocess.run(["tcpdump", "-n", "-r", str(capture), "-w", str(capture.with_suffix(".kept")), bpf],
                         capture_output=True, text=True, timeout=60, check=True)
    assert "syntax error" not in out.stderr
    lines = subprocess.run(["tcpdump", "-n", "-tt", "-r", str(capture.with_suffix(".kept"))], capture_output=True,
                           text=True, timeout=60, check=True).stdout.splitlines()
    return [PACKETS[int(float(line.split()[0])) - 1][0] for line in lines]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (Debian package tcpdump; make setup installs it)")
    path = tmp_path_factory.mktemp("bpf") / "mixed.pcap"
    frames = []
    for n, (_name, pkt, _kept) in enumerate(PACKETS, start=1):
        frame = Ether() / pkt
        frame.time = n  # the frame's time names it in tcpdump's output
        frames.append(frame)
    wrpcap(str(path), frames)
    return path


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(ROOT / "examples" / "site-healthy.yaml")


def test_a_site_with_the_osbiz_addresses_keeps_the_trunk_and_its_icmp_only(capture: Path, site: Site) -> None:
    assert kept(capture, trunk_filter(site, (443,))) == [name for name, _pkt, keep in PACKETS if keep]


def test_without_the_osbiz_addresses_media_and_icmp_are_not_limited_to_hosts(capture: Path, site: Site) -> None:
    anonymous = site.model_copy(update={"system": site.system.model_copy(update={"public_ip": None, "private_ip": None})})
    names = kept(capture, trunk_filter(anonymous, (443,)))
    assert "another host's RTP in the media range" in names and "other hosts' unreachable" in names
    assert "inbound HTTPS to the OSBiz" not in names  # no address to tie it to


def test_without_a_site_nothing_is_filtered() -> None:
    assert trunk_filter(None, (443,)) == ""
