"""REGISTER tracking: per binding (address of record at one registrar) the attempts, challenges,
final codes, granted expiry, registration request delay (RFC 6076 §4.1) and a timeline of states
(trying, challenged, registered, failed, unregistered, expired)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from collectors.sip.transactions import TRANSACTION_TIMEOUT_S, Txn, overdue
from core.analysis import RegistrationInfo, RegistrationState
from core.wire.digits import capped
from core.wire.sip import SipMessage, uri_of

_EXPIRES_PARAM = re.compile(r";\s*expires\s*=\s*(\d+)", re.IGNORECASE | re.ASCII)
# RFC 3261 §20.19: Expires is a 32-bit count of seconds.
MAX_EXPIRES = 2**31 - 1


@dataclass(slots=True)
class Registration:
    """What was seen of one binding (AoR at one registrar) so far."""

    aor: str
    registrar: str
    client: str
    attempts: int = 0
    challenges: int = 0
    final_codes: dict[str, int] = field(default_factory=dict)
    last_code: int | None = None
    granted: int | None = None
    last_success_ts: float | None = None
    rrd_ms: float | None = None
    rrds: list[float] = field(default_factory=list)
    attempt_start: float | None = None  # first REGISTER of the current attempt (before challenges)
    timeline: list[RegistrationState] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    attempts_total: int = 0  # attempts in the RFC 6076 sense (ended by a final non-challenge)
    attempts_failed: int = 0
    contact: str | None = None
    bindings: tuple[str, ...] = ()
    unregistered: bool = False
    expiry_marked: bool = False  # an "expired" state is in the timeline for the last 2xx

    def mark_expiry(self, ts: float) -> None:
        """Put "expired" in the timeline when the binding ran out before an event at ``ts``."""
        if (self.last_success_ts is not None and self.granted and not self.unregistered
                and not self.expiry_marked and ts > self.last_success_ts + self.granted):
            self.timeline.append(RegistrationState(self.last_success_ts + self.granted, 0, "expired", None))
            self.expiry_marked = True


def granted_expiry(msg: SipMessage, our_contact: str | None) -> int | None:
    """Contact ``expires`` of the binding matching our contact, else the Expires header."""
    contacts = msg.get_all("contact")
    for c in contacts:
        m = _EXPIRES_PARAM.search(c.split(">", 1)[-1] if ">" in c else c)
        if m and (our_contact is None or uri_of(c) == our_contact or len(contacts) == 1):
            return capped(m.group(1), MAX_EXPIRES)
    return capped((msg.get("expires") or "").strip(), MAX_EXPIRES)


class RegistrationTracker:
    """The bindings seen so far, keyed by (AoR, registrar), and which binding each Call-ID is for."""

    def __init__(self) -> None:
        self.regs: dict[tuple[str, str], Registration] = {}
        self.of_call: dict[str, tuple[str, str]] = {}

    def on_message(self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int,
                   msg: SipMessage, call_id: str, retrans: bool, txn: Txn | None) -> None:
        """One REGISTER, or one response in a REGISTER transaction."""
        if msg.method == "REGISTER":
            aor = uri_of(msg.get("to") or "").split(";")[0]
            rkey = (aor, f"{dst}:{dport}")
            reg = self.regs.get(rkey)
            if reg is None:
                reg = self.regs[rkey] = Registration(aor, f"{dst}:{dport}", f"{src}:{sport}")
            self.of_call[call_id] = rkey
            reg.frames.append(frame)
            if retrans:
                return
            reg.attempts += 1
            contacts = msg.get_all("contact")
            reg.contact = uri_of(contacts[0]) if contacts else None
            if reg.attempt_start is None:
                reg.mark_expiry(ts)
                reg.attempt_start = ts
                reg.timeline.append(RegistrationState(ts, frame, "trying", None))
            return
        rkey2 = self.of_call.get(call_id)
        if rkey2 is None or msg.status is None:
            return
        reg = self.regs[rkey2]
        reg.frames.append(frame)
        code = msg.status
        if retrans or code < 200:
            return
        reg.mark_expiry(ts)
        reg.final_codes[str(code)] = reg.final_codes.get(str(code), 0) + 1
        reg.last_code = code
        if code in (401, 407):
            reg.challenges += 1
            # A 401/407 to a request that carried credentials refuses them, unless the
            # challenge says stale=true (RFC 7616 §3.3: only the nonce expired; retry is normal).
            challenge = msg.get("www-authenticate") or msg.get("proxy-authenticate") or ""
            stale = re.search(r"stale\s*=\s*\"?true", challenge, re.IGNORECASE) is not None
            repeated = txn is not None and txn.had_credentials and not stale
            state = "failed" if repeated else "challenged"
            reg.timeline.append(RegistrationState(ts, frame, state, code))
            if repeated:  # credentials were refused: the attempt ends as an auth failure
                reg.attempts_total += 1
                reg.attempts_failed += 1
                reg.attempt_start = None
            return
        reg.attempts_total += 1
        if 200 <= code < 300:
            granted = granted_expiry(msg, reg.contact)
            start = reg.attempt_start if reg.attempt_start is not None else (txn.ts if txn else ts)
            reg.rrd_ms = (ts - start) * 1000.0
            reg.rrds.append(reg.rrd_ms)
            if granted == 0:
                reg.unregistered = True
                reg.timeline.append(RegistrationState(ts, frame, "unregistered", code))
            else:
                reg.unregistered = False
                reg.granted = granted
                reg.bindings = tuple(u for u in (uri_of(c) for c in msg.get_all("contact")) if u)
                reg.last_success_ts = ts
                reg.expiry_marked = False
                reg.timeline.append(RegistrationState(ts, frame, "registered", code))
        else:
            reg.attempts_failed += 1
            reg.timeline.append(RegistrationState(ts, frame, "failed", code))
        reg.attempt_start = None

    def info(self, r: Registration, end: float | None, txns: Mapping[tuple[str, int, str], Txn]) -> RegistrationInfo:
        """The binding ``r`` as seen at ``end``; ``txns``: the analyser's transactions."""
        unanswered = sum(
            1 for (cid, _n, meth), t in txns.items()
            if meth == "REGISTER" and overdue(t, end, TRANSACTION_TIMEOUT_S)
            and self.of_call.get(cid) == (r.aor, r.registrar)
        )
        expiry = None
        if r.last_success_ts is not None and r.granted is not None:
            expiry = r.last_success_ts + r.granted
        registered = bool(expiry is not None and not r.unregistered and (end is None or expiry > end))
        timeline = list(r.timeline)
        if expiry is not None and end is not None and expiry <= end and not r.unregistered \
                and not r.expiry_marked:
            timeline.append(RegistrationState(expiry, 0, "expired", None))
        return RegistrationInfo(
            r.aor, r.registrar, r.client, r.attempts, r.challenges, dict(r.final_codes), r.last_code,
            r.granted, r.last_success_ts, expiry,
            None if r.rrd_ms is None else round(r.rrd_ms, 3), registered, unanswered,
            tuple(timeline), tuple(r.frames), r.bindings)

    def results(self, end: float | None, txns: Mapping[tuple[str, int, str], Txn]) -> tuple[RegistrationInfo, ...]:
        return tuple(self.info(r, end, txns) for r in self.regs.values())
