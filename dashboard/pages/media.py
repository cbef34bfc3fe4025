"""Media: the RTP streams, worst first; one chart per picked stream (loss 0–100 %, jitter, MOS 1–5
per 10 s) that stays readable whether there is 1 stream or 200; one-way audio and the worst
streams marked; the streams of the picked time range from the service's history."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import data, frames, sources
from dashboard.timefmt import fmt_ts, zone_name
from dashboard.timerange import TimeRange

#: Charts drawn at once; more would be a wall nobody reads (the table lists every stream).
MAX_CHARTS = 12
DEFAULT_CHARTS = 4
ONE_WAY_STYLE = "background-color: rgba(214, 39, 40, 0.25)"
WORST_STYLE = "background-color: rgba(255, 127, 14, 0.20)"


def render() -> None:
    st.title("Media")
    src, snap = data.page_snapshot()
    rng = data.page_range(src, snap)
    df = frames.streams_frame(snap)
    first = frames.analysis(snap).get("first_ts")
    st.caption(f"RTP streams in the data since {fmt_ts(first)} "
               f"({'the analysed files' if isinstance(src, sources.OfflineSource) else 'the service’s live window'}); "
               "older streams of the time range are listed at the end of the page.")
    if df.empty:
        st.info("No RTP streams in the data.")
    else:
        _live(snap, df)
    _range(src, rng)


def _live(snap: dict[str, Any], df: pd.DataFrame) -> None:
    # A link from a diagnosis or a call opens the page on that call's streams (?call=<Call-ID>).
    calls = ["all calls", *sorted({str(c) for c in df["call_id"] if c})]
    wanted = st.query_params.get("call")
    pick = st.selectbox("Streams of", calls, index=calls.index(wanted) if wanted in calls else 0, key="media.call")
    if pick != "all calls":
        df = df[df["call_id"] == pick]
    one_way = df[df["one_way_audio"]]
    if not one_way.empty:
        ids = sorted({str(c) for c in one_way["call_id"] if c})
        st.error(f"One-way audio: RTP in one direction only on {len(ids) or 1} call(s)"
                 + (f" ({', '.join(ids[:5])}{' …' if len(ids) > 5 else ''})" if ids else ""))
    worst = frames.worst_streams(df)
    ordered = df.assign(_order=df["name"].map(lambda n: worst.index(n) if n in worst else len(worst)))
    ordered = ordered.sort_values(["one_way_audio", "_order"], ascending=[False, True]).drop(columns=["_order"])

    def mark(row: pd.Series) -> list[str]:
        style = ONE_WAY_STYLE if row["one_way_audio"] else WORST_STYLE if row["name"] in worst[:3] else ""
        return [style] * len(row)

    st.markdown(f"**{len(df)} streams**, one-way audio first, then the worst by MOS and loss (marked)")
    st.dataframe(
        ordered.style.apply(mark, axis=1), hide_index=True,
        # the keys pressed next to the codec: the table is wider than the page
        column_order=[c for c in ("stream", "src", "dst", "ssrc", "codec", "keys") if c in ordered.columns]
        + [c for c in ordered.columns if c not in ("name", "stream", "src", "dst", "ssrc", "codec", "keys")],
        column_config={"one_way_audio": st.column_config.CheckboxColumn("one-way audio"),
                       "mos": st.column_config.NumberColumn("MOS", format="%.2f"),
                       "loss_pct": st.column_config.NumberColumn("loss %", format="%.2f"),
                       "first": st.column_config.TextColumn("first", help=f"Times in {zone_name()}"),
                       "keys": st.column_config.TextColumn("keys", help="DTMF keys (RFC 4733)")},
    )
    iv = frames.intervals_frame(snap)
    names = list(ordered["name"])
    defaults = [n for n in names if n in set(ordered[ordered["one_way_audio"]]["name"]) | set(worst)][:DEFAULT_CHARTS] \
        or names[:DEFAULT_CHARTS]
    chosen = st.multiselect(f"Charts for (up to {MAX_CHARTS} streams)", names, default=defaults,
                            max_selections=MAX_CHARTS, key=f"media.charts.{pick}")
    if iv.empty:
        st.caption("No per-interval figures in the data.")
        return
    for n, name in enumerate(chosen):
        rows = iv[iv["stream"] == name]
        info = ordered[ordered["name"] == name].iloc[0]
        st.plotly_chart(stream_figure(rows, name, info.to_dict()), key=f"media.chart.{n}.{name}")


def stream_figure(rows: pd.DataFrame, name: str, info: dict[str, Any]) -> go.Figure:
    """One stream's loss, jitter and MOS per 10 s, stacked on one time axis: no legend (one stream
    per chart), fixed scales where the quantity has one — loss 0–100 %, MOS 1–5 (ITU-T P.800)."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.13,
                        subplot_titles=("Loss % per 10 s", "Mean jitter (ms) per 10 s", "MOS per 10 s"))
    colour = "#d62728" if info.get("one_way_audio") else "#1f77b4"
    for r, col in enumerate(("loss_pct", "mean_jitter_ms", "mos"), start=1):
        fig.add_trace(go.Scatter(x=rows["time"], y=rows[col], mode="lines+markers", name=col,
                                 line={"color": colour}, connectgaps=False), row=r, col=1)
    mos = info.get("mos")
    subtitle = f"{info.get('codec') or '?'} · {int(info.get('packets') or 0)} packets · loss " \
               f"{float(info.get('loss_pct') or 0):.2f} % · MOS {mos:.2f}" if isinstance(mos, float) else \
        f"{info.get('codec') or '?'} · {int(info.get('packets') or 0)} packets"
    one_way = " · ONE-WAY AUDIO" if info.get("one_way_audio") else ""
    fig.update_layout(title={"text": f"{name}<br><sup>{subtitle}{one_way}</sup>"}, height=600, showlegend=False,
                      margin={"l": 60, "r": 20, "t": 100, "b": 50})
    if not rows.empty:
        # each point is a 10-s interval: the axis spans whole intervals, also for a short stream
        start = rows["time"].min()
        fig.update_xaxes(range=[start - pd.Timedelta(seconds=3),
                                max(rows["time"].max(), start) + pd.Timedelta(seconds=13)])
    fig.update_yaxes(range=[0, 100], title_text="%", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", title_text="ms", row=2, col=1)
    fig.update_yaxes(range=[1, 5], title_text="MOS", row=3, col=1)
    fig.update_xaxes(title_text=f"time ({zone_name()})", row=3, col=1)
    return fig


def _range(src: sources.DataSource, rng: TimeRange) -> None:
    st.subheader("Streams of the time range")
    try:
        rows = src.rows("streams", rng.start, rng.end)
    except sources.SourceError as exc:
        st.caption(f"stream history unavailable: {exc}")
        return
    if not rows:
        st.caption(f"{rng.describe()}: " + ("the history of streams is kept by the service; this analysis has "
                                             "the streams above." if isinstance(src, sources.OfflineSource)
                                             else "no completed stream in the service's history."))
        return
    hist = pd.DataFrame([{**r, "time": pd.Timestamp(float(r["ts"]), unit="s", tz="UTC").tz_convert(zone_name())}
                         for r in rows])
    st.caption(f"{rng.describe()}: {len(hist)} completed streams from the service's history.")
    fig = px.scatter(hist, x="time", y="mos", hover_data=["src", "dst", "packets", "lost", "mean_jitter_ms"],
                     title="MOS of each completed stream")
    fig.update_yaxes(range=[1, 5], title_text="MOS")
    fig.update_xaxes(title_text=f"time ({zone_name()})")
    fig.update_layout(showlegend=False, height=320, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    st.plotly_chart(fig, key="media.range")
    st.dataframe(hist.drop(columns=["ts"]), hide_index=True)
