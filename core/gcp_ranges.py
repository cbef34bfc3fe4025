"""The Google Cloud address ranges the Unify Phone media runs in: one scope of a ``cloud.json``
(https://www.gstatic.com/ipranges/cloud.json), loaded from a user's copy or the one shipped with
upscope. The firewall check and the one-way judgement use it to tell cloud peers from others."""

from __future__ import annotations

import functools
import importlib.resources
import ipaddress
import json
from dataclasses import dataclass

from core.errors import ConfigError

GCP_SCOPE = "europe-west3"


@dataclass(frozen=True, slots=True)
class GcpRanges:
    """The prefixes of one scope of a ``cloud.json`` (https://www.gstatic.com/ipranges/cloud.json)."""

    scope: str
    sync_token: str
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    creation_time: str = ""
    source: str = "cloud.json"

    def contains(self, address: str) -> bool:
        """In one of the prefixes. A private, loopback, link-local or otherwise non-global address
        (RFC 1918, RFC 4193, RFC 3927, RFC 6598, …) never is, whatever a ranges file says."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if not ip.is_global:
            return False
        return any(ip.version == n.version and ip in n for n in self.networks)

    @property
    def created(self) -> str:
        """When the ranges were published, as far as the file says (its ``creationTime``)."""
        return self.creation_time[:10] if self.creation_time else "unknown date"


def load_gcp_ranges(text: str, scope: str = GCP_SCOPE, source: str = "cloud.json") -> GcpRanges:
    """Parse the text of a ``cloud.json``; keep the prefixes of ``scope``.

    Raises ``ConfigError`` naming the JSON path of the first bad entry; an empty scope is an error
    too, since every RTP peer would then look foreign.
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"not JSON ({exc.__class__.__name__})", file=source) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("prefixes"), list):
        raise ConfigError("expected an object with a 'prefixes' list", path="prefixes", file=source)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for i, entry in enumerate(doc["prefixes"]):
        if not isinstance(entry, dict):
            raise ConfigError("expected an object", path=f"prefixes[{i}]", file=source)
        if entry.get("scope") != scope:
            continue
        prefix = entry.get("ipv4Prefix", entry.get("ipv6Prefix"))
        if not isinstance(prefix, str):
            raise ConfigError("missing ipv4Prefix/ipv6Prefix", path=f"prefixes[{i}]", file=source)
        try:
            networks.append(ipaddress.ip_network(prefix, strict=False))
        except ValueError:
            raise ConfigError("invalid prefix", path=f"prefixes[{i}]", file=source) from None
    if not networks:
        raise ConfigError(f"no prefixes with scope {scope!r}", path="prefixes", file=source)
    token = doc.get("syncToken")
    created = doc.get("creationTime")
    return GcpRanges(scope=scope, sync_token=str(token) if token is not None else "", networks=tuple(networks),
                     creation_time=str(created)[:40] if isinstance(created, str) else "", source=source)


#: The europe-west3 prefixes shipped with upscope (package data): a dated copy of Google's
#: cloud.json (creationTime in the file); a current copy passed with --gcp-ranges replaces it.
DEFAULT_GCP_FILE = "gcp_europe_west3.json"


@functools.lru_cache(maxsize=1)
def default_gcp_ranges() -> GcpRanges:
    """The shipped europe-west3 ranges (read once from the package)."""
    text = importlib.resources.files("core").joinpath(DEFAULT_GCP_FILE).read_text(encoding="utf-8")
    return load_gcp_ranges(text, source=f"built-in {DEFAULT_GCP_FILE}")
