"""The registration ledger: every REGISTER transaction the service has seen, kept past its window.

Theory of operation. The live service analyses only a sliding horizon of its evidence (the last
minutes of capture and trace log), but a registration is a *state* with a lifetime: a 2xx grants a
binding until its expiry (RFC 3261 §10.2.4), typically minutes to an hour, and the client
refreshes it at about half that time. Judged from the horizon alone, the binding disappears as
soon as its REGISTER scrolls out, long before it expires. The ledger folds each cycle's
``RegistrationInfo`` records into one record per (AOR, registrar, client) whose timeline is the
union of every cycle's events (its counters are the latest cycle's), so ``core.diagnosis.itsp.evaluate_registration`` sees the binding
until it really expires, fails or is removed.

Events are identified by (timestamp, state, code): the same message reappears in consecutive
cycles with other frame numbers (each cycle numbers its own frames). Timelines are bounded
(``MAX_EVENTS`` per record, ``MAX_RECORDS`` records); a record trimmed of its oldest events keeps
its last success and granted expiry, which is all the evaluation needs from before its timeline.
``to_rows``/``from_rows`` give the ledger a plain form the service stores across restarts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from core.analysis import RegistrationInfo, RegistrationState

MAX_EVENTS = 256  # per registration: an hour of 30-s refreshes with challenges, and then some
MAX_RECORDS = 64  # registrations of one site (a trunk, a clone, a test account …)

Key = tuple[str, str, str]  # (aor, registrar, client)


def _key(reg: RegistrationInfo) -> Key:
    return (reg.aor, reg.registrar, reg.client)


def _event_id(e: RegistrationState) -> tuple[float, str, int | None]:
    return (round(e.ts, 6), e.state, e.code)


def _latest(reg: RegistrationInfo) -> float:
    stamps = [e.ts for e in reg.timeline]
    stamps += [t for t in (reg.last_success_ts,) if t is not None]
    return max(stamps, default=0.0)


def _merge(old: RegistrationInfo, new: RegistrationInfo) -> RegistrationInfo:
    """``old`` with the events of ``new`` added; summary fields from whichever saw more recently."""
    events = {_event_id(e): e for e in old.timeline}
    for e in new.timeline:
        events.setdefault(_event_id(e), e)
    recent = new if _latest(new) >= _latest(old) else old
    granted = recent.granted_expiry_s or old.granted_expiry_s or new.granted_expiry_s
    timeline = _without_refuted_expiries(sorted(events.values(), key=lambda e: (e.ts, e.frame)), granted)
    kept = tuple(timeline[-MAX_EVENTS:])
    successes = [t for t in (old.last_success_ts, new.last_success_ts) if t is not None]
    last_success = max(successes) if successes else None
    expiry = (last_success + granted) if last_success is not None and granted else recent.expiry_ts
    return dataclasses.replace(
        recent,
        granted_expiry_s=granted,
        last_success_ts=last_success,
        expiry_ts=expiry,
        registered=bool(expiry is not None and (recent.registered or expiry > _latest(recent))),
        timeline=kept,
        frames=(),  # frame numbers belong to one cycle's analysis; the timeline carries its own
        bindings=new.bindings or old.bindings,
    )


def _without_refuted_expiries(timeline: list[RegistrationState], granted: int | None) -> list[RegistrationState]:
    """Drop an analyser-made "expired" event (frame 0) at X when a 2xx lies in (X − granted, X):
    the binding was refreshed before X, so one cycle only judged without seeing that refresh
    (e.g. one source's lines arrived later than another's)."""
    if not granted:
        return timeline
    successes = [e.ts for e in timeline if e.state == "registered"]
    return [e for e in timeline
            if not (e.state == "expired" and e.frame == 0
                    and any(e.ts - granted < t < e.ts for t in successes))]


class RegistrationLedger:
    """Registrations accumulated over the service's analysis cycles (not thread-safe: the
    service merges from its one reducing thread)."""

    def __init__(self) -> None:
        self._records: dict[Key, RegistrationInfo] = {}

    def merge(self, registrations: Iterable[RegistrationInfo]) -> None:
        for reg in registrations:
            key = _key(reg)
            old = self._records.get(key)
            # Merging a first record with an empty one applies the same bounds and clean-up.
            self._records[key] = _merge(old or dataclasses.replace(reg, timeline=()), reg)
        if len(self._records) > MAX_RECORDS:
            for key in sorted(self._records, key=lambda k: _latest(self._records[k]))[: len(self._records) - MAX_RECORDS]:
                del self._records[key]

    def registrations(self) -> tuple[RegistrationInfo, ...]:
        return tuple(self._records[k] for k in sorted(self._records))

    def __len__(self) -> int:
        return len(self._records)

    # --- persistence: plain rows the service keeps in its history database ---------------------
    def to_rows(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.registrations()]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> RegistrationLedger:
        """Rebuild from ``to_rows`` output; rows that do not fit the shape are skipped (a database
        written by another version must not stop the service)."""
        ledger = cls()
        for row in rows:
            try:
                timeline = tuple(RegistrationState(float(e["ts"]), int(e["frame"]), str(e["state"]),
                                                   None if e["code"] is None else int(e["code"]))
                                 for e in row.get("timeline") or ())
                fields = {f.name for f in dataclasses.fields(RegistrationInfo)}
                values = {k: v for k, v in row.items() if k in fields}
                values.update(timeline=timeline, frames=(), bindings=tuple(row.get("bindings") or ()),
                              final_codes=dict(row.get("final_codes") or {}))
                reg = RegistrationInfo(**values)
            except (KeyError, TypeError, ValueError):
                continue
            ledger.merge([reg])
        return ledger
