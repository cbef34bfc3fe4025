"""What an RTP payload type means on a flow: its clock, its name, whether it is a
telephone-event (RFC 4733), and how a UDP flow was classified (SDP-announced or heuristic).

The tables follow Wireshark's ``ui/tap-rtp-analysis.c`` so that jitter is computed with the same
clock; ``collectors.media.rtp`` reads them for every packet it analyses.
"""

from __future__ import annotations

PT_CN, PT_CN_OLD = 13, 19

# ui/tap-rtp-analysis.c clock_map: RTP clock rate of static payload types (RFC 3551 / IANA).
STATIC_CLOCK: dict[int, int] = {
    0: 8000, 1: 8000, 2: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000,
    10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000, 15: 8000, 16: 11025, 17: 22050, 18: 8000,
    19: 8000, 25: 90000, 26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000, 34: 90000,
}
STATIC_NAMES: dict[int, str] = {
    0: "PCMU", 1: "1016", 2: "G721", 3: "GSM", 4: "G723", 5: "DVI4", 6: "DVI4", 7: "LPC", 8: "PCMA",
    9: "G722", 10: "L16", 11: "L16", 12: "QCELP", 13: "CN", 14: "MPA", 15: "G728", 16: "DVI4",
    17: "DVI4", 18: "G729", 19: "CN", 25: "CelB", 26: "JPEG", 28: "nv", 31: "H261", 32: "MPV",
    33: "MP2T", 34: "H263",
}
# Payload types a heuristic stream may start with: RFC 3551 assigned static types and dynamic ones.
HEURISTIC_START_PT = frozenset(STATIC_NAMES) | frozenset(range(96, 128))
# ui/tap-rtp-analysis.c mimetype_and_clock_map: clock of dynamic types by encoding-name prefix,
# used when the rtpmap gives no rate. Tried in reverse alphabetical order like Wireshark's scan,
# so a longer name (AMR-WB) is tried before its prefix (AMR).
_MIME_CLOCK: tuple[tuple[str, int], ...] = tuple(
    sorted(
        {
            "AMR": 8000, "AMR-WB": 16000, "BMPEG": 90000, "BT656": 90000, "DV": 90000, "EVRC": 8000,
            "EVRC0": 8000, "EVRC1": 8000, "EVRCB": 8000, "EVRCB0": 8000, "EVRCB1": 8000,
            "EVRCWB": 16000, "EVRCWB0": 16000, "EVRCWB1": 16000, "EVS": 16000, "G7221": 16000,
            "G726-16": 8000, "G726-24": 8000, "G726-32": 8000, "G726-40": 8000, "G729D": 8000,
            "G729E": 8000, "GSM-EFR": 8000, "H263-1998": 90000, "H263-2000": 90000, "H264": 90000,
            "MP1S": 90000, "MP2P": 90000, "MP4V-ES": 90000, "MPA-ROBUST": 90000, "OPUS": 48000,
            "POINTER": 90000, "RAW": 90000, "RED": 1000, "SMV": 8000, "SMV0": 8000, "T140": 1000,
        }.items(),
        key=lambda kv: (kv[0], len(kv[0])),
        reverse=True,
    )
)


def _dynamic_clock(name: str, rate: int) -> tuple[int, bool]:
    """(clock used for jitter, is telephone-event) of a dynamic payload type from its rtpmap.

    A rate below 1 kHz is taken as no rate: the jitter is computed in ms with an integer
    clock/1000 divisor (as Wireshark does), which such a rate would make zero."""
    upper = name.upper()
    if upper.startswith("TELEPHONE-EVENT"):
        return 0, True
    if rate >= 1000:
        return rate, False
    for prefix, clock in _MIME_CLOCK:
        if upper.startswith(prefix):
            return clock, False
    return 0, False


class Endpoint:
    """An SDP-announced media address: its payload map and call."""

    __slots__ = ("call_id", "payload_map", "pt_info")

    def __init__(self, payload_map: dict[int, tuple[str, int]], call_id: str | None) -> None:
        self.payload_map = dict(payload_map)
        self.call_id = call_id
        self.pt_info: dict[int, tuple[int, bool, str]] = {}

    def info(self, pt: int) -> tuple[int, bool, str]:
        """(clock, is telephone-event, codec name) of a payload type on this endpoint."""
        found = self.pt_info.get(pt)
        if found is None:
            entry = self.payload_map.get(pt)
            if pt < 96:  # static types keep their RFC 3551 clock whatever the SDP says (Wireshark)
                found = (STATIC_CLOCK.get(pt, 0), False, entry[0] if entry else STATIC_NAMES.get(pt, f"PT{pt}"))
            elif entry is not None:
                clock, is_event = _dynamic_clock(entry[0], entry[1])
                found = (clock, is_event, entry[0])
            else:
                found = (0, False, f"PT{pt}")
            self.pt_info[pt] = found
        return found


# Heuristic streams have no rtpmap: Wireshark names dynamic types by its rtp.pt dissector table
# (99 → RFC 2198, 100/101 → rtpevent) and none of those names has a clock.
_HEUR_EVENT_PTS = frozenset({100, 101})


def heuristic_info(pt: int) -> tuple[int, bool, str]:
    if pt < 96:
        return STATIC_CLOCK.get(pt, 0), False, STATIC_NAMES.get(pt, f"PT{pt}")
    if pt in _HEUR_EVENT_PTS:
        return 0, True, "telephone-event"
    return 0, False, f"PT{pt}"


class Flow:
    """Cached classification of one (src, sport, dst, dport)."""

    __slots__ = ("endpoint", "kind", "rows")

    def __init__(self, kind: int, endpoint: Endpoint | None) -> None:
        self.kind = kind  # SDP_RTP, SDP_RTCP, HEURISTIC or OTHER (never RTP)
        self.endpoint = endpoint
        self.rows: list[int] = []  # state-table rows of streams resolved with this classification


SDP_RTP, SDP_RTCP, HEURISTIC, OTHER = 1, 2, 3, 4


