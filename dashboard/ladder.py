"""The SIP ladder (sequence) diagram of one call, as sngrep draws it, in plotly.

One vertical lifeline per endpoint (ip:port, in order of first appearance), one arrow per message
from sender to receiver, top to bottom in time order. The label on the arrow is the method or the
status code and reason; the left margin shows the time since the first message and the frame
number. An invisible marker at each arrow's middle carries the hover text and lets a click select
the message (``st.plotly_chart(on_select=…)`` returns its ``customdata``, the message index).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from collectors.call_messages import FullMessage

ROW_PX = 34
HEAD_PX = 70


def endpoint(msg: dict[str, Any], side: str) -> str:
    return f"{msg[side]}:{msg[side + '_port']}"


def label(msg: dict[str, Any]) -> str:
    if msg.get("method"):
        return str(msg["method"])
    return f"{msg.get('status')} {msg.get('reason', '')}".strip()


def colour(msg: dict[str, Any]) -> str:
    status = msg.get("status")
    if status is None:
        return "#1f77b4"  # requests
    if status < 200:
        return "#7f7f7f"
    if status < 300:
        return "#2ca02c"
    if status < 400:
        return "#ff7f0e"
    return "#d62728"


def hover(msg: dict[str, Any], t0: float) -> str:
    lines = [
        f"<b>{msg.get('summary') or label(msg)}</b>",
        f"frame {msg.get('frame')} · +{float(msg['ts']) - t0:.3f} s · {msg.get('transport', '')}",
        f"{endpoint(msg, 'src')} → {endpoint(msg, 'dst')}",
        f"CSeq {msg.get('cseq')} {msg.get('cseq_method', '')}",
    ]
    if msg.get("retransmission"):
        lines.append("retransmission")
    return "<br>".join(lines)


def hosts(messages: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for m in messages:
        for side in ("src", "dst"):
            ep = endpoint(m, side)
            if ep not in seen:
                seen.append(ep)
    return seen


def ladder_figure(messages: list[dict[str, Any]], title: str = "") -> go.Figure:
    """The ladder of ``messages`` (SipMessageInfo dicts), sorted by time then frame."""
    msgs = sorted_messages(messages)
    cols = hosts(msgs)
    x_of = {h: i for i, h in enumerate(cols)}
    t0 = float(msgs[0]["ts"]) if msgs else 0.0
    fig = go.Figure()
    n = len(msgs)
    for h, x in x_of.items():
        fig.add_shape(type="line", x0=x, x1=x, y0=0.5, y1=-n - 0.5, line={"color": "#bbbbbb", "width": 2})
        fig.add_annotation(x=x, y=0.9, text=f"<b>{h}</b>", showarrow=False, yanchor="bottom")
    mid_x, mid_y, texts, idx = [], [], [], []
    for i, m in enumerate(msgs):
        y = -(i + 1)
        xs, xd = x_of[endpoint(m, "src")], x_of[endpoint(m, "dst")]
        c = colour(m)
        dash = " (retr.)" if m.get("retransmission") else ""
        fig.add_annotation(
            x=xd, y=y, ax=xs, ay=y, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
            arrowhead=2, arrowsize=1.2, arrowwidth=1.6, arrowcolor=c, text="",
        )
        fig.add_annotation(
            x=(xs + xd) / 2, y=y, text=label(m) + dash, showarrow=False, yshift=9,
            font={"color": c, "size": 12},
        )
        fig.add_annotation(
            x=-0.45, y=y, text=f"+{float(m['ts']) - t0:.3f} s  #{m.get('frame')}", showarrow=False,
            xanchor="right", font={"size": 10, "color": "#555555"},
        )
        mid_x.append((xs + xd) / 2)
        mid_y.append(y)
        texts.append(hover(m, t0))
        idx.append(i)
    fig.add_trace(go.Scatter(
        x=mid_x, y=mid_y, mode="markers", marker={"size": 14, "opacity": 0.01, "color": "#000000"},
        hovertext=texts, hoverinfo="text", customdata=idx, name="messages", showlegend=False,
    ))
    fig.update_layout(
        title=title or None, height=HEAD_PX + ROW_PX * max(n, 1) + 40,
        margin={"l": 140, "r": 20, "t": 40 + (30 if title else 0), "b": 10},
        xaxis={"visible": False, "range": [-0.6, max(len(cols) - 0.5, 1)]},
        yaxis={"visible": False, "range": [-n - 0.8, 1.6]},
        hovermode="closest", dragmode=False,
    )
    return fig


#: The plotly toolbar's camera button saves the ladder as PNG under this name.
def chart_config(call_id: str) -> dict[str, Any]:
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in call_id)[:60]
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": f"ladder-{name}", "scale": 2}}


def _printable(text: str) -> str:
    """Text fit for one line of a file or an SVG: control characters and lone surrogates (hostile
    captures carry anything) become a replacement mark."""
    return "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else "\ufffd" for ch in text)


def ladder_text(messages: Sequence[dict[str, Any]], title: str = "") -> str:
    """The ladder as text, the way sngrep draws a call flow: one column per endpoint, one line per
    message with its time offset and frame, an arrow from sender to receiver with the label."""
    msgs = sorted_messages(list(messages))
    cols = hosts(msgs)
    width = max(24, *(len(h) + 4 for h in cols)) if cols else 24
    lead = 22
    center = {h: lead + width * i + width // 2 for i, h in enumerate(cols)}
    line_len = lead + width * len(cols)
    out = [_printable(title)] if title else []
    head = [" "] * line_len
    for h, c in center.items():
        start = max(lead, c - len(h) // 2)
        head[start:start + len(h)] = h
    out.append("".join(head).rstrip())
    t0 = float(msgs[0]["ts"]) if msgs else 0.0
    for m in msgs:
        row = [" "] * line_len
        for c in center.values():
            row[c] = "|"
        a, b = center[endpoint(m, "src")], center[endpoint(m, "dst")]
        lo, hi = min(a, b), max(a, b)
        for x in range(lo + 1, hi):
            row[x] = "-"
        if a < b:
            row[hi - 1] = ">"
        elif a > b:
            row[lo + 1] = "<"
        text = f" {_printable(label(m))}{' (retr.)' if m.get('retransmission') else ''} "
        if hi - lo - 3 > len(text):
            at = lo + 2 + (hi - lo - 3 - len(text)) // 2
            row[at:at + len(text)] = text
        stamp = f"{'+' + format(float(m['ts']) - t0, '.3f'):>10} #{m.get('frame')}"
        row[:len(stamp)] = stamp[:lead - 1]
        out.append("".join(row).rstrip())
    return "\n".join(out) + "\n"


def ladder_svg(messages: Sequence[dict[str, Any]], title: str = "") -> str:
    """The ladder as a standalone SVG (for tickets and documents): the same layout as the chart."""
    msgs = sorted_messages(list(messages))
    cols = hosts(msgs)
    col_w, row_h, left, top = 220, ROW_PX, 150, 60 + (24 if title else 0)
    width = left + col_w * max(len(cols), 1) + 20
    height = top + row_h * (len(msgs) + 1)
    x_of = {h: left + col_w * i + col_w // 2 for i, h in enumerate(cols)}
    def esc(text: str) -> str:
        return html.escape(_printable(text))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>', "<defs>"]
    for c in sorted({colour(m) for m in msgs}):
        parts.append(f'<marker id="a{c[1:]}" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
                     f'<path d="M0,0 L10,4 L0,8 z" fill="{c}"/></marker>')
    parts.append("</defs>")
    if title:
        parts.append(f'<text x="10" y="20" font-weight="bold">{esc(title)}</text>')
    for h, x in x_of.items():
        parts.append(f'<text x="{x}" y="{top - 16}" text-anchor="middle" font-weight="bold">{esc(h)}</text>')
        parts.append(f'<line x1="{x}" y1="{top - 8}" x2="{x}" y2="{height - 8}" stroke="#bbbbbb" stroke-width="2"/>')
    t0 = float(msgs[0]["ts"]) if msgs else 0.0
    for i, m in enumerate(msgs):
        y = top + row_h * (i + 1) - row_h // 2
        xs, xd = x_of[endpoint(m, "src")], x_of[endpoint(m, "dst")]
        c = colour(m)
        parts.append(f'<text x="{left - 10}" y="{y + 4}" text-anchor="end" fill="#555555" font-size="10">'
                     f'+{float(m["ts"]) - t0:.3f} s #{esc(str(m.get("frame")))}</text>')
        parts.append(f'<line x1="{xs}" y1="{y}" x2="{xd}" y2="{y}" stroke="{c}" stroke-width="1.6" '
                     f'marker-end="url(#a{c[1:]})"/>')
        text = label(m) + (" (retr.)" if m.get("retransmission") else "")
        parts.append(f'<text x="{(xs + xd) / 2}" y="{y - 5}" text-anchor="middle" fill="{c}">{esc(text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def messages_from_full(found: Sequence[FullMessage]) -> list[dict[str, Any]]:
    """Ladder rows (the ``SipMessageInfo`` keys it uses) from full messages: the start line and CSeq
    say what each message is. For calls the analysis no longer holds (the history's)."""
    rows = []
    for m in found:
        first = m.text.split("\n", 1)[0].strip()
        method: str | None = None
        status: int | None = None
        reason = ""
        parts = first.split(" ", 2)
        if first.startswith("SIP/") and len(parts) >= 2 and parts[1].isdigit():
            status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        elif parts:
            method = parts[0]
        cseq = next((line.split(":", 1)[1].split() for line in m.text.split("\n")
                     if line.lower().startswith("cseq:")), [])
        rows.append({"frame": m.frame, "ts": m.ts, "src": m.src, "src_port": m.src_port, "dst": m.dst,
                     "dst_port": m.dst_port, "transport": m.transport, "method": method, "status": status,
                     "reason": reason, "call_id": m.call_id,
                     "cseq": int(cseq[0]) if cseq and cseq[0].isdigit() else 0,
                     "cseq_method": cseq[1] if len(cseq) > 1 else (method or ""), "summary": first[:200]})
    return rows


def sorted_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order the figure uses, so a clicked ``customdata`` index maps back to a message."""
    return sorted(messages, key=lambda m: (float(m["ts"]), int(m.get("frame", 0))))
