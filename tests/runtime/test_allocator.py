"""The service's allocator settings and the one analysis thread they rely on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from collectors import allocator
from collectors.runtime.service import ServeConfig, Service

SITE = Path(__file__).resolve().parents[2] / "examples" / "site-healthy.yaml"


def test_arena_limit_applies_on_glibc_unless_the_user_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    if allocator._libc() is None:
        pytest.skip("not glibc: the allocator settings are no-ops")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert allocator.limit_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's choice wins
    assert allocator.limit_arenas() is False
    allocator.release_free_heap()  # must not raise


def test_capture_analysis_always_runs_on_the_one_analysis_thread(tmp_path: Path) -> None:
    trace = tmp_path / "trace.log"
    trace.write_text("")
    cfg = ServeConfig(site_path=SITE, trace_log=trace, db_path=tmp_path / "h.db", probes=(),
                      analysis_interval_s=0.05, tick_s=0.02)
    service = Service(cfg)
    threads: list[str] = []
    real = service._collect_capture

    def spy() -> None:
        threads.append(threading.current_thread().name)
        real()

    service._collect_capture = spy  # type: ignore[method-assign]
    service.start()
    try:
        deadline = time.monotonic() + 10
        while len(threads) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop()
    assert len(threads) >= 5
    assert len(set(threads)) == 1 and threads[0].startswith("analysis"), threads
