"""Parsing of probe targets (``host:port``, ``[v6]:port``) — hostile input, checked strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import UpscopeError

_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")


class ProbeConfigError(UpscopeError):
    """A probe request that cannot be run at all (bad target, unknown module or option)."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(text: str, default_port: int | None = None) -> Target:
    """``host:port`` or ``[ipv6]:port``; a bare host takes ``default_port`` when one is given."""
    text = text.strip()
    if not text or len(text) > 300:
        raise ProbeConfigError("probe target: empty or longer than 300 characters")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not _IPV6.fullmatch(host):
            raise ProbeConfigError(f"probe target {text[:60]!r}: bad [IPv6] address")
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
        if port_text is None:
            raise ProbeConfigError(f"probe target {text[:60]!r}: expected ':' after ']'")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" not in text:
        host, port_text = text, ""
    else:
        raise ProbeConfigError(f"probe target {text[:60]!r}: write IPv6 addresses as [addr]:port")
    if not host.startswith(("[",)) and ":" not in host and not _HOSTNAME.fullmatch(host):
        raise ProbeConfigError(f"probe target {text[:60]!r}: bad host name")
    if not port_text:
        if default_port is None:
            raise ProbeConfigError(f"probe target {text[:60]!r}: missing port")
        return Target(host, default_port)
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise ProbeConfigError(f"probe target {text[:60]!r}: port must be 1-65535")
    return Target(host, int(port_text))
