"""SIP session analyser: counts, retransmissions, calls, registrations, keepalives, RFC 6076 KPIs.

Theory of operation
-------------------
Every SIP message (a UDP datagram, a message cut by the per-direction stream framer, or a whole
message handed in by the TLS decryption or an OSBiz trace reader) goes through ``_on_message``:

1. It is counted by method / status code exactly like ``tshark -z sip,stat`` does: every
   dissected message, retransmissions included.
2. It is flagged as a retransmission the way Wireshark's SIP dissector does (UDP only): per
   Call-ID and address/port pair, the same request as the previous message in that direction,
   or the same final response code as the previous final response (``_is_resend``).
3. Transactions are keyed by (Call-ID, CSeq number, CSeq method); the first request of a
   transaction gives the start time for response delays.
4. INVITE dialogs build ``CallInfo`` (``collectors.sip.calls``: one per Call-ID; a proxied call
   seen on two legs, or an INVITE resent with credentials after 401/407, stays one call);
   REGISTER transactions build ``RegistrationInfo`` per (AOR, registrar)
   (``collectors.sip.registrations``); OPTIONS and RFC 5626 CRLF pings build ``KeepaliveInfo``
   per (client, peer).
5. SDP bodies announce media endpoints per call (``call_media``, ``on_sdp`` callback) so the RTP
   analyser can label streams.

``finish(end_ts)`` judges open items against the capture end (overdue transactions and
keepalives, registration expiry) without changing the analyser, and returns a frozen
``SipResult``. Authorization values are never kept: only summaries (start lines) are
stored, and ``redact`` is the one way to render a message with credentials removed.
"""

from __future__ import annotations

import re
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from collectors.capture.packets import StreamData, UdpPacket
from collectors.sip.calls import CallTracker, call_info
from collectors.sip.registrations import RegistrationTracker
from collectors.sip.transactions import TRANSACTION_TIMEOUT_S, Txn, overdue
from core.analysis import (
    CallInfo,
    ErrorItem,
    KeepaliveInfo,
    RegistrationInfo,
    SipMessageInfo,
)
from core.errors import ParseError
from core.wire.sdp import parse_sdp
from core.wire.sip import (
    MAX_LINE,
    NEED_DATA,
    CrlfPing,
    CrlfPong,
    SipFrame,
    SipMessage,
    SipStreamFramer,
    looks_like_sip,
    parse_message,
)

OnSdp = Callable[[str, str, int, dict[int, tuple[str, int]], float], None]
#: Sees every message with its bytes as they came (DTMF in INFO bodies, full messages on demand).
OnMessage = Callable[[SipMessageInfo, SipMessage, bytes], None]

# How far into a TCP stream we look for the first SIP start line before deciding the stream is
# not SIP (a capture may start in the middle of a message).
SYNC_LIMIT = 64 * 1024
# RFC 5626 §4.4.1: a CRLF ping not answered by a pong within 10 s means the flow failed.
PONG_TIMEOUT_S = 10.0
# RFC 6076 §4.7 SEER: responses that show the network did its job although nobody answered.
SEER_CODES = frozenset({200, 480, 486, 600, 603})
# RFC 6076 §4.8 ISA: responses that show the network failed the attempt.
ISA_CODES = frozenset({408, 500, 503, 504})
# ITU-T E.411/E.425 NER: answered, user busy, no answer (480/487 after ringing), rejected.
NER_CODES = frozenset({486, 480, 487, 600, 603})

_AUTH_SECRET = re.compile(r"(?i)\b(response|nonce|cnonce|opaque)\s*=\s*(\"[^\"]*\"|[^,\s]+)")


@dataclass(frozen=True, slots=True)
class MediaEndpoint:
    """One RTP destination announced in SDP: ``sender`` sent the SDP and will receive there."""

    call_id: str
    addr: str
    port: int
    media: str
    sender: str  # address of the SDP sender (that side receives RTP on addr:port)
    direction: str  # sendrecv | sendonly | recvonly | inactive
    payload_map: dict[int, tuple[str, int]]
    frame: int
    ts: float


