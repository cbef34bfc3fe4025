"""History of one site in SQLite: ITSP state changes, findings opened/closed, calls, streams, probes.

Theory of operation: the service writes *events* (not snapshots) — a row when something changes or
completes — so the database grows with what happened, not with uptime. Every table has a ``ts``
column (UNIX seconds); ``prune(retention_s)`` deletes rows older than the retention, which the
service calls on a schedule. Writes use one connection per writing thread (the service's few
collector threads); reads — which come from HTTP threads, one per request — share a small pool
of connections (``MAX_READERS``), so a thousand /api/history requests do not leave a thousand
open files behind. WAL mode so readers never block the writer.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collectors.runtime.totals import digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS itsp_state (
    ts REAL NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS findings (
    ts REAL NOT NULL, event TEXT NOT NULL CHECK (event IN ('opened', 'closed')),
    finding_id TEXT NOT NULL, subject TEXT NOT NULL, severity TEXT NOT NULL, title TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    ts REAL NOT NULL, call_id_hash TEXT NOT NULL, caller TEXT, callee TEXT, final_code INTEGER,
    answered INTEGER NOT NULL, setup_ms REAL, duration_s REAL, one_way_audio INTEGER NOT NULL,
    UNIQUE (call_id_hash, ts)
);
CREATE TABLE IF NOT EXISTS streams (
    ts REAL NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, ssrc INTEGER NOT NULL, packets INTEGER,
    lost INTEGER, mean_jitter_ms REAL, mos REAL, UNIQUE (src, dst, ssrc, ts)
);
CREATE TABLE IF NOT EXISTS probes (
    ts REAL NOT NULL, probe TEXT NOT NULL, target TEXT NOT NULL, success INTEGER NOT NULL,
    reason TEXT NOT NULL, duration_s REAL NOT NULL, details TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registrations (
    key TEXT PRIMARY KEY, ts REAL NOT NULL, record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_ts ON findings (ts);
CREATE INDEX IF NOT EXISTS probes_ts ON probes (ts);
CREATE INDEX IF NOT EXISTS calls_ts ON calls (ts);
CREATE INDEX IF NOT EXISTS streams_ts ON streams (ts);
"""

TABLES = ("itsp_state", "findings", "calls", "streams", "probes")
MAX_READERS = 4
MAX_PENDING = 100_000  # rows kept in memory while writes fail (~30 MB); the oldest go first
_SQLITE_FULL = 13
READ_WAIT_S = 10.0


def _problem(exc: sqlite3.Error) -> str:
    """Why a write failed, in the words of a collector reason."""
    if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL or "full" in str(exc).lower():
        return "disk full"
    return f"database error ({getattr(exc, 'sqlite_errorname', None) or type(exc).__name__})"
#: Call states the history can tell apart (it keeps the final code and whether it was answered).
CALL_STATUSES = ("answered", "failed", "cancelled", "one-way")
_STATUS_SQL = {
    "answered": "answered = 1",
    "failed": "answered = 0 AND final_code >= 400 AND final_code != 487",  # 487: the caller cancelled
    "cancelled": "answered = 0 AND final_code = 487",
    "one-way": "one_way_audio = 1",
}
MAX_PAGE = 500
MAX_OFFSET = 1_000_000
MAX_TEXT_CHARS = 256


