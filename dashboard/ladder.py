"""The SIP ladder (sequence) diagram of one call, as sngrep draws it, in plotly.

One vertical lifeline per endpoint (ip:port, in order of first appearance), one arrow per message
from sender to receiver, top to bottom in time order. The label on the arrow is the method or the
status code and reason; the left margin shows the time since the first message and the frame
number. An invisible marker at each arrow's middle carries the hover text and lets a click select
the message (``st.plotly_chart(on_select=…)`` returns its ``customdata``, the message index).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

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
        plot_bgcolor="white", hovermode="closest", dragmode=False,
    )
    return fig


def sorted_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order the figure uses, so a clicked ``customdata`` index maps back to a message."""
    return sorted(messages, key=lambda m: (float(m["ts"]), int(m.get("frame", 0))))
