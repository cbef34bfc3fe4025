"""Fixtures of the probe tests; the peers themselves live in ``probe_peers`` (importable by tests)."""

from probe_peers import (  # noqa: F401  (pytest discovers fixtures by name in this module)
    certs,
    closed_port,
    server_factory,
    stun_factory,
    tcp_black_hole,
    udp_black_hole,
)
