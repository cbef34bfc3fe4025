from __future__ import annotations

from pathlib import Path

from collectors.runtime.history import History


def test_events_survive_a_restart_and_prune_by_age(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    h = History(db)
    h.itsp_changed(100.0, "registered", "")
    h.itsp_changed(200.0, "not-registered", "TCP SYN unanswered")
    h.finding_event(200.0, "opened", "itsp.not-registered.firewall", "", "critical", "t")
    h.finding_event(210.0, "opened", "media.one-way-audio", "call-1", "critical", "t")
    h.finding_event(220.0, "closed", "media.one-way-audio", "call-1", "", "")
    h.probe_result(205.0, "stun", "127.0.0.1:3478", False, "timeout", 5.0, {"rtt_ms": None})
    h.close()

    again = History(db)
    assert again.last_itsp_state() == (200.0, "not-registered")
    assert again.open_findings() == {("itsp.not-registered.firewall", ""): 200.0}
    assert [r["event"] for r in again.rows("findings")] == ["closed", "opened", "opened"]
    assert again.prune(older_than_ts=201.0) == 3  # both ITSP rows and the firewall finding
    assert again.last_itsp_state() is None
    assert len(again.rows("probes")) == 1


def test_calls_are_recorded_once(tmp_path: Path) -> None:
    h = History(tmp_path / "h.db")
    row = {"call_id_hash": "abc", "caller": "100", "callee": "200", "final_code": 200, "answered": True,
           "setup_ms": 120.0, "duration_s": 3.0, "one_way_audio": False}
    h.call_completed(10.0, row)
    h.call_completed(10.0, row)
    assert len(h.rows("calls")) == 1


def test_unknown_table_is_refused(tmp_path: Path) -> None:
    h = History(tmp_path / "h.db")
    try:
        h.rows("sqlite_master")
    except ValueError as exc:
        assert "unknown" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_a_row_the_schema_refuses_does_not_block_the_others(tmp_path: Path) -> None:
    h = History(tmp_path / "h.db")
    h.probe_result(1.0, "tcp_connect", "t", True, None, 0.1, {})  # type: ignore[arg-type]  # NOT NULL reason
    h.probe_result(2.0, "tcp_connect", "t", True, "", 0.1, {})
    assert h.error == "" and h.pending == 0 and [r["ts"] for r in h.rows("probes")] == [2.0]
    h.close()
