"""Property tests of the exposition: any Snapshot content gives a valid, duplicate-free exposition."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from metric_snapshots import busy_snapshot, call, sip, stream
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.producer import Inputs, build_snapshot
from core.findings import CATALOGUE, Evidence, make
from core.probes import ProbeResult
from core.snapshot import CollectorStatus, ItspState, ItspStatus, OpenFinding
from dashboard.metrics import make_registry

BASE = busy_snapshot()

sip_messages = st.lists(
    st.builds(lambda m, s, c: sip(1, None, s, m, c), st.sampled_from(["INVITE", "OPTIONS", "X-FOO", "bye", ""]),
              st.integers(0, 1000), st.text(max_size=10)),
    max_size=20,
)
calls = st.lists(st.builds(call, st.integers(0, 99), st.sampled_from(["answered", "failed", "weird", "ringing"]),
                           st.none() | st.floats(0, 1e6), st.booleans()), max_size=10)
streams = st.lists(st.builds(stream, st.integers(0, 99), st.integers(-5, 1000),
                             st.floats(0, 1e4, allow_nan=False), st.none() | st.floats(1, 4.5)), max_size=10)
probes = st.lists(st.builds(
    lambda p, t, ok, ph: ProbeResult(p, t, 0.0, ok, "", 0.1, ph),
    st.sampled_from(["stun", "sip_options_tls", "x"]), st.text(max_size=30), st.booleans(),
    st.dictionaries(st.sampled_from(["resolve", "connect", "tls", "request", "other"]), st.floats(0, 10))),
    max_size=6)
collectors = st.lists(st.builds(lambda n, up: CollectorStatus(n, up, "", None), st.text(max_size=20), st.booleans()),
                      max_size=5)
findings = st.lists(st.sampled_from(sorted(CATALOGUE)), max_size=6)


@settings(max_examples=60, deadline=None)
@given(sip_messages, calls, streams, probes, collectors, findings, st.sampled_from(list(ItspState)),
       st.text(min_size=1, max_size=40))
def test_any_snapshot_exposes_valid_unique_series(msgs, cs, ss, ps, cols, fids, state, system) -> None:  # type: ignore[no-untyped-def]
    assert BASE.analysis is not None
    analysis = dataclasses.replace(BASE.analysis, sip_messages=tuple(msgs), calls=tuple(cs), rtp_streams=tuple(ss))
    built = build_snapshot(Inputs(site=BASE.site, analysis=analysis, probes=tuple(ps), collectors=tuple(cols)),
                           BASE.now)
    snap = dataclasses.replace(
        built, system=system, itsp=ItspStatus(state, None, ""),
        findings=tuple(OpenFinding(make(f, [Evidence("e")]), None) for f in fids),
    )
    text = generate_latest(make_registry(lambda: snap)).decode()
    seen = set()
    for family in text_string_to_metric_families(text):
        assert family.documentation
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in seen, key
            seen.add(key)
            assert "system" in s.labels
    assert "upscope_exposition_errors{" not in text
