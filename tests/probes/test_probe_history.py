"""ProbeHistory: a ring per probe that keeps failures a run of successes would push out."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.probes import ProbeHistory
from core.probes import ProbeResult


def result(ts: float, success: bool, probe: str = "stun", target: str = "127.0.0.1:3478") -> ProbeResult:
    return ProbeResult(probe, target, ts, success, "" if success else f"failed at {ts}", 0.01)


def test_failures_survive_a_long_run_of_successes() -> None:
    history = ProbeHistory(limit=5, failures_kept=3)
    for ts in range(4):
        history.add(result(ts, success=False))
    for ts in range(4, 104):
        history.add(result(ts, success=True))
    kept = history.results("stun", "127.0.0.1:3478")
    assert [r.ts for r in kept] == [1, 2, 3, 99, 100, 101, 102, 103]  # 3 failures kept + last 5
    assert [r.ts for r in history.failures("stun", "127.0.0.1:3478")] == [1, 2, 3]
    latest = history.latest("stun", "127.0.0.1:3478")
    assert latest is not None and latest.ts == 103


def test_probes_are_kept_apart_and_latest_all_is_ordered() -> None:
    history = ProbeHistory()
    history.add(result(1, True, "tcp_connect", "b:1"))
    history.add(result(2, False, "sip_options_tls", "a:1"))
    history.add(result(3, True, "sip_options_tls", "a:1"))
    assert history.keys() == [("sip_options_tls", "a:1"), ("tcp_connect", "b:1")]
    assert [r.ts for r in history.latest_all()] == [3, 1]
    assert history.latest("nope", "x:1") is None
    assert history.results("nope", "x:1") == ()


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        ProbeHistory(limit=0)


def test_concurrent_writers_lose_nothing() -> None:
    history = ProbeHistory(limit=10_000, failures_kept=10_000)

    def writer(k: int) -> None:
        for i in range(500):
            history.add(result(k * 1000 + i, success=i % 2 == 0))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(history.results("stun", "127.0.0.1:3478")) == 2000
    assert len(history.failures("stun", "127.0.0.1:3478")) == 1000


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), max_size=60), st.integers(1, 8), st.integers(0, 8))
def test_ring_bounds_and_content(outcomes: list[bool], limit: int, failures_kept: int) -> None:
    history = ProbeHistory(limit=limit, failures_kept=failures_kept)
    for ts, ok in enumerate(outcomes):
        history.add(result(ts, ok))
    kept = history.results("stun", "127.0.0.1:3478")
    recent = list(enumerate(outcomes))[-limit:]
    failed = [ts for ts, ok in enumerate(outcomes) if not ok][-failures_kept:] if failures_kept else []
    assert [r.ts for r in kept] == sorted({ts for ts, _ in recent} | set(failed))
