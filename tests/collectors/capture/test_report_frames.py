"""Report shapes of one result: streamed JSON == dict JSON, HTML escapes, DataFrames have every table."""

from __future__ import annotations

import dataclasses
import json

import pytest
from capture_craft import PCAPS
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.analyze import analyze
from collectors.frames import to_dataframes
from collectors.report import _clean, _dumps, iter_json, to_html, to_json_dict
from core.analysis import AnalysisResult, ErrorItem, RtpStreamStats


@pytest.fixture(scope="module")
def result() -> AnalysisResult:
    path = PCAPS / "sipnab_SIP_CALL_RTP_G711.pcap"
    if not path.exists():
        pytest.skip(f"shared capture not found in {PCAPS}")
    return analyze([path])[0]


def test_streamed_json_equals_the_dict(result: AnalysisResult) -> None:
    findings = [{"id": "x", "severity": "info", "title": "t", "evidence": []}]
    text = "".join(iter_json(result, findings))
    assert json.loads(text) == to_json_dict(result, findings)
    assert text.count("\n") > len(result.rtp_streams)  # one item per line


def test_non_finite_floats_become_null(result: AnalysisResult) -> None:
    odd = dataclasses.replace(result, kpis={"ASR": float("nan"), "SER": float("inf")})
    assert json.loads("".join(iter_json(odd)))["kpis"] == {"ASR": None, "SER": None}


def test_html_escapes_hostile_text(result: AnalysisResult) -> None:
    evil = dataclasses.replace(result, errors=(ErrorItem("malformed", "sip", "<script>alert(1)</script>", 1),))
    page = to_html(to_json_dict(evil))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_dataframes_have_every_table_and_the_counts(result: AnalysisResult) -> None:
    frames = to_dataframes(result)
    assert {"calls", "registrations", "keepalives", "rtp_streams", "rtcp", "tls_flows", "stun", "flows", "errors",
            "sip_messages", "stream_intervals", "sip_requests", "sip_responses"} <= set(frames)
    assert len(frames["rtp_streams"]) == len(result.rtp_streams)
    assert list(frames["rtp_streams"].columns) == [f.name for f in dataclasses.fields(RtpStreamStats)]
    assert frames["sip_requests"].set_index("method")["count"].to_dict() == result.sip_requests
    assert len(frames["stream_intervals"]) == sum(len(s.intervals) for s in result.rtp_streams)
    empty = to_dataframes(dataclasses.replace(result, calls=(), tls_flows=()))
    assert empty["calls"].empty and "call_id" in empty["calls"].columns


def test_fast_conversion_equals_to_jsonable(result: AnalysisResult) -> None:
    from core.analysis import to_jsonable

    doc = json.loads("".join(iter_json(result)))
    plain = to_jsonable(result)
    assert len(doc["rtp_streams"]) == len(plain["rtp_streams"])
    for ours, ref in zip(doc["rtp_streams"] + doc["calls"], plain["rtp_streams"] + plain["calls"], strict=True):
        assert ours.keys() == ref.keys()
        for k, v in ref.items():
            assert ours[k] == (round(v, 6) if isinstance(v, float) else ours[k] if isinstance(v, list) else v)


@dataclasses.dataclass(frozen=True)
class _Row:
    a: object
    b: object


@dataclasses.dataclass(frozen=True)
class _Empty:
    pass


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
                   | st.dictionaries(st.text(max_size=5) | st.integers(-3, 3), inner, max_size=3)
                   | st.builds(_Row, inner, inner) | st.just(_Empty())),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_direct_json_text_equals_dumps_of_the_cleaned_value(value: object) -> None:
    """``_dumps`` writes exactly what ``json.dumps(_clean(v), ensure_ascii=False)`` would: rounded
    floats, NaN/inf as null, tuples as lists, non-str dict keys, escapes and non-ASCII text."""
    assert _dumps(value) == json.dumps(_clean(value), ensure_ascii=False)


def test_direct_json_text_of_a_real_result(result: AnalysisResult) -> None:
    for item in (*result.rtp_streams, *result.calls, *result.sip_messages, *result.flows, *result.registrations):
        assert _dumps(item) == json.dumps(_clean(item), ensure_ascii=False)
