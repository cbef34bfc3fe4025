"""Check a TLS key log (the NSS ``SSLKEYLOGFILE`` format) before tshark is handed it.

tshark ignores what it cannot read: an unreadable, empty or garbage key log would decrypt
nothing and say nothing. This module reads the file once, bounded, and counts the lines of the
format — ``LABEL <client_random: 64 hex> <secret: hex>`` (TLS 1.2 ``CLIENT_RANDOM``, the TLS 1.3
traffic secrets of RFC 8446 §7.1) or ``RSA <16 hex> <hex>`` — so the caller can warn in one line
naming the file and what was wrong. Key material is never kept, returned or quoted: the summary
holds counts and a line number only.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.analysis import TlsFlowInfo
from core.errors import ParseError

#: A key log holds a few lines per TLS session; 64 MiB is millions of sessions, not a key log.
MAX_KEYLOG_BYTES = 64 << 20

# NSS key log labels (the format Firefox/Chrome/OpenSSL/Go write; Wireshark's TLS dissector reads them).
_LABELS = frozenset({
    "CLIENT_RANDOM", "CLIENT_EARLY_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
    "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET",
})
_LINE = re.compile(rb"([A-Z0-9_]{3,40}) ([0-9A-Fa-f]+) ([0-9A-Fa-f]{32,256})\r?")


@dataclass(frozen=True, slots=True)
class KeylogSummary:
    valid: int  # lines of the format
    invalid: int  # other non-empty, non-comment lines
    first_invalid_line: int | None  # 1-based

    @property
    def problem(self) -> str | None:
        """What is wrong, in words (no key material), or None for a usable key log."""
        if self.valid:
            return None
        if self.invalid:
            return (f"no line in the key log format (LABEL CLIENT_RANDOM SECRET); "
                    f"{self.invalid} other line(s), the first at line {self.first_invalid_line}")
        return "empty: no key log line"


def check_keylog_text(data: bytes) -> KeylogSummary:
    """Count the valid and invalid lines of key-log bytes (``#`` comments and blank lines skipped)."""
    if b"\x00" in data:
        raise ParseError("binary data, not a TLS key log", data.index(b"\x00"))
    valid = invalid = 0
    first_bad: int | None = None
    for number, line in enumerate(data.split(b"\n"), start=1):
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        m = _LINE.fullmatch(line.rstrip(b" \t"))
        ok = m is not None and (
            (m.group(1) == b"RSA" and len(m.group(2)) == 16)
            or (m.group(1).decode() in _LABELS and len(m.group(2)) == 64)
        )
        if ok:
            valid += 1
        else:
            invalid += 1
            first_bad = first_bad or number
    return KeylogSummary(valid, invalid, first_bad)


def check_keylog(path: Path) -> str | None:
    """The problem of the key log at ``path`` in one phrase (naming no key), or None when usable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return "not a regular file"
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_KEYLOG_BYTES + 1)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    finally:
        os.close(fd)
    if len(data) > MAX_KEYLOG_BYTES:
        return f"larger than {MAX_KEYLOG_BYTES >> 20} MiB, not a key log"
    try:
        return check_keylog_text(data).problem
    except ParseError as exc:
        return str(exc)


#: HTTPS: the one TLS port that never carries the trunk's SIP (the decryption tries every other).
HTTPS_PORT = 443


def undecrypted_sip_tls(flows: Iterable[TlsFlowInfo]) -> int:
    """TLS flows that may carry SIP (any server port but 443, as the decryption tries) when the
    key log decrypted none of them; 0 when it decrypted any (other TLS, e.g. REST on a custom
    port, has no keys in an OSBiz key log and is not a sign of a bad one)."""
    candidates = [f for f in flows if f.server_port != HTTPS_PORT]
    return 0 if any(f.decrypted for f in candidates) else len(candidates)
