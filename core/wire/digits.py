"""Decimal numbers in protocol text, bounded before ``int()``.

SIP and SDP numbers are ``1*DIGIT`` (RFC 3261 §25.1, RFC 8866 §9): ASCII digits only, and no
field needs more than 19 of them (Content-Length, CSeq < 2**31, Expires, ports, payload types,
clock rates). A longer run of digits is hostile input; converting it would also hit Python's
4 300-digit limit on ``int()`` (a ``ValueError`` no codec may raise).
"""

from __future__ import annotations

MAX_DIGITS = 19


def decimal(text: str) -> int | None:
    """The value of 1 to ``MAX_DIGITS`` ASCII digits, else None (not a number, or too long)."""
    if 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


def capped(text: str, cap: int) -> int | None:
    """The value of a run of ASCII digits of any length, at most ``cap``; None if not digits."""
    if not (text and text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0") or "0"
    return cap if len(significant) > MAX_DIGITS else min(int(significant), cap)
