"""Trace files: the OSBiz SIP trace log (reading, conversion to pcap), capture files (writing,
per-call export) and support bundles (redaction, packing).

The trace-profile table (which OSBiz traces to switch on for a problem) is ``core.trace_profiles``:
every finding carries its trace set, so the findings catalogue in ``core`` reads it, and ``core``
imports nothing above it.
"""
