"""TCP/TLS flow health: SYN answered, handshake outcome, version, SNI, certificate, alerts, RSTs.

Theory of operation
-------------------
``on_segment`` sees every TCP segment (flags only matter: SYN, SYN-ACK, FIN, RST) and
``on_stream`` the in-order bytes of each direction. A flow is tracked when it is on a
configured TLS port (5061, 65061 by default) or its first bytes are a TLS record; SYN-only
state of other ports is held briefly and dropped once the flow shows non-TLS data.

The client is the SYN sender, else the ClientHello sender, else the side not on the TLS port.
Handshake outcome per connection:

- ``ok``: TLS ≤ 1.2 — both sides sent ChangeCipherSpec and the server a record after it;
  TLS 1.3 — the client sent encrypted records and the server answered with encrypted records
  after the client's first one (its Finished is answered by tickets/data), with no fatal alert;
- ``failed``: a plaintext fatal alert, or the connection was reset/closed before ``ok``;
- ``incomplete``: a ClientHello but neither of the above when the capture ends;
- ``not-seen``: no ClientHello (the capture started mid-session).

A SYN sent again on the same address/port 4-tuple after the previous connection ended starts
a new flow; ``reconnects()`` counts connections per (client, server, port) beyond the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.capture.packets import ACK, FIN, RST, SYN, StreamData, TcpSegment
from core.analysis import ErrorItem, TlsFlowInfo
from core.errors import ParseError
from core.wire.tls import (
    ALERT,
    APPLICATION_DATA,
    CHANGE_CIPHER_SPEC,
    NEED_DATA,
    Alert,
    CertificateMsg,
    ClientHello,
    ServerHello,
    TlsRecord,
    TlsRecordParser,
    looks_like_tls,
    version_name,
)

DEFAULT_TLS_PORTS = frozenset({5061, 65061})
_MAX_PENDING_SYNS = 10000

Key = tuple[str, int, str, int]  # client, client port, server, server port


@dataclass(slots=True)
class _Flow:
    client: str
    cport: int
    server: str
    sport: int
    first_ts: float
    first_frame: int
    last_ts: float = 0.0
    syn_seen: bool = False
    syn_answered: bool | None = None
    client_hello: ClientHello | None = None
    server_hello: ServerHello | None = None
    certs: tuple[bytes, ...] = ()
    alerts: list[str] = field(default_factory=list)
    fatal: bool = False
    reset_by: str | None = None
    closed: bool = False
    ccs_client: bool = False
    ccs_server: bool = False
    server_after_ccs: bool = False
    client_appdata: bool = False
    server_appdata_after_client: bool = False
    ok: bool = False
    payload_seen: bool = False
    bytes_client: int = 0
    bytes_server: int = 0
    parsers: dict[bool, TlsRecordParser] = field(default_factory=dict)
    version: int | None = None


def _cert_fields(der: bytes, at: float) -> tuple[str | None, float | None, bool | None]:
    """Subject, notAfter (UNIX s) and validity at ``at`` of a DER certificate; Nones if unreadable."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
        not_before = cert.not_valid_before_utc.timestamp()
        not_after = cert.not_valid_after_utc.timestamp()
        return cert.subject.rfc4514_string(), not_after, not_before <= at <= not_after
    except Exception:  # a third-party DER parser on hostile bytes: any failure means "unreadable"
        return None, None, None


