"""A SIP transaction as the analyser follows it: when its request was first seen, its first final
response, and whether the request carried credentials (RFC 3261 §17)."""

from __future__ import annotations

from dataclasses import dataclass

# RFC 3261 §17.1.1.2 Timer B / §17.1.2.2 Timer F: 64*T1 = 32 s without a final response means
# the transaction timed out.
TRANSACTION_TIMEOUT_S = 32.0


@dataclass(slots=True)
class Txn:
    """Time of a transaction's first request and its first final response."""

    ts: float
    final_ts: float | None = None
    final_code: int | None = None
    had_credentials: bool = False  # a REGISTER that carried Authorization/Proxy-Authorization


def overdue(t: Txn, end: float | None, timeout: float) -> bool:
    """No final response, and the capture ran long enough after the request to expect one."""
    return t.final_code is None and (end is None or end - t.ts >= timeout)
