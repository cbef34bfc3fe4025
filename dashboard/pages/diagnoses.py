"""Diagnoses: each finding with evidence, remedy, trace profiles, history and links."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, sources
from dashboard.pages import link
from dashboard.timefmt import fmt_ts

SEVERITY_ICON = {"critical": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}


def render() -> None:
    st.title("Diagnoses")
    src, snap = data.page_snapshot()
    rng = data.page_range(src, snap)
    findings = snap.get("findings", [])
    if not findings:
        st.success("No active findings.")
    for n, f in enumerate(findings):
        head = f"{f['severity'].upper()} {f['id']} — {f['title']}"
        if f.get("subject"):
            head += f" ({f['subject']})"
        with st.expander(head, expanded=f["severity"] == "critical", icon=SEVERITY_ICON.get(f["severity"])):
            if f.get("symptom"):
                st.markdown(f"**Symptom:** {f['symptom']}")
            st.markdown("**Evidence**")
            for e in f.get("evidence", []):
                bits = [e["text"]]
                if e.get("packets"):
                    bits.append("frames " + ", ".join(str(p) for p in e["packets"][:20]))
                if e.get("timestamp") is not None:
                    bits.append(fmt_ts(e["timestamp"]))
                if e.get("config_path"):
                    bits.append(f"`{e['config_path']}`")
                if e.get("source"):
                    bits.append(e["source"])
                st.markdown("- " + " · ".join(bits))
                if e.get("call_id"):
                    link("calls", f"Open call {e['call_id']}", call=e["call_id"])
                    if f["id"].startswith("media."):
                        link("media", f"Streams of call {e['call_id']}", call=e["call_id"])
            st.markdown(f"**Remedy:** {f['remedy']}")
            profiles = ", ".join(f.get("trace_profiles", [])) or "—"
            comps = ", ".join(f.get("trace_components", []))
            st.markdown(f"**Trace profiles to switch on:** {profiles}" + (f"; components: {comps}" if comps else ""))
            link("traces", "Trace checklist and support bundle →")
            st.caption(f"finding {n + 1} of {len(findings)}")
    st.subheader("History")
    st.caption(f"Findings open at any time in the range — {rng.describe()}")
    try:
        hist = src.history(rng.start, rng.end)
    except sources.SourceError as exc:
        st.warning(f"history unavailable: {exc}")
        hist = []
    if hist:
        df = pd.DataFrame([{
            "finding": h.get("id") or h.get("finding_id"), "subject": h.get("subject") or "",
            "severity": h.get("severity"), "opened": fmt_ts(h.get("opened")),
            "closed": fmt_ts(h.get("closed")) if h.get("closed") else "open",
        } for h in hist])
        st.dataframe(df, hide_index=True)
    else:
        st.caption("No finding history yet.")