@dataclass(frozen=True, slots=True)
class SipResult:
    sip_requests: dict[str, int]
    sip_responses: dict[str, int]
    sip_messages: tuple[SipMessageInfo, ...]
    calls: tuple[CallInfo, ...]
    registrations: tuple[RegistrationInfo, ...]
    keepalives: tuple[KeepaliveInfo, ...]
    kpis: dict[str, float | None]
    errors: tuple[ErrorItem, ...]
    call_media: dict[str, tuple[MediaEndpoint, ...]] = field(default_factory=dict)
    messages_total: int = 0
    retransmissions: int = 0
    messages_dropped: int = 0  # not kept in sip_messages because of keep_messages


def redact(text: str) -> str:
    """Remove digest secrets from Authorization/Proxy-Authorization values (keep scheme, user)."""
    out = []
    for line in text.split("\n"):
        name = line.split(":", 1)[0].strip().lower()
        if name in ("authorization", "proxy-authorization"):
            line = _AUTH_SECRET.sub(lambda m: f"{m.group(1)}=<redacted>", line)
        out.append(line)
    return "\n".join(out)


@dataclass(slots=True)
class _Keepalive:
    kind: str
    client: str
    peer: str
    count: int = 0
    answered: int = 0
    failures: int = 0
    rtts: list[float] = field(default_factory=list)
    last_ts: float | None = None


@dataclass(slots=True)
class _Stream:
    framer: SipStreamFramer
    synced: bool = False
    skipped: int = 0
    pre: bytes = b""  # bytes held while looking for the first start line
    ignored: bool = False
    # (stream offset where the chunk ends, frame, ts) of chunks not fully consumed yet
    chunks: deque[tuple[int, int, float]] = field(default_factory=deque)
    fed: int = 0