class TlsAnalyzer:
    def __init__(self, tls_ports: frozenset[int] | set[int] = DEFAULT_TLS_PORTS) -> None:
        self._ports = frozenset(tls_ports)
        self._flows: list[_Flow] = []
        self._current: dict[Key, _Flow] = {}
        self._syns: dict[Key, tuple[float, int, bool]] = {}  # not-yet-TLS flows: ts, frame, answered
        self._not_tls: set[Key] = set()
        self.errors: list[ErrorItem] = []

    # ------------------------------------------------------------------ helpers

    def _key(self, src: str, sport: int, dst: str, dport: int) -> tuple[Key, bool]:
        """(flow key, True if src is the client) for a packet, using what is known."""
        fwd, back = (src, sport, dst, dport), (dst, dport, src, sport)
        if fwd in self._current or fwd in self._syns:
            return fwd, True
        if back in self._current or back in self._syns:
            return back, False
        # Unknown so far: the side on the TLS port is the server, else the lower port.
        if sport in self._ports and dport not in self._ports:
            return back, False
        if dport in self._ports or dport <= sport:
            return fwd, True
        return back, False

    def _flow(self, key: Key, ts: float, frame: int) -> _Flow:
        f = self._current.get(key)
        if f is None:
            f = _Flow(*key, first_ts=ts, first_frame=frame)
            syn = self._syns.pop(key, None)
            if syn is not None:
                f.first_ts, f.first_frame = syn[0], syn[1]
                f.syn_seen, f.syn_answered = True, syn[2]
            self._current[key] = f
            self._flows.append(f)
        return f

    # ------------------------------------------------------------------ inputs

    def on_segment(self, seg: TcpSegment) -> None:
        key, from_client = self._key(seg.src, seg.sport, seg.dst, seg.dport)
        if seg.flags & SYN and not seg.flags & ACK:
            key, from_client = (seg.src, seg.sport, seg.dst, seg.dport), True
            old = self._current.get(key)
            if old is not None and (old.closed or old.client_hello is not None or old.bytes_client):
                del self._current[key]  # a new connection on the same 4-tuple (reconnect)
            self._not_tls.discard(key)
            if key in self._current:
                return  # SYN retransmission
            if seg.dport in self._ports:
                new = self._flow(key, seg.ts, seg.frame)
                new.syn_seen, new.syn_answered = True, False
            elif len(self._syns) < _MAX_PENDING_SYNS:
                self._syns.setdefault(key, (seg.ts, seg.frame, False))
            return
        if key in self._not_tls:
            return
        cur = self._current.get(key)
        if seg.flags & SYN and seg.flags & ACK:
            if cur is not None:
                cur.syn_answered = True
            elif key in self._syns:
                ts, frame, _ = self._syns[key]
                self._syns[key] = (ts, frame, True)
            return
        if cur is None:
            if not (key[3] in self._ports and (seg.payload or seg.flags & (RST | FIN))):
                return
            cur = self._flow(key, seg.ts, seg.frame)
        f = cur
        f.last_ts = max(f.last_ts, seg.ts)
        if seg.payload:
            f.payload_seen = True
        if seg.flags & RST and f.reset_by is None:
            f.reset_by = "client" if from_client else "server"
            f.closed = True
        if seg.flags & FIN:
            f.closed = True
        if f.syn_seen and f.syn_answered is False and (seg.payload or (not from_client and not seg.flags & RST)):
            # The SYN-ACK was not captured but the peer talks. A bare RST (RST/ACK to the SYN) is
            # no answer: the connection was refused.
            f.syn_answered = True

    def on_stream(self, data: StreamData) -> None:
        key, from_client = self._key(data.src, data.sport, data.dst, data.dport)
        if key in self._not_tls:
            return
        f = self._current.get(key)
        chunk = bytes(data.data)
        if f is None or (not f.parsers and f.client_hello is None):
            if key[3] not in self._ports and not looks_like_tls(chunk):
                self._not_tls.add(key)
                self._syns.pop(key, None)
                return
            f = self._flow(key, data.ts, data.frame)
        f.last_ts = max(f.last_ts, data.ts)
        if from_client:
            f.bytes_client += len(chunk)
        else:
            f.bytes_server += len(chunk)
        parser = f.parsers.get(from_client)
        if parser is None:
            parser = f.parsers[from_client] = TlsRecordParser()
        parser.feed(chunk)
        while True:
            try:
                ev = parser.next_event()
            except ParseError as exc:
                self.errors.append(ErrorItem("malformed", "tls", str(exc), data.frame, exc.offset))
                continue
            if ev is NEED_DATA:
                break
            self._event(f, from_client, ev)

    def _event(self, f: _Flow, from_client: bool, ev: object) -> None:
        if isinstance(ev, TlsRecord):
            if ev.content_type == CHANGE_CIPHER_SPEC:
                if from_client:
                    f.ccs_client = True
                else:
                    f.ccs_server = True
            elif not from_client and f.ccs_server and ev.content_type != CHANGE_CIPHER_SPEC:
                f.server_after_ccs = True
            if ev.content_type == ALERT and ev.encrypted:
                # TLS ≤ 1.2 alerts after ChangeCipherSpec: level and description are encrypted
                # (usually close_notify); TLS 1.3 hides even the record type.
                f.alerts.append(f"{'client' if from_client else 'server'} encrypted alert")
            if ev.content_type == APPLICATION_DATA:
                if from_client:
                    f.client_appdata = True
                elif f.client_appdata:
                    f.server_appdata_after_client = True
        elif isinstance(ev, ClientHello):
            if from_client and f.client_hello is None:
                f.client_hello = ev
        elif isinstance(ev, ServerHello):
            if not from_client and f.server_hello is None:
                f.server_hello = ev
                f.version = ev.selected_version
        elif isinstance(ev, CertificateMsg):
            if not from_client and ev.certificates and not f.certs:
                f.certs = ev.certificates
        elif isinstance(ev, Alert):
            side = "client" if from_client else "server"
            f.alerts.append(f"{side} {ev.level} {ev.description}")
            if ev.level == "fatal":
                f.fatal = True
        if not f.ok and not f.fatal and f.server_hello is not None:
            if f.version == 0x0304:
                f.ok = f.client_appdata and f.server_appdata_after_client
            else:
                f.ok = f.ccs_client and f.ccs_server and f.server_after_ccs

    # ------------------------------------------------------------------ results

    def server_ports(self) -> set[int]:
        """Server ports of the connections seen carrying TLS so far: the ports tshark must decode
        as TLS and SIP for key-log decryption when the site's port is not known."""
        return {f.sport for f in self._flows if f.parsers or f.client_hello is not None}

    def finish(self, end_ts: float | None = None) -> tuple[TlsFlowInfo, ...]:
        out = []
        for f in self._flows:
            if f.client_hello is None and not f.parsers and (
                    f.payload_seen or (not f.syn_seen and f.reset_by is None)):
                continue  # data that never looked like TLS (e.g. plain SIP on 5061), or nothing
            if f.ok:
                outcome = "ok"
            elif f.client_hello is None:
                outcome = "not-seen"
            elif f.fatal or f.closed:
                outcome = "failed"
            else:
                outcome = "incomplete"
            subject = not_after = valid = None
            if f.certs:
                subject, not_after, valid = _cert_fields(f.certs[0], f.first_ts)
            version = None
            if f.version is not None:
                version = version_name(f.version)
            out.append(TlsFlowInfo(
                f.client, f.cport, f.server, f.sport, f.first_ts, max(f.last_ts, f.first_ts),
                f.first_frame, f.syn_answered if f.syn_seen else None, outcome, version,
                f.client_hello.sni if f.client_hello else None, tuple(f.alerts), f.reset_by,
                subject, not_after, valid, False, f.bytes_client, f.bytes_server,
                tuple(version_name(v) for v in f.client_hello.offered_versions) if f.client_hello else ()))
        return tuple(out)


def reconnects(flows: tuple[TlsFlowInfo, ...]) -> dict[str, int]:
    """Connections beyond the first per "client -> server:port" (a flapping trunk reconnects)."""
    counts: dict[str, int] = {}
    for fl in flows:
        k = f"{fl.client} -> {fl.server}:{fl.server_port}"
        counts[k] = counts.get(k, 0) + 1
    return {k: n - 1 for k, n in counts.items()}

