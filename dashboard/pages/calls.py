"""Calls: the calls of the picked time range, searchable and paged, like sngrep's call list; per call
its SIP ladder (export as PNG, SVG or text), every message in full, the keys pressed, its RTP
streams and its capture."""

from __future__ import annotations

from typing import Any

import streamlit as st

from collectors.call_messages import FullMessage
from collectors.media.dtmf import digits
from collectors.runtime.history import CALL_STATUSES
from core.analysis import CALL_OPEN_STATES
from dashboard import data, frames, ladder, message_view, sources
from dashboard.timefmt import fmt_ts, zone_name

PAGE_SIZE = 50
_OPEN_LABELS = {"in progress", "ringing", "answered open"}


def render() -> None:
    st.title("Calls")
    src, snap = data.page_snapshot()
    rng = data.page_range(src, snap)
    c1, c2 = st.columns([3, 2])
    text = c1.text_input("Search", placeholder="number (part of it) or a whole Call-ID", key="calls.search")
    statuses = c2.multiselect("Status", frames.CALL_STATUS_FILTERS, key="calls.states")
    page_no = int(st.session_state.get("calls.page", 0))
    wanted = tuple(s for s in statuses if s in CALL_STATUSES)
    page = sources.CallsPage((), 0, "")
    if not statuses or wanted:
        try:
            page = src.calls(rng.start, rng.end, text, wanted, page_no * PAGE_SIZE, PAGE_SIZE)
        except sources.SourceError as exc:
            st.warning(f"calls of the time range unavailable: {exc}")
    df = frames.call_list(page.rows, snap, rng.start, rng.end, text, statuses)
    still_open = int(df["status"].isin(list(_OPEN_LABELS)).sum()) if not df.empty else 0
    pages = max(1, -(-page.total // PAGE_SIZE))
    st.caption(
        f"{rng.describe()} ({zone_name()}). {page.total} completed calls — {page.covers or 'none'}; "
        f"{still_open} calls not ended yet. Page {min(page_no, pages - 1) + 1} of {pages}, newest first.",
        help="Completed calls come from the service's history for any range; a call's ladder, messages "
             "and capture are shown as long as the service's capture files or trace log still hold it.")
    _pager(page_no, pages)
    # as tall as its rows (a page holds at most PAGE_SIZE + the calls not ended): the list is the page
    st.dataframe(df.drop(columns=["key", "call_id", "start_ts"]), hide_index=True, height=38 + 35 * max(1, len(df)),
                 column_config={"start": st.column_config.TextColumn("start", help=f"Times in {zone_name()}"),
                                "one_way_audio": st.column_config.CheckboxColumn("one-way audio"),
                                "keys": st.column_config.TextColumn("keys", help="DTMF keys pressed (RFC 4733 "
                                                                                 "and SIP INFO)")})
    if df.empty:
        return
    keys = list(df["key"])
    labels = {row.key: f"{row.start} {row.caller or '?'} → {row.callee or '?'} ({row.status})"
              for row in df.itertuples()}
    linked = st.query_params.get("call")
    if linked and linked not in keys and any(c.get("call_id") == linked for c in frames.analysis(snap).get("calls", [])):
        keys.insert(0, linked)  # a link from a finding to a call outside the list
        labels[linked] = f"{linked} (linked)"
    # a link picks its call; else the newest call that has ended (a call still up changes under the
    # cursor) — calls still up stay one click away
    ended = [k for k, status in zip(df["key"], df["status"], strict=True) if status not in _OPEN_LABELS]
    default = keys.index(linked) if linked in keys else keys.index(ended[0]) if ended else 0
    call_key = st.selectbox("Call", keys, index=default, format_func=lambda k: labels.get(k, k), key="calls.pick")
    call_key = str(call_key)
    if call_key.startswith("#"):
        show_call(src, snap, "", call_key[1:])
    else:
        show_call(src, snap, call_key)


def _pager(page_no: int, pages: int) -> None:
    if pages <= 1:
        st.session_state["calls.page"] = 0
        return
    a, b, _ = st.columns([1, 1, 6])
    if a.button("← newer", disabled=page_no <= 0, key="calls.prev"):
        st.session_state["calls.page"] = max(0, page_no - 1)
        st.rerun()
    if b.button("older →", disabled=page_no >= pages - 1, key="calls.next"):
        st.session_state["calls.page"] = min(pages - 1, page_no + 1)
        st.rerun()


def _messages(src: sources.DataSource, call_id: str, call_digest: str, ended: bool) -> sources.Messages:
    """The call's full messages, read once per ended call and session (a call still up gets more)."""
    key = f"calls.messages.{call_id or call_digest}"
    cached = st.session_state.get(key)
    if ended and isinstance(cached, sources.Messages):
        return cached
    try:
        answer = src.call_messages(call_id, call_digest)
    except sources.SourceError as exc:
        return sources.Messages(call_id, (), 0, str(exc))
    if answer.messages and ended:
        st.session_state[key] = answer
    return answer


def _ladder_rows(summaries: list[dict[str, Any]], full: tuple[FullMessage, ...]) -> list[dict[str, Any]]:
    """The ladder from the full messages when they are at hand (they do not change while the
    Snapshot's window moves on, so a click on an arrow stays on it), retransmission marks taken
    from the analysis; else from the analysis's summaries."""
    if not full:
        return summaries
    rows = ladder.sorted_messages(ladder.messages_from_full(full))
    resent = {(m.get("frame"), m.get("src"), m.get("dst")) for m in summaries if m.get("retransmission")}
    for r in rows:
        r["retransmission"] = (r["frame"], r["src"], r["dst"]) in resent
    return rows


def _match(summary: dict[str, Any], found: tuple[FullMessage, ...]) -> FullMessage | None:
    for m in found:
        if m.frame == summary.get("frame") and m.src == summary.get("src") and m.dst == summary.get("dst") \
                and abs(m.ts - float(summary.get("ts") or 0)) < 1e-3:
            return m
    return None


def show_call(src: sources.DataSource, snap: dict[str, Any], call_id: str, call_digest: str = "") -> None:
    call: dict[str, Any] = next((c for c in frames.analysis(snap).get("calls", []) if c.get("call_id") == call_id),
                                {}) if call_id else {}
    full = _messages(src, call_id, call_digest, ended=call.get("state") not in CALL_OPEN_STATES)
    call_id = call_id or full.call_id
    summaries = _ladder_rows(ladder.sorted_messages(frames.sip_messages(snap, call_id)) if call_id else [],
                             full.messages)
    st.subheader(f"Call {call_id or '(Call-ID not kept)'}")
    if call:
        st.caption(f"{call.get('caller') or '?'} → {call.get('callee') or '?'} · {call.get('state')} · "
                   f"final {call.get('final_code') or '—'} {call.get('final_reason') or ''} · started "
                   f"{fmt_ts(call.get('start_ts'))}")
    if not summaries:
        st.info(full.note or "No SIP message of this call is left in the data: the service's capture files "
                             "and trace log have moved on. Its summary is in the list above.")
        return
    title = f"Call {call_id}"
    event = st.plotly_chart(ladder.ladder_figure(summaries), key=f"ladder.{call_id}", on_select="rerun",
                            selection_mode="points", config=ladder.chart_config(call_id))
    d1, d2, d3 = st.columns(3)
    d1.download_button("Ladder as SVG", ladder.ladder_svg(summaries, title), file_name=f"ladder-{_safe(call_id)}.svg",
                       mime="image/svg+xml", key=f"svg.{call_id}")
    d2.download_button("Ladder as text", ladder.ladder_text(summaries, title),
                       file_name=f"ladder-{_safe(call_id)}.txt", mime="text/plain", key=f"txt.{call_id}")
    d3.caption("PNG: the camera button above the ladder.")
    picked = _picked_index(event)
    key, clicked = f"msg.{call_id}", f"msg.clicked.{call_id}"
    if picked is not None and picked < len(summaries) and st.session_state.get(clicked) != picked:
        # A click on an arrow selects its message (the widget state would otherwise win).
        st.session_state[key] = st.session_state[clicked] = picked
    labels = [f"#{m.get('frame')} {m.get('summary') or ladder.label(m)}" for m in summaries]
    choice = st.selectbox("Message (or click an arrow)", range(len(summaries)), format_func=lambda i: labels[i],
                          key=key)
    summary = summaries[int(choice)]
    message = _match(summary, full.messages)
    if message is not None:
        message_view.render_message(src, message, key=f"m.{call_id}.{int(choice)}")
    else:
        st.code(_summary_text(summary), language="text")
        st.caption(full.note or "The full message is not in the files any more; its summary is shown.")
    if full.more:
        st.caption(f"{full.more} more messages of this call are not shown (at most 500 per call).")
    _keys(call)
    _streams(snap, call_id)
    _capture(src, call_id, call_digest)


def _keys(call: dict[str, Any]) -> None:
    events = call.get("dtmf") or []
    if not events:
        return
    st.markdown(f"**Keys pressed:** `{digits(events) or '—'}`",
                help="DTMF: RFC 4733 telephone-events in the RTP and SIP INFO (application/dtmf-relay, "
                     "application/dtmf)")
    st.dataframe(frames.dtmf_frame(events), hide_index=True)


def _streams(snap: dict[str, Any], call_id: str) -> None:
    mine = frames.call_streams(snap, call_id)
    st.markdown("**RTP streams**")
    if mine.empty:
        st.caption("No RTP streams tied to this call in the data.")
        return
    st.dataframe(mine.drop(columns=["name"]), hide_index=True)
    if mine["one_way_audio"].any():
        st.warning("One-way audio: RTP flows in one direction only.")


def _capture(src: sources.DataSource, call_id: str, call_digest: str) -> None:
    def build() -> bytes:
        try:
            return src.call_capture(call_id, call_digest) or b""
        except sources.SourceError:
            return b""

    st.download_button("Download the call's capture (SIP + RTP, pcap)", build,
                       file_name=f"call-{_safe(call_id or call_digest)}.pcap", mime="application/vnd.tcpdump.pcap",
                       key=f"dl.{call_id or call_digest}",
                       help="SIP by Call-ID and the call's RTP/RTCP, from the capture files that still hold them")


def _picked_index(event: object) -> int | None:
    try:
        points = event["selection"]["points"]  # type: ignore[index]
        return int(points[0]["customdata"]) if points else None
    except (KeyError, TypeError, IndexError, ValueError):
        return None


def _summary_text(m: dict[str, Any]) -> str:
    return "\n".join([
        m.get("summary") or ladder.label(m),
        f"frame {m.get('frame')}  {fmt_ts(m.get('ts'))}  {m.get('transport')}",
        f"{ladder.endpoint(m, 'src')} -> {ladder.endpoint(m, 'dst')}",
        f"Call-ID: {m.get('call_id')}",
        f"CSeq: {m.get('cseq')} {m.get('cseq_method')}",
    ] + (["(retransmission)"] if m.get("retransmission") else []))


def _safe(call_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in call_id)[:60]
