"""An ``AnalysisResult`` as pandas DataFrames (one per table), for notebooks and the dashboard.

Columns are the dataclass fields (the same names as the JSON report). Nested sequences stay as
tuples in their cell, except the per-10-s stream intervals, which get their own frame keyed by
``stream`` (the index into ``rtp_streams``), and the SIP counts, which become two small frames.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from core.analysis import (
    AnalysisResult,
    CallInfo,
    ErrorItem,
    FlowInfo,
    KeepaliveInfo,
    RegistrationInfo,
    RtcpReport,
    RtpStreamStats,
    SipMessageInfo,
    StreamInterval,
    StunTransactionInfo,
    TlsFlowInfo,
)

_TABLES: dict[str, tuple[str, type]] = {
    "calls": ("calls", CallInfo),
    "registrations": ("registrations", RegistrationInfo),
    "keepalives": ("keepalives", KeepaliveInfo),
    "rtp_streams": ("rtp_streams", RtpStreamStats),
    "rtcp": ("rtcp", RtcpReport),
    "tls_flows": ("tls_flows", TlsFlowInfo),
    "stun": ("stun", StunTransactionInfo),
    "flows": ("flows", FlowInfo),
    "errors": ("errors", ErrorItem),
    "sip_messages": ("sip_messages", SipMessageInfo),
}


def _frame(items: tuple[Any, ...], cls: type) -> pd.DataFrame:
    cols = [f.name for f in dataclasses.fields(cls)]
    rows = [{c: getattr(x, c) for c in cols} for x in items]
    return pd.DataFrame(rows, columns=cols)


def to_dataframes(result: AnalysisResult) -> dict[str, pd.DataFrame]:
    """Every table of the result; empty tables still have their columns."""
    out = {name: _frame(getattr(result, attr), cls) for name, (attr, cls) in _TABLES.items()}
    icols = ["stream", *[f.name for f in dataclasses.fields(StreamInterval)]]
    irows = [{"stream": i, **{c: getattr(iv, c) for c in icols[1:]}}
             for i, s in enumerate(result.rtp_streams) for iv in s.intervals]
    out["stream_intervals"] = pd.DataFrame(irows, columns=icols)
    out["sip_requests"] = pd.DataFrame(sorted(result.sip_requests.items()), columns=["method", "count"])
    out["sip_responses"] = pd.DataFrame(sorted((str(k), v) for k, v in result.sip_responses.items()),
                                        columns=["code", "count"])
    return out