class History:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._readers: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._reader_count = 0
        self._reader_lock = threading.Lock()
        self._writers: list[sqlite3.Connection] = []  # every thread's, closed by close()
        self._pending: deque[tuple[str, tuple[Any, ...]]] = deque(maxlen=MAX_PENDING)
        self._pending_lock = threading.Lock()
        self.error = ""  # why writes fail now ("disk full"), "" while they succeed
        with self._conn() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            db.row_factory = sqlite3.Row
            self._local.db = db
            with self._reader_lock:
                self._writers.append(db)
        with db:  # commits on success, rolls back on error
            yield db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection for one read (any thread); at most ``MAX_READERS`` exist."""
        try:
            db = self._readers.get_nowait()
        except queue.Empty:
            with self._reader_lock:
                grow = self._reader_count < MAX_READERS
                if grow:
                    self._reader_count += 1
            if grow:
                db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
                db.row_factory = sqlite3.Row
            else:
                try:
                    db = self._readers.get(timeout=READ_WAIT_S)
                except queue.Empty:
                    raise sqlite3.OperationalError("history busy: no free reader") from None
        try:
            with db:
                yield db
        finally:
            self._readers.put(db)

    def close(self) -> None:
        with self._reader_lock:
            writers, self._writers = self._writers, []
        for db in writers:
            db.close()
        self._local.db = None
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break

    # --- writes ---------------------------------------------------------------------------
    # A write that fails (a full disk, a read-only or damaged file) is kept in memory, in order,
    # and written with the next write that succeeds: the service goes on measuring, the history
    # of the outage is filled in once there is room again, and ``error`` says what is wrong.

    def _write(self, sql: str, params: tuple[Any, ...]) -> bool:
        with self._pending_lock:
            self._pending.append((sql, params))
            return self._flush_locked()

    def flush(self) -> bool:
        """Write what is pending (after a failure); True when nothing is left."""
        with self._pending_lock:
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        if not self._pending:
            return True
        try:
            with self._conn() as db:
                for sql, params in self._pending:
                    db.execute(sql, params)
        except sqlite3.IntegrityError:
            # a row the schema refuses can never be written: drop it, keep the others
            self._pending = deque((r for r in self._pending if self._writes_alone(r)), maxlen=MAX_PENDING)
            return self._flush_locked()
        except sqlite3.Error as exc:
            self.error = _problem(exc)
            return False
        self._pending.clear()
        self.error = ""
        return True

    def _writes_alone(self, row: tuple[str, tuple[Any, ...]]) -> bool:
        """True when ``row`` is still to be written (it failed for a reason other than its data)."""
        try:
            with self._conn() as db:
                db.execute(*row)
        except sqlite3.IntegrityError:
            return False
        except sqlite3.Error:
            return True
        return False  # written now

    @property
    def pending(self) -> int:
        return len(self._pending)

    def itsp_changed(self, ts: float, state: str, reason: str) -> None:
        self._write("INSERT INTO itsp_state VALUES (?, ?, ?)", (ts, state, reason))

    def finding_event(self, ts: float, event: str, finding_id: str, subject: str, severity: str, title: str) -> None:
        self._write("INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?)", (ts, event, finding_id, subject, severity, title))

    def call_completed(self, ts: float, row: dict[str, Any]) -> None:
        self._write(
            "INSERT OR IGNORE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ts, row["call_id_hash"], row.get("caller"), row.get("callee"), row.get("final_code"),
                int(bool(row.get("answered"))), row.get("setup_ms"), row.get("duration_s"),
                int(bool(row.get("one_way_audio"))),
            ),
        )

    def stream_completed(self, ts: float, row: dict[str, Any]) -> None:
        self._write(
            "INSERT OR IGNORE INTO streams VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ts, row["src"], row["dst"], row["ssrc"], row.get("packets"), row.get("lost"),
             row.get("mean_jitter_ms"), row.get("mos")),
        )

    def probe_result(self, ts: float, probe: str, target: str, success: bool, reason: str,
                     duration_s: float, details: dict[str, Any]) -> None:
        self._write(
            "INSERT INTO probes VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ts, probe, target, int(success), reason, duration_s, json.dumps(details, default=str)),
        )

    def save_registrations(self, ts: float, records: list[dict[str, Any]]) -> None:
        """The registration ledger (``core.registrations``) as it stands: one row per registration,
        replaced as a whole so a restart resumes the state (not an event log: it stays small)."""
        try:
            with self._conn() as db:
                db.execute("DELETE FROM registrations")
                db.executemany("INSERT INTO registrations VALUES (?, ?, ?)",
                               [("|".join((str(r.get("aor")), str(r.get("registrar")), str(r.get("client")))), ts,
                                 json.dumps(r, default=str)) for r in records])
        except sqlite3.Error as exc:
            # the whole ledger is written again next time: nothing to keep pending, only to report
            self.error = _problem(exc)
            return
        if not self._pending:
            self.error = ""

    def registrations(self) -> list[dict[str, Any]]:
        with self._conn() as db:
            out: list[dict[str, Any]] = []
            for row in db.execute("SELECT record FROM registrations").fetchall():
                try:
                    record = json.loads(row["record"])
                except ValueError:
                    continue
                if isinstance(record, dict):
                    out.append(record)
            return out

    def prune(self, older_than_ts: float) -> int:
        removed = 0
        try:
            with self._conn() as db:
                for table in TABLES:
                    removed += db.execute(f"DELETE FROM {table} WHERE ts < ?", (older_than_ts,)).rowcount
        except sqlite3.Error:
            return 0  # retried at the next prune; the failure shows in ``error`` through the writes
        return removed

    # --- reads ----------------------------------------------------------------------------
    def rows(self, table: str, since: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        if table not in TABLES:
            raise ValueError(f"history table {table!r} unknown")
        with self._read() as db:
            cur = db.execute(f"SELECT * FROM {table} WHERE ts >= ? ORDER BY ts DESC LIMIT ?", (since, limit))
            return [dict(r) for r in cur.fetchall()]

    def last_itsp_state(self) -> tuple[float, str] | None:
        with self._read() as db:
            row = db.execute("SELECT ts, state FROM itsp_state ORDER BY ts DESC LIMIT 1").fetchone()
            return (row["ts"], row["state"]) if row else None

    def open_findings(self) -> dict[tuple[str, str], float]:
        """(id, subject) → opened ts, for findings whose last event is 'opened' (restart recovery)."""
        with self._read() as db:
            cur = db.execute(
                "SELECT finding_id, subject, event, ts FROM findings ORDER BY ts ASC, rowid ASC"
            )
            state: dict[tuple[str, str], float] = {}
            for r in cur.fetchall():
                key = (r["finding_id"], r["subject"])
                if r["event"] == "opened":
                    state[key] = r["ts"]
                else:
                    state.pop(key, None)
            return state

    def rows_between(self, table: str, start: float, end: float, limit: int = 1000) -> list[dict[str, Any]]:
        """Rows with ``start <= ts < end``, newest first, at most ``limit``."""
        if table not in TABLES:
            raise ValueError(f"history table {table!r} unknown")
        with self._conn() as db:
            cur = db.execute(f"SELECT * FROM {table} WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?",
                             (start, end, max(1, min(limit, 5000))))
            return [dict(r) for r in cur.fetchall()]

    def calls_page(self, start: float, end: float, *, text: str = "", call_id_hash: str = "",
                   statuses: tuple[str, ...] = (), offset: int = 0,
                   limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
        """(how many completed calls match, one page of them newest first): calls that started in
        ``[start, end)``, whose caller or callee contains ``text`` or whose Call-ID is ``text`` (by its
        digest), whose Call-ID has the digest ``call_id_hash``, in any of ``statuses``
        (``CALL_STATUSES``)."""
        where, params = ["ts >= ?", "ts < ?"], list[object]([start, end])
        if text:
            pattern = "%" + text[:MAX_TEXT_CHARS].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(caller LIKE ? ESCAPE '\\' OR callee LIKE ? ESCAPE '\\' OR call_id_hash = ?)")
            params += [pattern, pattern, digest(text)]
        if call_id_hash:
            where.append("call_id_hash = ?")
            params.append(call_id_hash)
        unknown = [s for s in statuses if s not in _STATUS_SQL]
        if unknown:
            raise ValueError(f"call status {unknown[0][:20]!r} unknown ({', '.join(CALL_STATUSES)})")
        if statuses:
            where.append("(" + " OR ".join(_STATUS_SQL[s] for s in statuses) + ")")
        clause = " AND ".join(where)
        with self._conn() as db:
            total = int(db.execute(f"SELECT COUNT(*) FROM calls WHERE {clause}", params).fetchone()[0])
            cur = db.execute(f"SELECT * FROM calls WHERE {clause} ORDER BY ts DESC LIMIT ? OFFSET ?",
                             [*params, max(1, min(limit, MAX_PAGE)), max(0, min(offset, MAX_OFFSET))])
            return total, [dict(r) for r in cur.fetchall()]
