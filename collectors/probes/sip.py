"""The SIP OPTIONS request of the probes, and the redaction of their transcripts.

Parsing the answer is the SIP codec's (``core.wire.sip``): one datagram with ``parse_message``,
a TCP/TLS stream with ``SipStreamFramer`` (Content-Length framing, RFC 5626 keepalive pongs).
"""

from __future__ import annotations

import hashlib
import re

from core.wire.sip_build import build_request

# Headers whose values carry credentials or nonces: never shown, only fingerprinted.
_SECRET_HEADERS = re.compile(
    r"^(authorization|proxy-authorization|www-authenticate|proxy-authenticate)[ \t]*:([^\r\n]*)",
    re.IGNORECASE | re.MULTILINE,
)


def build_options(
    *,
    target_host: str,
    target_port: int,
    transport: str,
    local_host: str,
    local_port: int,
    call_id: str,
    branch: str,
    tag: str,
    from_user: str = "upscope",
    user_agent: str = "upscope-probe",
) -> bytes:
    """An out-of-dialog OPTIONS (RFC 3261 §11.1) to ``target``; ``transport`` is udp|tcp|tls."""
    host = f"[{target_host}]" if ":" in target_host else target_host
    local = f"[{local_host}]" if ":" in local_host else local_host
    uri = f"sip:{host}:{target_port};transport={transport}"
    return build_request("OPTIONS", uri, [
        ("Via", f"SIP/2.0/{transport.upper()} {local}:{local_port};branch={branch};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{from_user}@{local}>;tag={tag}"),
        ("To", f"<{uri}>"),
        ("Call-ID", call_id),
        ("CSeq", "1 OPTIONS"),
        ("Contact", f"<sip:{from_user}@{local}:{local_port};transport={transport}>"),
        ("Accept", "application/sdp"),
        ("User-Agent", user_agent),
    ])


def redact(text: str) -> str:
    """Replace credential/challenge header values by a fingerprint (first 6 hex of SHA-256)."""

    def _fp(match: re.Match[str]) -> str:
        digest = hashlib.sha256(match.group(2).strip().encode()).hexdigest()[:6]
        return f"{match.group(1)}: <redacted sha256:{digest}>"

    return _SECRET_HEADERS.sub(_fp, text)
