"""Property tests of the gateway's parsing of service answers and user input."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import frames, service_source, timefmt
from tests.dashboard import snapshots

EVENT = st.fixed_dictionaries({
    "ts": st.floats(min_value=0, max_value=2e9, allow_nan=False),
    "event": st.sampled_from(["opened", "closed", "bogus"]),
    "finding_id": st.sampled_from(["a.x", "b.y"]),
    "subject": st.sampled_from(["", "100", None]),
})


@given(st.lists(EVENT, max_size=40))
def test_history_episodes_are_ordered_and_never_overlap(rows: list[dict]) -> None:  # type: ignore[type-arg]
    episodes = service_source.history_from_events(rows)
    by_key: dict[tuple[str, str], list[dict]] = {}  # type: ignore[type-arg]
    for e in episodes:
        assert e["closed"] is None or e["closed"] >= e["opened"]
        by_key.setdefault((e["id"], e["subject"]), []).append(e)
    for eps in by_key.values():
        # At most one open episode per finding, and it is the last one.
        assert all(e["closed"] is not None for e in eps[:-1])
        for a, b in itertools.pairwise(eps):
            assert b["opened"] >= a["closed"]
    opened = sum(1 for r in rows if r["event"] == "opened")
    assert len(episodes) <= opened


CALLS = frames.calls_frame(snapshots.healthy())


@settings(max_examples=200)
@given(st.text(max_size=30), st.lists(st.sampled_from(["answered", "failed", "ringing", "x"]), max_size=3))
def test_call_filter_accepts_any_text(text: str, states: list[str]) -> None:
    out = frames.filter_calls(CALLS, text, states)
    assert set(out["call_id"]) <= set(CALLS["call_id"])
    if not text.strip() and not states:
        assert len(out) == len(CALLS)


@given(st.one_of(st.none(), st.floats(allow_nan=True), st.integers(), st.text(max_size=12)))
def test_time_formatting_never_raises(value: object) -> None:
    assert isinstance(timefmt.fmt_ts(value), str)


MESSAGE = st.fixed_dictionaries({
    "frame": st.integers(min_value=1, max_value=10**6),
    "ts": st.floats(min_value=0, max_value=4e9, allow_nan=False),
    "src": st.sampled_from(["10.0.0.1", "10.0.0.2", "2001:db8::1"]),
    "src_port": st.sampled_from([5060, 5061, 65061]),
    "dst": st.sampled_from(["10.0.0.1", "10.0.0.3"]),
    "dst_port": st.sampled_from([5060, 65061]),
    "method": st.one_of(st.none(), st.sampled_from(["INVITE", "BYE", "ACK"])),
    "status": st.one_of(st.none(), st.integers(min_value=100, max_value=699)),
    "reason": st.text(max_size=20),
    "summary": st.text(max_size=40),
})


@settings(max_examples=50, deadline=None)
@given(st.lists(MESSAGE, max_size=25))
def test_ladder_draws_one_arrow_per_message(messages: list[dict]) -> None:  # type: ignore[type-arg]
    from dashboard import ladder

    fig = ladder.ladder_figure(messages)
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == len(messages)
    hosts = ladder.hosts(ladder.sorted_messages(messages))
    assert len(set(hosts)) == len(hosts)
    assert len(fig.data[0].hovertext or ()) == len(messages)


@settings(max_examples=50, deadline=None)
@given(st.lists(MESSAGE, min_size=1, max_size=25))
def test_ladder_exports_have_one_arrow_per_message(messages: list[dict]) -> None:  # type: ignore[type-arg]
    """sngrep-style text: a header line of endpoints, then one line per message with its arrow
    pointing from sender to receiver; SVG: well-formed, one arrow line per message."""
    import xml.etree.ElementTree as ET

    from dashboard import ladder

    text = ladder.ladder_text(messages).splitlines()
    assert len(text) == 1 + len(messages)
    ordered = ladder.sorted_messages(messages)
    cols = ladder.hosts(ordered)
    for line, m in zip(text[1:], ordered, strict=True):
        a, b = cols.index(ladder.endpoint(m, "src")), cols.index(ladder.endpoint(m, "dst"))
        if a < b:
            assert ">|" in line
        elif a > b:
            assert "|<" in line
    svg = ET.fromstring(ladder.ladder_svg(messages, "Call <x>"))
    lines = [e for e in svg.iter("{http://www.w3.org/2000/svg}line") if e.get("marker-end")]
    assert len(lines) == len(messages)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["Last 15 minutes", "Last hour", "Last 24 hours", "Last 7 days", "Whole capture"]),
       st.floats(min_value=0, max_value=4e9), st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)))
def test_time_ranges_end_at_the_data_and_never_run_backwards(label: str, end: float, first: float | None) -> None:
    from dashboard import timerange

    rng = timerange.preset_range(label, end, first)
    assert rng.start <= rng.end and rng.contains(end) and rng.label == label
    if label != "Whole capture":
        assert round(rng.end - rng.start - 1e-6) == {"Last 15 minutes": 900, "Last hour": 3600,
                                                     "Last 24 hours": 86400, "Last 7 days": 604800}[label]
    assert rng.moved_to(end + 60).end > rng.end


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=__import__("datetime").datetime(1990, 1, 1),
                    max_value=__import__("datetime").datetime(2100, 1, 1)),
       st.datetimes(min_value=__import__("datetime").datetime(1990, 1, 1),
                    max_value=__import__("datetime").datetime(2100, 1, 1)),
       st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
def test_custom_ranges_are_ordered_in_any_zone(a, b, name: str) -> None:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    from dashboard import timerange

    rng = timerange.custom_range(a.date(), a.time(), b.date(), b.time(), ZoneInfo(name))
    assert rng.start <= rng.end


def test_full_messages_make_a_ladder() -> None:
    """A call only the history remembers: its ladder rows come from the full messages' start lines
    and CSeq."""
    from collectors.call_messages import FullMessage
    from dashboard import ladder

    msgs = [FullMessage(1, 10.0, "10.0.0.1", 5060, "10.0.0.2", 5060, "udp", "c", "x.pcap",
                        "INVITE sip:b@x SIP/2.0\nCSeq: 1 INVITE\nCall-ID: c\n\n"),
            FullMessage(2, 10.5, "10.0.0.2", 5060, "10.0.0.1", 5060, "udp", "c", "x.pcap",
                        "SIP/2.0 486 Busy Here\nCSeq: 1 INVITE\nCall-ID: c\n\n")]
    rows = ladder.messages_from_full(msgs)
    assert [(r["method"], r["status"], r["reason"], r["cseq"], r["cseq_method"]) for r in rows] == \
        [("INVITE", None, "", 1, "INVITE"), (None, 486, "Busy Here", 1, "INVITE")]
    assert [ladder.label(r) for r in rows] == ["INVITE", "486 Busy Here"]
