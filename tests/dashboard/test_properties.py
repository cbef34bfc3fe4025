"""Property tests of the gateway's parsing of service answers and user input."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import frames, sources, timefmt
from tests.dashboard import snapshots

EVENT = st.fixed_dictionaries({
    "ts": st.floats(min_value=0, max_value=2e9, allow_nan=False),
    "event": st.sampled_from(["opened", "closed", "bogus"]),
    "finding_id": st.sampled_from(["a.x", "b.y"]),
    "subject": st.sampled_from(["", "100", None]),
})


@given(st.lists(EVENT, max_size=40))
def test_history_episodes_are_ordered_and_never_overlap(rows: list[dict]) -> None:  # type: ignore[type-arg]
    episodes = sources.history_from_events(rows)
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
