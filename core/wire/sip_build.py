"""Building SIP messages (RFC 3261 §7, §8.1.1, §8.2.6): the writing half of ``core.wire.sip``.

Callers choose every header; this module serialises them with CRLF line ends and a
Content-Length that always matches the body (mandatory on streams, RFC 3261 §18.3, §20.14), and
builds responses by copying a request's Via, From, To, Call-ID and CSeq.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.wire.sip import SipMessage

#: Reason phrases of RFC 3261 §21 (and RFC 3262/3265/3329/4412/5360/6086 for the 4xx/5xx it adds).
REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    423: "Interval Too Brief", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    493: "Undecipherable", 500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

#: RFC 3261 §8.1.1.7: a branch parameter starting with this marks an RFC 3261 transaction.
BRANCH_MAGIC = "z9hG4bK"

Headers = Iterable[tuple[str, str]]


def build_message(start_line: str, headers: Headers, body: bytes = b"") -> bytes:
    """Serialise a message; any Content-Length given is replaced by the body's real length."""
    lines = [start_line, *(f"{k}: {v}" for k, v in headers if k.lower() not in ("content-length", "l"))]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def build_request(method: str, uri: str, headers: Headers, body: bytes = b"") -> bytes:
    return build_message(f"{method} {uri} SIP/2.0", headers, body)


def build_response(request: SipMessage, status: int, headers: Headers = (), body: bytes = b"", *,
                   to_tag: str | None = None, reason: str | None = None) -> bytes:
    """A response to ``request`` (RFC 3261 §8.2.6.2): its Via list, From, To (with ``to_tag``
    added unless it has a tag), Call-ID and CSeq, then ``headers``."""
    to = request.get("to") or ""
    if to_tag and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    copied = [*(("Via", v) for v in request.get_all("via")), ("From", request.get("from") or ""),
              ("To", to), ("Call-ID", request.call_id), ("CSeq", request.get("cseq") or "")]
    phrase = reason if reason is not None else REASON_PHRASES.get(status, "Unknown")
    return build_message(f"SIP/2.0 {status} {phrase}", [*copied, *headers], body)
