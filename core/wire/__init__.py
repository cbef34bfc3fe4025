"""Sans-IO wire codecs: one per protocol, at the bottom of the layering.

``sip`` (RFC 3261 messages, the TCP/TLS stream framer with RFC 5626 keepalives) with
``sip_build`` (writing messages and responses) and ``digest`` (RFC 7616 / RFC 8760 digest
credentials), ``sdp`` (RFC 8866, parse and build), ``stun`` (RFC 5389/8489 with TURN methods,
RFC 3489, the TCP framer, building), ``rtp`` (RFC 3550 RTP/RTCP, RFC 4733 events), ``tls``
(RFC 8446 / RFC 5246 records and handshake), and ``digits`` (numbers bounded before ``int()``).

Bytes in, frozen typed values out, or ``core.errors.ParseError`` with the byte offset — the one
exception a codec raises on hostile input; builders take typed values and return bytes. No
sockets, files, clocks or randomness; this package imports no other project module than
``core.errors``. The analysers in ``collectors``, the probes and
the lab all use these codecs; nothing else in the repository parses these protocols.
"""
