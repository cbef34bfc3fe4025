"""The Snapshot's tables as DataFrames for the pages: calls, streams, intervals, registrations,
keepalives (the site's tables — users, licences, firewall, findings — are ``dashboard.site_frames``).

Pure mapping from the JSON form of a Snapshot (``core.snapshot.snapshot_to_dict``): every value
is the producer's; nothing is judged or derived again here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from collectors.media.dtmf import digits
from collectors.runtime.totals import digest
from core.analysis import CALL_OPEN_STATES
from dashboard.timefmt import fmt_ts, to_dt


def analysis(snap: dict[str, Any]) -> dict[str, Any]:
    a = snap.get("analysis")
    return a if isinstance(a, dict) else {}


def site(snap: dict[str, Any]) -> dict[str, Any]:
    s = snap.get("site")
    return s if isinstance(s, dict) else {}


_CALL_COLS = ["call_id", "start", "caller", "callee", "state", "final_code", "final_reason", "setup_ms",
              "duration_s", "messages", "streams", "one_way_audio", "src", "dst", "start_ts"]


def calls_frame(snap: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for c in analysis(snap).get("calls", []):
        rows.append({
            "call_id": c["call_id"], "start": fmt_ts(c.get("start_ts")), "caller": c.get("caller", ""),
            "callee": c.get("callee", ""), "state": c.get("state", ""), "final_code": c.get("final_code"),
            "final_reason": c.get("final_reason", ""), "setup_ms": c.get("setup_ms"),
            "duration_s": c.get("duration_s"), "messages": c.get("messages", 0),
            "streams": len(c.get("streams", [])), "one_way_audio": bool(c.get("one_way_audio")),
            "src": c.get("src", ""), "dst": c.get("dst", ""), "start_ts": c.get("start_ts"),
        })
    return pd.DataFrame(rows, columns=_CALL_COLS)


#: Status filters of the Calls page: the history's statuses, plus calls not ended yet.
CALL_STATUS_FILTERS = ("answered", "failed", "cancelled", "one-way", "in progress")
CALL_LIST_COLS = ["start", "caller", "callee", "status", "final_code", "setup_ms", "duration_s", "one_way_audio",
                  "keys", "key", "call_id", "start_ts"]


def history_status(row: dict[str, Any]) -> str:
    """answered / failed (4xx-6xx other than 487) / cancelled (487, RFC 3261 §15) / other."""
    code = row.get("final_code")
    if row.get("answered"):
        return "answered"
    if code == 487:
        return "cancelled"
    if isinstance(code, int) and code >= 400:
        return "failed"
    return "other"


def call_list(page_rows: Sequence[dict[str, Any]], snap: dict[str, Any], start: float, end: float,
              text: str = "", statuses: Sequence[str] = ()) -> pd.DataFrame:
    """The Calls page's list: the calls not ended yet that the Snapshot holds (when ``in progress``
    is wanted), then the completed calls of the time range (``page_rows``, newest first). A call
    the Snapshot still holds keeps its Call-ID (its ladder can be drawn) and its keys pressed."""
    live = {c["call_id"]: c for c in analysis(snap).get("calls", []) if isinstance(c.get("call_id"), str)}
    by_digest = {digest(cid): c for cid, c in live.items()}
    rows: list[dict[str, Any]] = []
    needle = text.strip().lower()
    if not statuses or "in progress" in statuses:
        for c in live.values():
            if c.get("state") not in CALL_OPEN_STATES or not (c.get("start_ts") or 0) < end:
                continue
            hay = " ".join(str(c.get(k) or "") for k in ("call_id", "caller", "callee")).lower()
            if needle and needle not in hay:
                continue
            rows.append(_call_row(c, str(c["call_id"]), c.get("state", "in progress").replace("-", " ")))
    for r in page_rows:
        c = live.get(str(r.get("call_id"))) or by_digest.get(str(r.get("call_id_hash"))) or {}
        call_id = str(c.get("call_id") or r.get("call_id") or "")
        row = _call_row({**r, "start_ts": r.get("ts"), "dtmf": c.get("dtmf") or []}, call_id, history_status(r))
        row["key"] = call_id or f"#{r.get('call_id_hash')}"
        rows.append(row)
    return pd.DataFrame(rows, columns=CALL_LIST_COLS)


def _call_row(c: dict[str, Any], call_id: str, status: str) -> dict[str, Any]:
    return {"start": fmt_ts(c.get("start_ts")), "caller": c.get("caller") or "", "callee": c.get("callee") or "",
            "status": status, "final_code": c.get("final_code"), "setup_ms": c.get("setup_ms"),
            "duration_s": c.get("duration_s"), "one_way_audio": bool(c.get("one_way_audio")),
            "keys": digits(c.get("dtmf") or []), "key": call_id, "call_id": call_id, "start_ts": c.get("start_ts")}


def dtmf_frame(events: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Key presses of a call or stream, in time order."""
    cols = ["time", "key", "from", "duration_ms", "ended", "via", "frame"]
    return pd.DataFrame([{"time": fmt_ts(e.get("ts")), "key": e.get("digit"), "from": e.get("src"),
                          "duration_ms": e.get("duration_ms"), "ended": e.get("ended"),
                          "via": "RTP (RFC 4733)" if e.get("source") == "rfc4733" else "SIP INFO",
                          "frame": e.get("frame")} for e in events], columns=cols)


def call_history_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    cols = ["time", "caller", "callee", "final_code", "answered", "setup_ms", "duration_s", "one_way_audio"]
    return pd.DataFrame([{**{k: r.get(k) for k in cols}, "time": fmt_ts(r.get("ts"))}
                         for r in sorted(rows, key=lambda r: -float(r.get("ts") or 0))], columns=cols)


