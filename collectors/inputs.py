"""Loading the evidence files of an offline run, each failure one line naming the file.

The one loader behind ``collectors.producer.load_inputs``: the site file, the JWT file, a copy of
GCP's ``cloud.json`` and the captures / OSBiz trace log (+ TLS key log) through the analysis.
Secrets are never echoed: a JWT file's content does not appear in any message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.analysis import AnalysisResult
from core.errors import ConfigError, UpscopeError
from core.gcp_ranges import GcpRanges, load_gcp_ranges
from core.jwt_status import MAX_TOKEN_CHARS
from core.site import Site, load_site
from core.smallfile import UnreadableFile, read_small_file

MAX_GCP_BYTES = 16 * 1024 * 1024  # the real cloud.json is ~100 KB; refuse anything absurd


class InputError(UpscopeError):
    """An input file that cannot be used (exit 2 in the CLI)."""


def load_site_file(path: Path | None) -> Site | None:
    if path is None:
        return None
    try:
        return load_site(path)
    except ConfigError as exc:
        raise InputError(str(exc)) from None


def read_jwt_file(path: Path | None) -> str | None:
    """The token text; over-long or binary content is handed on as is (it judges as invalid)."""
    if path is None:
        return None
    try:  # non-blocking and a regular file only: a FIFO would wait for a writer for ever
        raw = read_small_file(path, MAX_TOKEN_CHARS * 4, "--jwt-file", head=True)
    except UnreadableFile as exc:
        raise InputError(str(exc)) from None
    return raw.decode("utf-8", errors="replace")


def load_gcp_ranges_file(path: Path | None, site: Site | None, site_path: Path | None) -> GcpRanges | None:
    """``path``, else the site's ``gcp_ranges_file`` (relative to the site file, like every path in it)."""
    if path is None and site is not None and site.gcp_ranges_file:
        path = Path(site.gcp_ranges_file)
        if not path.is_absolute() and site_path is not None:
            path = site_path.parent / path
    if path is None:
        return None
    try:
        text = read_small_file(path, MAX_GCP_BYTES, "GCP ranges").decode("utf-8", errors="replace")
    except UnreadableFile as exc:
        raise InputError(str(exc)) from None
    try:
        return load_gcp_ranges(text, source=str(path))
    except ConfigError as exc:
        raise InputError(str(exc)) from None


def analyse(inputs: Sequence[Path], keylog: Path | None, tls_ports: Sequence[int]) -> AnalysisResult | None:
    """Captures and OSBiz trace logs (+ key log) → one analysis; None without any input."""
    if not inputs:
        return None
    for p in [*inputs, *([keylog] if keylog is not None else [])]:
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    from collectors.analyze import analyze_files  # numpy and the readers only when there is a capture

    try:
        result = analyze_files(list(inputs), keylog=keylog, tls_ports=tuple(tls_ports))
    except (UpscopeError, OSError) as exc:
        raise InputError(str(exc)) from None
    if result.packets == 0 and not result.sip_messages:
        why = "; ".join(e.message for e in result.errors[:3]) or "no packets or SIP messages found"
        raise InputError(f"{', '.join(str(p) for p in inputs)}: nothing could be analysed: {why}")
    return result


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 address in brackets, ``[2001:db8::1]:65061``) → (host, port);
    ValueError saying what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text[:80]!r} is not HOST:PORT with a port 1-65535")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{text[:80]!r}: an IPv6 address goes in brackets, [ADDRESS]:PORT")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text[:80]!r}: an IPv6 address goes in brackets, [ADDRESS]:PORT")
    if not host or any(c.isspace() for c in host) or len(host) > 253:
        raise ValueError(f"{text[:80]!r}: not a host name or address")
    return host, int(port)
