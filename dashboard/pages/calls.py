"""Calls: a searchable, filterable list like sngrep's; per call its ladder, streams and capture."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data, frames, ladder, sources
from dashboard.timefmt import fmt_ts, snap_time

STATES = ["answered", "failed", "cancelled", "in-progress", "ringing"]


def render() -> None:
    st.title("Calls")
    src, snap = data.page_snapshot()
    df = frames.calls_frame(snap)
    c1, c2 = st.columns([2, 2])
    text = c1.text_input("Search", placeholder="Call-ID, number, address, code …", key="calls.search")
    states = c2.multiselect("State", STATES, key="calls.states")
    shown = frames.filter_calls(df, text, states)
    st.caption(f"{len(shown)} of {len(df)} calls")
    st.dataframe(shown.drop(columns=["start_ts"]), hide_index=True)
    _history(src, snap)
    if shown.empty:
        return
    ids = list(shown["call_id"])
    wanted = st.query_params.get("call")
    index = ids.index(wanted) if wanted in ids else 0
    call_id = st.selectbox("Call", ids, index=index, key="calls.pick")
    show_call(src, snap, str(call_id))


def _history(src: sources.DataSource, snap: dict[str, Any]) -> None:
    """Completed calls of the last hour as the source remembers them (the service keeps them after
    they leave its evidence window; Call-IDs only as a hash there)."""
    try:
        rows = src.calls_since(snap_time(snap).timestamp() - 3600)
    except sources.SourceError as exc:
        st.caption(f"call history unavailable: {exc}")
        return
    with st.expander(f"Completed calls of the last hour ({len(rows)})"):
        st.dataframe(frames.call_history_frame(rows), hide_index=True)


def show_call(src: sources.DataSource, snap: dict[str, Any], call_id: str) -> None:
    msgs = ladder.sorted_messages(frames.sip_messages(snap, call_id))
    st.subheader(f"Call {call_id}")
    if not msgs:
        st.info("No SIP messages of this call in the data.")
    else:
        event = st.plotly_chart(
            ladder.ladder_figure(msgs), key=f"ladder.{call_id}", on_select="rerun", selection_mode="points",
        )
        picked = _picked_index(event)
        key, clicked = f"msg.{call_id}", f"msg.clicked.{call_id}"
        if picked is not None and picked < len(msgs) and st.session_state.get(clicked) != picked:
            # A click on an arrow selects its message (the widget state would otherwise win).
            st.session_state[key] = st.session_state[clicked] = picked
        labels = [f"#{m.get('frame')} {m.get('summary') or ladder.label(m)}" for m in msgs]
        choice = st.selectbox("Message (or click an arrow)", range(len(msgs)), format_func=lambda i: labels[i],
                              key=key)
        m = msgs[int(choice)]
        st.code(_message_text(m), language="text")
    mine = frames.call_streams(snap, call_id)
    st.markdown("**RTP streams**")
    if mine.empty:
        st.caption("No RTP streams tied to this call.")
    else:
        st.dataframe(mine.drop(columns=["name"]), hide_index=True)
        if mine["one_way_audio"].any():
            st.warning("One-way audio: RTP flows in one direction only.")
    key = f"calls.pcap.{call_id}"
    if st.button("Prepare capture of this call (SIP + RTP)", key=f"prep.{call_id}"):
        try:
            st.session_state[key] = src.call_capture(call_id) or b""
        except sources.SourceError as exc:
            st.error(str(exc))
    blob = st.session_state.get(key)
    if blob:
        st.download_button("Download call capture", blob, file_name=f"call-{_safe(call_id)}.pcap",
                           mime="application/vnd.tcpdump.pcap", key=f"dl.{call_id}")
    elif blob == b"":
        st.warning("No packets of this call in the capture files of this source.")


def _picked_index(event: object) -> int | None:
    try:
        points = event["selection"]["points"]  # type: ignore[index]
        return int(points[0]["customdata"]) if points else None
    except (KeyError, TypeError, IndexError, ValueError):
        return None


def _message_text(m: dict[str, Any]) -> str:
    """The message as far as the analysis keeps it (first line and routing fields; the analysis
    keeps no headers, so no credential can reach the page)."""
    return "\n".join([
        m.get("summary") or ladder.label(m),
        f"frame {m.get('frame')}  {fmt_ts(m.get('ts'))}  {m.get('transport')}",
        f"{ladder.endpoint(m, 'src')} -> {ladder.endpoint(m, 'dst')}",
        f"Call-ID: {m.get('call_id')}",
        f"CSeq: {m.get('cseq')} {m.get('cseq_method')}",
    ] + (["(retransmission)"] if m.get("retransmission") else []))


def _safe(call_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in call_id)[:60]
