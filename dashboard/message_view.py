"""One full SIP message on a page: where it was seen, its text with a copy button, its SDP with the
lines that matter for NAT and codecs marked, and Wireshark's packet detail on request."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import streamlit as st

from collectors.call_messages import FullMessage
from dashboard import sources
from dashboard.timefmt import fmt_ts, utc

#: SDP lines an engineer checks first (RFC 8866): where media goes (c=, m=), which codecs
#: (a=rtpmap, a=fmtp) and the direction (RFC 3264 §5.1).
_KEY_SDP = re.compile(r"^(c=|m=|a=rtpmap:|a=fmtp:|a=(sendrecv|sendonly|recvonly|inactive)\b|a=rtcp:|a=ptime:)")


@dataclass(frozen=True, slots=True)
class Parts:
    head: str  # start line and headers
    body: str
    content_type: str


def split_message(text: str) -> Parts:
    head, sep, body = text.partition("\n\n")
    ctype = ""
    for line in head.split("\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-type", "c"):
            ctype = value.strip().lower()
    return Parts(head, body if sep else "", ctype)


def sdp_html(body: str) -> str:
    """The SDP body as HTML with the key lines marked (every character escaped)."""
    lines = []
    for line in body.splitlines():
        text = html.escape(line)
        lines.append(f"<mark><b>{text}</b></mark>" if _KEY_SDP.match(line) else text)
    return "<pre style='white-space: pre-wrap; margin: 0'>" + "\n".join(lines) + "</pre>"


def render_message(src: sources.DataSource, m: FullMessage, key: str) -> None:
    where = f"{m.src}:{m.src_port} → {m.dst}:{m.dst_port}"
    st.caption(f"Frame {m.frame} · {fmt_ts(m.ts)} · {where} · {m.transport.upper()} · {m.source}",
               help=f"{utc(m.ts)}. Credentials (digest responses, nonces, keys, tokens) are replaced by "
                    "<redacted>.")
    st.code(m.text, language="http", wrap_lines=True)
    if m.truncated:
        st.caption("The message is longer than shown: cut at 64 KiB.")
    parts = split_message(m.text)
    if parts.body and "sdp" in parts.content_type:
        st.markdown("**SDP** — addresses, ports, codecs and direction marked", help="RFC 8866 / RFC 3264")
        st.html(sdp_html(parts.body))
    with st.expander("Packet details (as Wireshark shows the frame)"):
        if m.transport == "trace":
            st.caption("This message comes from the OSBiz trace log: there is no packet to dissect.")
            return
        detail_key = f"{key}.detail"
        if st.button(f"Dissect frame {m.frame} with tshark", key=f"{key}.dissect"):
            try:
                st.session_state[detail_key] = src.packet_detail(m.source, m.frame)
            except sources.SourceError as exc:
                st.error(str(exc))
        detail = st.session_state.get(detail_key)
        if detail is not None and detail.frame == m.frame:
            if detail.note:
                st.info(detail.note)
            else:
                st.code("\n".join(detail.lines), language=None)