def filter_calls(df: pd.DataFrame, text: str = "", states: Sequence[str] = ()) -> pd.DataFrame:
    """sngrep-style filter: free text over id/caller/callee/addresses/code, plus call states."""
    out = df
    if states:
        out = out[out["state"].isin(list(states))]
    needle = text.strip().lower()
    if needle:
        hay = out[["call_id", "caller", "callee", "src", "dst", "final_code", "final_reason"]].astype(str)
        mask = hay.apply(lambda col: col.str.lower().str.contains(needle, regex=False)).any(axis=1)
        out = out[mask]
    return out


_STREAM_COLS = ["stream", "name", "src", "dst", "ssrc", "codec", "packets", "lost", "loss_pct", "mean_jitter_ms",
                "max_jitter_ms", "max_delta_ms", "mos", "call_id", "one_way_audio", "first", "duration_s", "keys"]


def streams_frame(snap: dict[str, Any]) -> pd.DataFrame:
    a = analysis(snap)
    one_way_calls = set((snap.get("media") or {}).get("one_way_calls") or [])
    one_way = {i for c in a.get("calls", []) if c.get("call_id") in one_way_calls for i in c.get("streams", [])}
    rows = []
    for i, s in enumerate(a.get("rtp_streams", [])):
        rows.append({
            "stream": i, "name": stream_name(i, s), "src": f"{s['src']}:{s['src_port']}",
            "dst": f"{s['dst']}:{s['dst_port']}", "ssrc": f"0x{int(s['ssrc']):08X}", "codec": s.get("codec", ""),
            "packets": s.get("packets", 0), "lost": s.get("lost", 0), "loss_pct": s.get("loss_pct", 0.0),
            "mean_jitter_ms": s.get("mean_jitter_ms"), "max_jitter_ms": s.get("max_jitter_ms"),
            "max_delta_ms": s.get("max_delta_ms"), "mos": s.get("mos"), "call_id": s.get("call_id"),
            "one_way_audio": i in one_way or s.get("call_id") in one_way_calls, "first": fmt_ts(s.get("first_ts")),
            "duration_s": round(float(s.get("last_ts", 0)) - float(s.get("first_ts", 0)), 3),
            "keys": digits(s.get("dtmf") or []),
        })
    return pd.DataFrame(rows, columns=_STREAM_COLS)


def worst_streams(df: pd.DataFrame, n: int = 5) -> list[str]:
    """Names of the ``n`` streams with the lowest MOS (then the highest loss): a ranking of the
    producer's figures, no threshold of the page's own."""
    if df.empty:
        return []
    ranked = df.assign(_mos=df["mos"].fillna(9.0), _loss=-df["loss_pct"].fillna(0.0))
    best = ranked["mos"].max()
    # only streams worse than the best one: when all are equally good, none is "worst"
    ranked = ranked[(ranked["mos"] < best) | (ranked["loss_pct"] > 0)]
    return list(ranked.sort_values(["_mos", "_loss"]).head(n)["name"])


def call_streams(snap: dict[str, Any], call_id: str) -> pd.DataFrame:
    """The call's RTP streams: those the call lists (SDP association) and those naming the call."""
    df = streams_frame(snap)
    call: dict[str, Any] = next((c for c in analysis(snap).get("calls", []) if c.get("call_id") == call_id), {})
    listed = set(call.get("streams", []))
    return df[(df["call_id"] == call_id) | df["stream"].isin(listed)]


def stream_name(index: int, s: dict[str, Any]) -> str:
    return f"#{index} {s['src']}:{s['src_port']}→{s['dst']}:{s['dst_port']}"


def intervals_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """One row per stream and 10-s interval for the Media charts."""
    rows = []
    for i, s in enumerate(analysis(snap).get("rtp_streams", [])):
        name = stream_name(i, s)
        for iv in s.get("intervals", []):
            expected = iv.get("expected") or 0
            rows.append({
                "stream": name, "time": to_dt(iv["start"]),
                "loss_pct": 100.0 * iv.get("lost", 0) / expected if expected else 0.0,
                "mean_jitter_ms": iv.get("mean_jitter_ms"), "max_jitter_ms": iv.get("max_jitter_ms"),
                "mos": iv.get("mos"), "packets": iv.get("packets"),
            })
    return pd.DataFrame(rows, columns=["stream", "time", "loss_pct", "mean_jitter_ms", "max_jitter_ms",
                                       "mos", "packets"])


def sip_messages(snap: dict[str, Any], call_id: str | None = None) -> list[dict[str, Any]]:
    msgs = analysis(snap).get("sip_messages", [])
    return [m for m in msgs if call_id is None or m.get("call_id") == call_id]


def registration_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """REGISTER and OPTIONS messages in time order: the Registration timeline."""
    rows = []
    for m in analysis(snap).get("sip_messages", []):
        if m.get("cseq_method") not in ("REGISTER", "OPTIONS"):
            continue
        rows.append({
            "time": to_dt(m["ts"]), "frame": m.get("frame"),
            "kind": m["cseq_method"], "message": m.get("method") or str(m.get("status")),
            "summary": m.get("summary", ""), "from": f"{m['src']}:{m['src_port']}",
            "to": f"{m['dst']}:{m['dst_port']}",
        })
    return pd.DataFrame(rows, columns=["time", "frame", "kind", "message", "summary", "from", "to"])


def keepalive_frame(snap: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for k in analysis(snap).get("keepalives", []):
        for n, rtt in enumerate(k.get("rtts_ms", [])):
            rows.append({"keepalive": f"{k['kind']} {k['client']}→{k['peer']}", "n": n + 1, "rtt_ms": rtt})
    return pd.DataFrame(rows, columns=["keepalive", "n", "rtt_ms"])
