"""The ITSP status over real time, with the settings a user runs.

Two labs run side by side with the registrar granting 120 s (the OSBiz side refreshes at half
that), longer than the service's default 60-s window, and an ``upscope serve`` with every default
(window, hold, grace, intervals) watches each. For two full refresh periods and more:

* the healthy trunk reads Registered in every sample of ``/metrics``, ``/api/snapshot`` and the
  Overview page, and no finding ever opens (before the fix, the status fell to "Unknown" for most
  of each refresh period as soon as the REGISTER left the window, and the critical
  ``UpscopeTrunkNotRegistered`` alert fired on a healthy trunk);
* the other lab is stopped (SIGSTOP) for 45 s and resumed: the status changes at most once each
  way, and no firewall finding opens while the connector's probes succeed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import service_source
from tests.live import Lab, Serve, metric_values, wait_for

# one worker runs the module: its tests share one expensive module fixture
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("live_registration")]

GRANTED_S = 120
WATCH_S = 2 * GRANTED_S + 30  # two refresh periods of the binding itself, and then some
STALL_AT_S, STALL_S = 60.0, 45.0
SAMPLE_S = 2.0


def _labels(value: float | None) -> str:
    return "registered" if value == 1.0 else f"itsp_registered={value}"


@pytest.fixture(scope="module")
def capture_tool() -> None:
    if shutil.which("dumpcap") is None:
        pytest.skip("dumpcap (Debian package tshark) is not installed: the lab cannot capture")


def _connector_probes_ok(snap: dict[str, Any]) -> bool:
    probes = [p for p in snap.get("probes", []) if p.get("probe") in ("sip_options_tls", "tcp_connect")]
    return bool(probes) and all(p.get("success") for p in probes)


def test_itsp_status_holds_over_refresh_periods_and_a_stall(
        tmp_path: Path, capture_tool: None, render: Callable[..., AppTest]) -> None:
    lab_args = ("--duration", str(WATCH_S + 90), "--register-expires", str(GRANTED_S))
    with Lab(tmp_path / "healthy", "healthy", *lab_args, "--rtp-base", "41000") as healthy, \
            Lab(tmp_path / "stalled", "healthy", *lab_args, "--rtp-base", "42000") as stalled, \
            Serve(healthy.out, tmp_path / "healthy.db") as watch, \
            Serve(stalled.out, tmp_path / "stalled.db") as watch_stalled:
        wait_for(lambda: watch.snapshot()["itsp_status"]["state"] == "registered", 60, "the first registration")
        wait_for(lambda: watch_stalled.snapshot()["itsp_status"]["state"] == "registered", 60,
                 "the other lab's first registration")
        start = time.monotonic()
        samples: list[tuple[float, str, str, tuple[str, ...]]] = []
        stalled_samples: list[tuple[float, str, tuple[str, ...], bool]] = []
        successes: set[float] = set()
        pages: list[str] = []
        stopped = resumed = False
        next_page = 0.0
        while (t := time.monotonic() - start) < WATCH_S:
            if not stopped and t >= STALL_AT_S:
                os.kill(stalled.proc.pid, signal.SIGSTOP)
                stopped = True
            if stopped and not resumed and t >= STALL_AT_S + STALL_S:
                os.kill(stalled.proc.pid, signal.SIGCONT)
                resumed = True
            snap = watch.snapshot()
            registered = metric_values(watch.metrics(), "upscope_itsp_registered")
            itsp = snap["itsp_status"]
            samples.append((t, itsp["state"], _labels(next(iter(registered.values()), None)),
                            tuple(f["id"] for f in snap["findings"])))
            if itsp.get("last_success_ts"):
                successes.add(itsp["last_success_ts"])
            other = watch_stalled.snapshot()
            stalled_samples.append((t, other["itsp_status"]["state"], tuple(f["id"] for f in other["findings"]),
                                    _connector_probes_ok(other)))
            if t >= next_page:
                at = render("overview", source=service_source.ServiceSource(watch.base))
                pages.append(next(m.value for m in at.metric if "ITSP" in m.label))
                next_page = t + 30.0
            time.sleep(SAMPLE_S)
        itsp_rows = watch.history("itsp_state")
        finding_rows = watch.history("findings")

    # Healthy: Registered in every sample of every face, no finding, one history row.
    assert len(samples) > WATCH_S / (SAMPLE_S + 2)
    wrong = [(round(t), state, metric, ids) for t, state, metric, ids in samples
             if state != "registered" or metric != "registered" or ids]
    assert not wrong, wrong[:10]
    assert pages and set(pages) == {"Registered"}, pages
    # History: at most the start-up "unknown" (no evidence read yet), then Registered for good.
    states = [r["state"] for r in sorted(itsp_rows, key=lambda r: r["ts"])]
    assert states in (["registered"], ["unknown", "registered"]), itsp_rows
    assert finding_rows == []
    # The binding really was refreshed under the test's eyes (more than one refresh period).
    assert len(successes) >= 3, sorted(successes)

    # Stalled for 45 s: at most one change each way, no firewall finding while the probes succeed.
    states = [state for _t, state, _ids, _ok in stalled_samples]
    changes = [(a, b) for a, b in itertools.pairwise(states) if a != b]
    assert len(changes) <= 2 and len(set(changes)) == len(changes), changes
    assert states[-1] == "registered", stalled_samples[-5:]
    firewall_while_ok = [(round(t), ids) for t, _s, ids, ok in stalled_samples
                         if ok and "itsp.not-registered.firewall" in ids]
    assert not firewall_while_ok, firewall_while_ok