class SipAnalyzer:
    """Feeds SIP messages from UDP, TCP/TLS streams or whole messages into one session view."""

    def __init__(self, on_sdp: OnSdp | None = None, keep_messages: int = 20000,
                 on_message: OnMessage | None = None) -> None:
        self._on_sdp = on_sdp
        self._on_raw = on_message
        self._keep = keep_messages
        self._requests: dict[str, int] = {}
        self._responses: dict[str, int] = {}
        self._messages: list[SipMessageInfo] = []
        self._dropped = 0
        self._total = 0
        self._retrans = 0
        self._errors: list[ErrorItem] = []
        self._resend: dict[tuple[str, str, int, str, int], list[object]] = {}
        self._txns: dict[tuple[str, int, str], Txn] = {}
        self._dialogs = CallTracker()
        self._registrations = RegistrationTracker()
        self._keepalives: dict[tuple[str, str, str], _Keepalive] = {}
        self._options: dict[tuple[str, int], tuple[_Keepalive, Txn]] = {}
        self._streams: dict[tuple[int, str, int, str, int], _Stream] = {}
        self._pings: dict[tuple[int, str, int, str, int], float] = {}
        self._media: dict[str, list[MediaEndpoint]] = {}
        self._last_ts: float | None = None

    # ------------------------------------------------------------------ inputs

    def on_udp(self, pkt: UdpPacket) -> bool:
        """Analyse one datagram; True if it was SIP (also when malformed, then an error item)."""
        p = pkt.payload
        # Cheap reject before copying: a start line begins with an upper-case token letter
        # ("SIP/2.0" or a method); RTP (0b10……), STUN and DTLS never do.
        if not p or not 0x41 <= p[0] <= 0x5A:
            return False
        payload = bytes(p)
        if not looks_like_sip(payload):
            return False
        try:
            msg = parse_message(payload, datagram=True)
        except ParseError as exc:
            self._error(str(exc), pkt.frame, exc.offset)
            return True
        self._on_message(pkt.frame, pkt.ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, "udp", msg, payload)
        return True

    def on_stream(self, data: StreamData, transport: str = "tcp") -> None:
        """In-order bytes of one TCP (or decrypted TLS) direction; a framer per direction."""
        key = (data.connection, data.src, data.sport, data.dst, data.dport)
        st = self._streams.get(key)
        if st is None:
            st = self._streams[key] = _Stream(SipStreamFramer())
        if st.ignored:
            return
        chunk = bytes(data.data)
        if not st.synced:
            chunk = self._sync(st, chunk)
            if not st.synced:
                return
        st.fed += len(chunk)
        st.chunks.append((st.fed, data.frame, data.ts))
        st.framer.feed(chunk)
        st.framer.segment_boundary()
        self._drain(st, key, transport)

    def on_message_bytes(self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int,
                         transport: str, data: bytes) -> None:
        """One whole message (decrypted TLS, OSBiz trace); malformed ones become error items."""
        try:
            msg = parse_message(data, datagram=True)
        except ParseError as exc:
            self._error(str(exc), frame, exc.offset)
            return
        self._on_message(frame, ts, src, sport, dst, dport, transport, msg, data)

    # ------------------------------------------------------------------ streams

    def _sync(self, st: _Stream, chunk: bytes) -> bytes:
        """Skip bytes before the first SIP start line (capture started mid-message).

        A start line cut across segments is held in ``st.pre`` until its line is complete, so
        a tiny first segment ("INV") is not mistaken for garbage.
        """
        pre = st.pre + chunk
        if pre[:1] in (b"\r", b"\n") or looks_like_sip(pre):
            st.synced, st.pre = True, b""
            return pre
        pos = 0
        while True:
            nl = pre.find(b"\n", pos)
            if nl < 0:
                break
            pos = nl + 1
            if looks_like_sip(pre, pos):
                st.synced, st.pre = True, b""
                st.skipped += pos
                return pre[pos:]
        # Keep the unfinished last line (it may be the start of a start line), drop the rest.
        tail = pre[pos:] if len(pre) - pos < MAX_LINE else b""
        st.skipped += len(pre) - len(tail)
        st.pre = tail
        if st.skipped > SYNC_LIMIT:
            st.ignored, st.pre = True, b""
        return b""

    def _where(self, st: _Stream, end: int) -> tuple[int, float]:
        """Frame and time of the chunk that completed the bytes up to stream offset ``end``."""
        while len(st.chunks) > 1 and st.chunks[0][0] < end:
            st.chunks.popleft()
        _, frame, ts = st.chunks[0]
        return frame, ts

    def _drain(self, st: _Stream, key: tuple[int, str, int, str, int], transport: str) -> None:
        conn, src, sport, dst, dport = key
        while True:
            try:
                ev = st.framer.next_event()
            except ParseError as exc:
                frame, _ = self._where(st, (exc.offset or 0) + 1)
                self._error(str(exc), frame, exc.offset)
                continue
            if ev is NEED_DATA:
                # Every later event or error lies past the consumed bytes: forget their chunks
                # (a stream that stays out of sync would otherwise keep one entry per segment).
                self._where(st, st.framer.offset + 1)
                return
            if isinstance(ev, SipFrame):
                frame, ts = self._where(st, ev.end)
                self._on_message(frame, ts, src, sport, dst, dport, transport, ev.message, ev.raw)
            elif isinstance(ev, CrlfPing):
                frame, ts = self._where(st, ev.end)
                ka = self._keepalive("crlf", src, f"{dst}:{dport}", ts)
                ka.count += 1
                prev = self._pings.get(key)
                if prev is not None:
                    ka.failures += 1  # the previous ping was never answered
                self._pings[key] = ts
            elif isinstance(ev, CrlfPong):
                frame, ts = self._where(st, ev.end)
                back = (conn, dst, dport, src, sport)
                sent = self._pings.pop(back, None)
                if sent is not None:
                    ka = self._keepalive("crlf", dst, f"{src}:{sport}", ts)
                    ka.answered += 1
                    ka.rtts.append((ts - sent) * 1000.0)

    # ------------------------------------------------------------------ messages

    def _error(self, message: str, frame: int | None, offset: int | None) -> None:
        self._errors.append(ErrorItem("malformed", "sip", message, frame, offset))

    def _keepalive(self, kind: str, client: str, peer: str, ts: float) -> _Keepalive:
        key = (kind, client, peer)
        ka = self._keepalives.get(key)
        if ka is None:
            ka = self._keepalives[key] = _Keepalive(kind, client, peer)
        ka.last_ts = ts
        return ka

    def _on_message(self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int,
                    transport: str, msg: SipMessage, raw: bytes = b"") -> None:
        self._total += 1
        if self._last_ts is None or ts > self._last_ts:
            self._last_ts = ts
        if msg.method is not None:
            self._requests[msg.method] = self._requests.get(msg.method, 0) + 1
        else:
            code = str(msg.status)
            self._responses[code] = self._responses.get(code, 0) + 1
        for w in msg.warnings:
            self._error(f"SIP message {w}", frame, None)
        call_id = msg.get("call-id") or ""
        cseq = msg.cseq
        cseq_num, cseq_method = cseq if cseq is not None else (0, msg.method or "")
        if cseq is None:
            self._error(f"SIP message without a valid CSeq: {(msg.get('cseq') or '')[:30]!r}", frame, None)
        if not call_id:
            self._error("SIP message without Call-ID", frame, None)

        retrans = self._is_resend(call_id, src, sport, dst, dport, transport, cseq_num, cseq_method,
                                  msg.status, cseq_ok=cseq is not None)
        if retrans:
            self._retrans += 1
        info = SipMessageInfo(frame, ts, src, sport, dst, dport, transport, msg.method, msg.status, msg.reason,
                              call_id, cseq_num, cseq_method, retrans, msg.start_line[:200])
        if len(self._messages) < self._keep:
            self._messages.append(info)
        else:
            self._dropped += 1
        if self._on_raw is not None:
            self._on_raw(info, msg, raw)

        tkey = (call_id, cseq_num, cseq_method)
        txn = self._txns.get(tkey)
        if msg.method is not None and msg.method != "ACK":
            if txn is None:
                txn = self._txns[tkey] = Txn(ts)
            # Only REGISTER transactions are judged by it (collectors.sip.registrations): other
            # requests are spared two header scans that mostly find nothing.
            if cseq_method == "REGISTER" and (msg.get("authorization") or msg.get("proxy-authorization")):
                txn.had_credentials = True
        elif (msg.status is not None and msg.status >= 200 and txn is not None and not retrans
              and txn.final_code is None):
            txn.final_ts, txn.final_code = ts, msg.status

        if cseq_method == "INVITE" or msg.method in ("BYE", "CANCEL", "ACK") or call_id in self._dialogs.calls:
            self._dialogs.on_message(frame, ts, src, sport, dst, msg, call_id, cseq_num, cseq_method, retrans)
        if cseq_method == "REGISTER":
            self._registrations.on_message(frame, ts, src, sport, dst, dport, msg, call_id, retrans, txn)
        if cseq_method == "OPTIONS":
            self._options_message(ts, src, sport, dst, dport, msg, call_id, cseq_num, retrans, txn)
        if msg.body and "sdp" in (msg.get("content-type") or "").lower() and call_id:
            self._sdp(frame, ts, src, call_id, msg.body)

    def _is_resend(self, call_id: str, src: str, sport: int, dst: str, dport: int, transport: str,
                   cseq_num: int, cseq_method: str, status: int | None, cseq_ok: bool) -> bool:
        """Wireshark's SIP resend rule, so "resent" agrees with ``-z sip,stat``.

        Only UDP (streams retransmit below SIP). Per (Call-ID, source, destination) the last
        CSeq number is remembered with the CSeq method of its first message, the transaction
        state and the last final code. A request is a resend when the previous message in that
        direction was the same request (not ACK/CANCEL); a final response when the previous
        message was a final response with the same code. Provisional responses never are.
        """
        if transport != "udp" or not cseq_ok:
            return False
        key = (call_id, src, sport, dst, dport)
        st = self._resend.get(key)
        if st is None or st[0] != cseq_num:
            st = self._resend[key] = [cseq_num, cseq_method, "none", None]
            previous_seen = False
        else:
            previous_seen = True
        resend = False
        if previous_seen and st[1] == cseq_method:
            if status is None:
                resend = st[2] == "request" and cseq_method not in ("ACK", "CANCEL")
            else:
                resend = st[2] == "final" and status >= 200 and status == st[3]
        if status is None:
            st[2] = "request"
        elif status >= 200:
            st[2], st[3] = "final", status
        else:
            st[2] = "provisional"
        return resend

    def _sdp(self, frame: int, ts: float, src: str, call_id: str, body: bytes) -> None:
        try:
            sdp = parse_sdp(body)
        except ParseError as exc:
            self._errors.append(ErrorItem("malformed", "sdp", str(exc), frame, exc.offset))
            return
        for m in sdp.media:
            if m.port == 0 or m.address is None:
                continue  # RFC 3264 §6: port 0 rejects the stream
            known = self._media.get(call_id)
            if known is None:
                known = self._media[call_id] = []
            if all((e.addr, e.port, e.sender) != (m.address, m.port, src) for e in known):
                known.append(MediaEndpoint(call_id, m.address, m.port, m.media, src, m.direction,
                                           m.payload_map, frame, ts))
            if self._on_sdp is not None:
                # the map is this parse's own; the receivers copy what they keep
                self._on_sdp(call_id, m.address, m.port, m.payload_map, ts)

    # ------------------------------------------------------------------ registrations

    # ------------------------------------------------------------------ OPTIONS keepalives

    def _options_message(self, ts: float, src: str, sport: int, dst: str, dport: int,
                         msg: SipMessage, call_id: str, cseq_num: int, retrans: bool,
                         txn: Txn | None) -> None:
        okey = (call_id, cseq_num)
        if msg.method == "OPTIONS":
            if retrans or okey in self._options:
                return
            ka = self._keepalive("options", src, f"{dst}:{dport}", ts)
            ka.count += 1
            if txn is not None:
                self._options[okey] = (ka, txn)
            return
        entry = self._options.get(okey)
        if entry is None or msg.status is None or msg.status < 200 or retrans:
            return
        ka, t = entry
        if t.final_code is not None and t.final_ts != ts:
            return  # a second final (forking) does not count twice
        ka.answered += 1
        ka.rtts.append((ts - t.ts) * 1000.0)
        if msg.status == 408 or msg.status >= 500:
            ka.failures += 1

    # ------------------------------------------------------------------ finish

    def finish(self, end_ts: float | None = None) -> SipResult:
        end = end_ts if end_ts is not None else self._last_ts
        calls = tuple(call_info(c, end) for c in sorted(self._dialogs.calls.values(),
                                                              key=lambda c: (c.start_ts, c.first_frame)))
        regs = self._registrations.results(end, self._txns)
        # Open keepalives at the end fail only once their answer is overdue; finish() does not
        # change the analyser's state, so it can be called again (e.g. for a live snapshot).
        extra: dict[tuple[str, str, str], int] = {}
        for ka, t in self._options.values():
            if overdue(t, end, TRANSACTION_TIMEOUT_S):
                key = (ka.kind, ka.client, ka.peer)
                extra[key] = extra.get(key, 0) + 1
        for (_conn, src, _sport, dst, dport), sent in self._pings.items():
            if end is None or end - sent >= PONG_TIMEOUT_S:
                key = ("crlf", src, f"{dst}:{dport}")
                extra[key] = extra.get(key, 0) + 1
        kas = tuple(
            KeepaliveInfo(k.kind, k.client, k.peer, k.count, k.answered,
                          k.failures + extra.get((k.kind, k.client, k.peer), 0),
                          round(min(k.rtts), 3) if k.rtts else None,
                          round(statistics.fmean(k.rtts), 3) if k.rtts else None,
                          round(max(k.rtts), 3) if k.rtts else None, k.last_ts,
                          tuple(round(r, 3) for r in k.rtts))
            for k in self._keepalives.values())
        media = {cid: tuple(eps) for cid, eps in self._media.items()}
        return SipResult(dict(self._requests), dict(self._responses), tuple(self._messages), calls,
                         regs, kas, self._kpis(calls, end), tuple(self._errors), media, self._total,
                         self._retrans, self._dropped)

    def _kpis(self, calls: tuple[CallInfo, ...], end: float | None) -> dict[str, float | None]:
        """RFC 6076 §4 metrics plus ASR/NER; definitions in ``KPI_DEFINITIONS``."""

        def pct(num: int, den: int) -> float | None:
            return None if den <= 0 else round(100.0 * num / den, 3)

        def mean(values: list[float]) -> float | None:
            return round(statistics.fmean(values), 3) if values else None

        rrds = [x for r in self._registrations.regs.values() for x in r.rrds]
        reg_attempts = sum(r.attempts_total for r in self._registrations.regs.values())
        reg_failed = sum(r.attempts_failed for r in self._registrations.regs.values())
        # Unanswered REGISTER transactions are ineffective attempts too (RFC 6076 §4.2 timeouts).
        reg_unanswered = sum(1 for (_c, _n, m), t in self._txns.items()
                             if m == "REGISTER" and overdue(t, end, TRANSACTION_TIMEOUT_S))
        total = len(calls)
        redirected = sum(1 for c in calls if c.final_code is not None and 300 <= c.final_code < 400)
        answered = sum(1 for c in calls if c.answered)
        seer = sum(1 for c in calls if c.answered or c.final_code in SEER_CODES)
        # Timed out = no final response and no ringing within Timer B (state "failed", no code).
        isa = sum(1 for c in calls if not c.answered and (
            c.final_code in ISA_CODES or (c.final_code is None and c.state == "failed")))
        ner = sum(1 for c in calls if c.answered or c.final_code in NER_CODES)
        completed = sum(1 for c in calls if c.answered and c.end_ts is not None and not c.cancelled)
        sdd = [(c.bye_ok_ts - c.bye_ts) * 1000.0 for c in self._dialogs.calls.values()
               if c.bye_ts is not None and c.bye_ok_ts is not None]
        sdt = [c.duration_s for c in calls if c.duration_s is not None and c.end_ts is not None]
        srd = [c.pdd_ms for c in calls if c.pdd_ms is not None]
        return {
            "rrd_ms": mean(rrds),
            "ira_pct": pct(reg_failed + reg_unanswered, reg_attempts + reg_unanswered),
            "srd_ms": mean(srd),
            "sdd_ms": mean(sdd),
            "sdt_s": mean(sdt),
            "ser_pct": pct(answered, total - redirected),
            "seer_pct": pct(seer, total - redirected),
            "isa_pct": pct(isa, total),
            "scr_pct": pct(completed, total),
            "asr_pct": pct(answered, total),
            "ner_pct": pct(ner, total),
        }


