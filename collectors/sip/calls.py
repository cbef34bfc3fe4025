"""INVITE dialogs as calls: one ``CallInfo`` per Call-ID, with the timings of one leg (a proxied
call seen on two legs, or an INVITE resent with credentials after 401/407, stays one call), who
hung up, the Reason header and its Q.850 cause (RFC 3326)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectors.sip.transactions import TRANSACTION_TIMEOUT_S
from core.analysis import CallInfo
from core.wire.sip import SipMessage, header_param, uri_of, user_of

_Q850 = re.compile(r"Q\.850\s*;(?:.*?;)?\s*cause\s*=\s*(\d+)", re.IGNORECASE)


def tag(value: str | None) -> str | None:
    return header_param(value, "tag") if value else None


@dataclass(slots=True)
class Leg:
    """The INVITE transaction as seen between one pair of addresses (a proxy adds a second leg)."""

    final_code: int | None = None
    final_reason: str = ""
    pdd_ts: float | None = None
    answer_ts: float | None = None
    ringing: bool = False
    responded: bool = False


@dataclass(slots=True)
class Call:
    call_id: str
    from_uri: str
    to_uri: str
    caller: str
    callee: str
    src: str
    dst: str
    start_ts: float
    first_frame: int
    from_tag: str | None
    invite_cseqs: set[int] = field(default_factory=set)
    legs: dict[tuple[str, str], Leg] = field(default_factory=dict)  # (INVITE src, dst) → leg
    end_ts: float | None = None
    bye_ts: float | None = None
    bye_cseq: int | None = None
    bye_ok_ts: float | None = None
    cancelled: bool = False
    hangup_by: str | None = None
    reason_header: str | None = None
    q850: int | None = None
    retransmissions: int = 0
    messages: int = 0
    last_ts: float = 0.0
    frames: list[int] = field(default_factory=list)

    def leg(self) -> Leg:
        """The leg the call's timings come from: the first INVITE's, unless only others answered."""
        legs = list(self.legs.values())
        return next((leg for leg in legs if leg.responded), legs[0]) if legs else Leg()


class CallTracker:
    """The calls seen so far, by Call-ID."""

    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}

    def on_message(self, frame: int, ts: float, src: str, sport: int, dst: str, msg: SipMessage,
                   call_id: str, cseq_num: int, cseq_method: str, retrans: bool) -> None:
        """One message of an INVITE dialog (or of a Call-ID already known as a call)."""
        call = self.calls.get(call_id)
        to = msg.get("to") if msg.method == "INVITE" else None  # read once, for both uses below
        initial_invite = msg.method == "INVITE" and tag(to) is None
        if call is None:
            # Only an initial INVITE (no To tag) opens a call; a mid-dialog capture start is
            # visible through sip_messages but not reported as a call with wrong times.
            if not initial_invite:
                return
            fr = msg.get("from") or ""
            call = self.calls[call_id] = Call(
                call_id, uri_of(fr), uri_of(to or ""), user_of(fr), user_of(to or ""), src, dst, ts, frame,
                tag(fr))
        call.messages += 1
        call.last_ts = max(call.last_ts, ts)
        call.frames.append(frame)
        if retrans:
            call.retransmissions += 1
            return
        if msg.method == "INVITE":
            if initial_invite:
                call.invite_cseqs.add(cseq_num)
                call.legs.setdefault((src, dst), Leg())
        elif msg.method == "CANCEL":
            call.cancelled = True
            if call.end_ts is None:
                call.end_ts = ts
            _reason(call, msg)
        elif msg.method == "BYE":
            if call.bye_ts is None:
                call.bye_ts, call.bye_cseq = ts, cseq_num
                if call.end_ts is None:
                    call.end_ts = ts
                ftag = tag(msg.get("from"))
                if ftag is not None and call.from_tag is not None:
                    call.hangup_by = "caller" if ftag == call.from_tag else "callee"
                else:
                    call.hangup_by = "caller" if src == call.src else "callee"
                _reason(call, msg)
        elif msg.status is not None:
            code = msg.status
            if cseq_method == "INVITE" and cseq_num in call.invite_cseqs:
                # Responses travel back along the leg their INVITE took: keep legs apart so a
                # proxied call's timings come from one leg only.
                leg = call.legs.setdefault((dst, src), Leg())
                if code > 100:
                    leg.responded = True
                # A 401/407 challenge is not an answer of the called side: PDD runs on to the
                # first 18x or final of the INVITE resent with credentials (measured from the
                # first INVITE, like RRD in RFC 6076 §4.1).
                if code > 100 and code not in (401, 407) and leg.pdd_ts is None:
                    leg.pdd_ts = ts
                if code in (180, 183):
                    leg.ringing = True
                if code >= 200 and leg.answer_ts is None:
                    # A 2xx wins over failures from other forks; until then the last final counts
                    # (401/407 is replaced by the final of the INVITE resent with credentials).
                    leg.final_code, leg.final_reason = code, msg.reason
                    if 200 <= code < 300:
                        leg.answer_ts = ts
                    elif code >= 300:
                        _reason(call, msg)
            elif (cseq_method == "BYE" and code >= 200 and cseq_num == call.bye_cseq
                  and call.bye_ok_ts is None and call.bye_ts is not None):
                call.bye_ok_ts = ts


def _reason(call: Call, msg: SipMessage) -> None:
    value = msg.get("reason")
    if value and call.reason_header is None:
        call.reason_header = value
        m = _Q850.search(value)
        if m and len(m.group(1)) <= 4:
            call.q850 = int(m.group(1))


def call_info(c: Call, end: float | None) -> CallInfo:
    """The call ``c`` as seen at ``end`` (a call with no final answer within Timer B failed)."""
    leg = c.leg()
    answered = leg.answer_ts is not None
    if c.cancelled and not answered:
        state = "cancelled"
    elif answered:
        # No BYE (or CANCEL) by the end of what was seen: the call was still up.
        state = "answered" if c.end_ts is not None else "answered-open"
    elif leg.final_code is not None and leg.final_code >= 300:
        state = "failed"
    elif (end is not None and leg.final_code is None and not leg.ringing
          and end - c.start_ts >= TRANSACTION_TIMEOUT_S):
        state = "failed"  # no final response within Timer B: the INVITE timed out
    elif leg.ringing:
        state = "ringing"
    else:
        state = "in-progress"
    duration = None
    if leg.answer_ts is not None:
        stop = c.bye_ts if c.bye_ts is not None else c.last_ts
        duration = round(max(0.0, stop - leg.answer_ts), 6)
    return CallInfo(
        c.call_id, c.from_uri, c.to_uri, c.caller, c.callee, c.src, c.dst, c.start_ts,
        c.first_frame, leg.final_code, leg.final_reason, answered,
        None if leg.answer_ts is None else round((leg.answer_ts - c.start_ts) * 1000.0, 3),
        None if leg.pdd_ts is None else round((leg.pdd_ts - c.start_ts) * 1000.0, 3),
        leg.answer_ts, c.end_ts, duration, c.cancelled, c.hangup_by, c.reason_header, c.q850,
        c.retransmissions, state, c.messages, tuple(c.frames))
