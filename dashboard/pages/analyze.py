"""Analyze a capture: upload pcap/pcapng/OSBiz trace log (+ key log); the other pages then show it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import UpscopeError
from dashboard import data, frames, sources

#: Upload limit in MB (also passed to Streamlit's server.maxUploadSize by the CLI).
MAX_UPLOAD_MB = int(os.environ.get("UPSCOPE_MAX_UPLOAD_MB", "200"))
# pcap, pcapng (gzip too) and trace logs; ".cap" is not offered: under that name Microsoft Network
# Monitor writes its own format, which upscope does not read (export it as pcapng in Wireshark)
CAPTURE_TYPES = ["pcap", "pcapng", "gz", "log", "txt"]
DIR_KEY = "analyze.dir"


def _fresh_dir() -> Path:
    """One temp directory per session, replaced by each analysis (the capture must stay on disk
    for per-call export)."""
    old = st.session_state.pop(DIR_KEY, None)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    new = tempfile.mkdtemp(prefix="upscope-upload-")
    st.session_state[DIR_KEY] = new
    return Path(new)


def _safe_name(name: str) -> str:
    base = Path(name).name
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base)[:100] or "capture"


def render() -> None:
    st.title("Analyze a capture")
    st.markdown(
        "Upload a Wireshark/tcpdump capture (pcap, pcapng) or an OSBiz SIP trace log, optionally with a "
        "TLS key log (SSLKEYLOGFILE format). After the analysis every page shows that capture until you "
        f"go back to live data. Limit: {MAX_UPLOAD_MB} MB per file."
    )
    capture = st.file_uploader("Capture or OSBiz trace log", type=CAPTURE_TYPES, key="analyze.capture",
                               max_upload_size=MAX_UPLOAD_MB)
    keylog = st.file_uploader("TLS key log (optional)", type=["log", "txt", "keys"], key="analyze.keylog",
                              max_upload_size=MAX_UPLOAD_MB)
    trace = st.file_uploader("OSBiz SIP trace log of the same time (optional): its SIP with the capture's RTP",
                             type=["log", "txt"], key="analyze.trace", max_upload_size=MAX_UPLOAD_MB)
    port = st.number_input("SIP/TLS server port, if not 5061/65061 (for the key log)", min_value=0,
                           max_value=65535, value=0, key="analyze.port")
    if capture is None:
        return
    if st.button("Analyze", type="primary", key="analyze.go"):
        analyse(capture.name, capture.getvalue(), keylog.getvalue() if keylog is not None else None,
                (int(port),) if port else (), (trace.name, trace.getvalue()) if trace is not None else None)
    show_result()


def analyse(name: str, blob: bytes, keylog: bytes | None, tls_ports: tuple[int, ...] = (),
            trace: tuple[str, bytes] | None = None) -> None:
    for what, size in ((name, len(blob)), *(((trace[0], len(trace[1])),) if trace else ())):
        if size > MAX_UPLOAD_MB * 1024 * 1024:
            st.error(f"{what}: {size / 1e6:.1f} MB is over the {MAX_UPLOAD_MB} MB limit")
            return
    tmp = _fresh_dir()
    cap = tmp / _safe_name(name)
    cap.write_bytes(blob)
    files = [str(cap)]
    if trace is not None:
        log = tmp / ("trace-" + _safe_name(trace[0]))
        log.write_bytes(trace[1])
        files.append(str(log))
    keys = None
    if keylog is not None:
        keys = tmp / "keylog.txt"
        keys.write_bytes(keylog)
    spec = sources.ArtifactSpec(tuple(files), str(keys) if keys else None, label=f"upload {cap.name}",
                             tls_ports=tls_ports)
    with st.spinner(f"Analysing {cap.name} …"):
        try:
            src = sources.load_artifacts(spec)
        except UpscopeError as exc:
            # Engine messages name the file; the upload's temporary folder means nothing to the user.
            msg = str(exc).replace(str(cap), cap.name)
            st.error(msg if cap.name in msg else f"{cap.name}: {msg}")
            return
    a = frames.analysis(src.snapshot())
    if not a.get("packets") and not a.get("sip_messages"):
        # Nothing usable: say why in one line and keep the pages on what they showed.
        why = "; ".join(e["message"] for e in a.get("errors", [])[:3]) or "no packets or SIP messages found"
        st.error(f"{cap.name}: nothing could be analysed: {why}")
        return
    data.set_upload(src)


def show_result() -> None:
    src = st.session_state.get(data.UPLOAD_KEY)
    if src is None:
        return
    snap = src.snapshot()
    a = frames.analysis(snap)
    errors = a.get("errors", [])
    st.success(
        f"{src.label}: {a.get('packets', 0)} packets, {len(a.get('sip_messages', []))} SIP messages, "
        f"{len(a.get('calls', []))} calls, {len(a.get('rtp_streams', []))} RTP streams, "
        f"{len(snap.get('findings', []))} findings"
    )
    if errors:
        st.warning(f"{len(errors)} items could not be parsed; the rest was analysed"
                   + (" (partial input)" if a.get("partial") else ""))
        st.dataframe(pd.DataFrame(errors), hide_index=True)
    st.subheader("RTP streams")
    streams = frames.streams_frame(snap)
    if streams.empty:
        st.caption("No RTP streams.")
    else:
        st.dataframe(streams.drop(columns=["name"]), hide_index=True)