KPI_DEFINITIONS: dict[str, str] = {
    "rrd_ms": "RFC 6076 §4.1 Registration Request Delay: mean time from the first REGISTER of an "
              "attempt (before any 401/407 challenge) to its 2xx",
    "ira_pct": "RFC 6076 §4.2 Ineffective Registration Attempts: REGISTER attempts ending in a "
               "failure (non-2xx final other than a first challenge) or unanswered, per attempt",
    "srd_ms": "RFC 6076 §4.3 Session Request Delay (post-dial delay): mean INVITE → first 18x or "
              "final response other than a 401/407 challenge, from the first INVITE of the call",
    "sdd_ms": "RFC 6076 §4.4 Session Disconnect Delay: mean BYE → its final response",
    "sdt_s": "RFC 6076 §4.5 Session Duration Time: mean 200 OK → BYE of answered calls",
    "ser_pct": "RFC 6076 §4.6 Session Establishment Ratio: answered / (calls − 3xx redirected)",
    "seer_pct": "RFC 6076 §4.7 Session Establishment Effectiveness Ratio: calls answered or "
                "ended by 480/486/600/603 / (calls − 3xx redirected)",
    "isa_pct": "RFC 6076 §4.8 Ineffective Session Attempts: calls ended by 408/500/503/504 or "
               "timed out (no response within Timer B, 32 s) / calls",
    "scr_pct": "RFC 6076 §4.9 Session Completion Ratio: answered calls ended by BYE / calls",
    "asr_pct": "ITU-T E.411 Answer Seizure Ratio: answered / calls",
    "ner_pct": "ITU-T E.411 Network Effectiveness Ratio: answered or ended by user busy 486, no "
               "answer 480/487, rejection 600/603 / calls",
}
