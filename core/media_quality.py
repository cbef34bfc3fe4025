"""Listening-quality estimate (MOS-CQE) with the ITU-T G.107 E-model — pure functions.

R = Ro − Is − Id − Ie,eff + A, with every G.107 default (Ro − Is = 93.2, A = 0):

* Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)          (G.107 (06/2015) eq. 7-29)
  with Ppl the packet-loss **percentage** (0–100; feeding a 0–1 fraction here is a known bug of
  other tools) and BurstR = 1 for random loss.
* Id = Idd(Ta) (G.107 eq. 7-27/7-28, mT = 100 ms, sT = 1): zero up to 100 ms, then
  25·{(1 + X⁶)^(1/6) − 3·(1 + (X/3)⁶)^(1/6) + 2} with X = log2(Ta/100 ms). The talker-echo term
  Idte and Idle are left out: with G.107's default echo loss (TELR = 65 dB) they stay below 1 R
  point at the delays a trunk sees, and a single capture point cannot measure them.
  A capture at one point does not see end-to-end delay, so Ta is an assumed one-way delay
  (``assumed_delay_ms``, default 100 ms) plus the delay of a jitter buffer sized at
  ``jitter_buffer_factor`` × mean jitter.
* MOS = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶ for 0 < R < 100 (G.107 Annex B eq. B-4),
  clamped to 1.0 … 4.5.

Codec impairments. Narrowband codecs are rated on the G.107 scale (Ro − Is = 93.2) with the
planning values of ITU-T G.113 (11/2007) Appendix I: Ie from Table I.1, the packet-loss
robustness Bpl from Table I.3. G.722 is a wideband codec: it is rated on the wideband scale of
ITU-T G.107.1 (Ro,WB = 129; Ie,eff,WB = Ie,WB + (129 − Ie,WB) · Ppl / (Ppl + Bpl)) with Ie,WB from
G.113 Appendix IV (Table IV.1), and its R is brought to the MOS scale as G.107.1 Annex A does
(R / 1.29, then the G.107 Annex B formula) — so a loss-free G.722 call reads 4.34, next to 4.41
for G.711, both "no impairment but the codec's own".

=================  =======  =====  =======================================================
SDP name           Ie       Bpl    source, notes
=================  =======  =====  =======================================================
PCMU, PCMA         0        25.1   Table I.1 / I.3, with G.711 Appendix I concealment (the
                                   default: every current endpoint conceals loss);
                                   4.3 without it (``MosModel(plc=False)``)
G729, G729B       10       19.0   Ie Table I.1 (G.729); Bpl Table I.3 lists only G.729A +
                                   VAD, whose frame-erasure concealment G.729 shares
G729A, G729AB      11       19.0   Table I.1 / I.3 (G.729A + VAD)
G723               15       16.1   Table I.1 / I.3 (G.723.1 6.3 kbit/s; SDP does not tell
                                   the 5.3 kbit/s mode, Ie 19, apart)
G726-40 … -16      2, 7,    —      Table I.1 (ADPCM 40, 32, 24, 16 kbit/s); the static
                   25, 50          payload type 2 (``G721``) is 32 kbit/s
G728               7        —      Table I.1 (LD-CELP 16 kbit/s)
GSM                20       —      Table I.1 (GSM 06.10 full rate, RPE-LTP 13 kbit/s)
GSM-EFR            5        —      Table I.1 (GSM 06.60 enhanced full rate)
G722               13 (WB)  —      Appendix IV Table IV.1 (64 kbit/s, wideband scale)
=================  =======  =====  =======================================================

Where G.113 gives no Bpl, the MOS is estimated only without packet loss (Ie,eff = Ie then
needs no Bpl); with loss it is "not available", with the reason. Codecs with no planning value
at all — iLBC, Speex, Opus, SILK, AMR, L16, and anything unnamed — have no MOS, with the reason:
no number is made up for them.

Reference points (hand-checked): R = 93.2 → MOS 4.409; R = 50 → 2.575; R = 0 → 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_R0 = 93.2  # Ro − Is with all G.107 default parameters
DEFAULT_ASSUMED_DELAY_MS = 100.0
DEFAULT_JITTER_BUFFER_FACTOR = 2.0


#: Ro − Is of the wideband E-model (ITU-T G.107.1) and the factor its Annex A divides R by
#: before the narrowband R → MOS formula.
WIDEBAND_R0 = 129.0
WIDEBAND_MOS_SCALE = 1.29


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    """Equipment impairment Ie and packet-loss robustness Bpl of one codec (ITU-T G.113).

    ``bpl`` is None where G.113 tabulates none; ``wideband`` rates the codec on the G.107.1 scale.
    """

    name: str
    ie: float
    bpl: float | None
    wideband: bool = False


G711_PLC = CodecImpairment("G.711 with PLC", 0.0, 25.1)
G711_NO_PLC = CodecImpairment("G.711 without PLC", 0.0, 4.3)
G729A = CodecImpairment("G.729A", 11.0, 19.0)
G729 = CodecImpairment("G.729", 10.0, 19.0)
G723_1 = CodecImpairment("G.723.1 6.3 kbit/s", 15.0, 16.1)
G726_40 = CodecImpairment("G.726 40 kbit/s", 2.0, None)
G726_32 = CodecImpairment("G.726 32 kbit/s", 7.0, None)
G726_24 = CodecImpairment("G.726 24 kbit/s", 25.0, None)
G726_16 = CodecImpairment("G.726 16 kbit/s", 50.0, None)
G728 = CodecImpairment("G.728 16 kbit/s", 7.0, None)
GSM_FR = CodecImpairment("GSM 06.10 full rate", 20.0, None)
GSM_EFR = CodecImpairment("GSM 06.60 enhanced full rate", 5.0, None)
G722 = CodecImpairment("G.722 64 kbit/s", 13.0, None, wideband=True)

#: SDP encoding names (RFC 3551 and the RTP payload format RFCs), upper case, '.' and '_' removed.
_BY_CODEC: dict[str, CodecImpairment] = {
    "PCMU": G711_PLC, "PCMA": G711_PLC, "G711": G711_PLC,
    "G729": G729, "G729B": G729, "G729A": G729A, "G729AB": G729A,
    "G723": G723_1, "G7231": G723_1,
    "G726-40": G726_40, "G726-32": G726_32, "G721": G726_32, "G726-24": G726_24, "G726-16": G726_16,
    "AAL2-G726-40": G726_40, "AAL2-G726-32": G726_32, "AAL2-G726-24": G726_24, "AAL2-G726-16": G726_16,
    "G728": G728,
    "GSM": GSM_FR, "GSM-EFR": GSM_EFR,
    "G722": G722,
}


#: Payload formats that are not a speech codec (RFC 4733 events, RFC 3389 comfort noise).
_NOT_SPEECH = frozenset({"TELEPHONE-EVENT", "CN", "RED"})


def _key(codec: str) -> str:
    return codec.upper().replace(".", "").replace("_", "-").strip()


def codec_impairment(codec: str, plc: bool = True) -> CodecImpairment | None:
    """Ie/Bpl for an SDP encoding name (case-insensitive; '.' ignored); None when G.113 has none."""
    found = _BY_CODEC.get(_key(codec))
    if found is G711_PLC and not plc:
        return G711_NO_PLC
    return found


def mos_unavailable(codec: str, loss_pct: float, plc: bool = True) -> str | None:
    """Why no MOS can be estimated for this codec at this loss, or None when it can."""
    found = codec_impairment(codec, plc)
    if found is None:
        key = _key(codec)
        if key in _NOT_SPEECH:
            return f"{codec.strip()} carries no speech"
        if not key or (key.startswith("PT") and key[2:].isdigit()):
            return "codec unknown (a dynamic payload type without an SDP rtpmap)"
        return f"no E-model equipment impairment (Ie) published for {codec.strip()}"
    if found.bpl is None and loss_pct > 0.0:
        return f"no E-model packet-loss robustness (Bpl) published for {found.name}: MOS only without loss"
    return None


def effective_equipment_impairment(ie: float, bpl: float, loss_pct: float, burst_r: float = 1.0,
                                   top: float = 95.0) -> float:
    """Ie,eff of G.107 eq. 7-29 (``top`` 129 for the G.107.1 wideband scale); ``loss_pct`` in
    percent, clipped to 0..100."""
    ppl = min(max(loss_pct, 0.0), 100.0)
    if ppl == 0.0:
        return ie
    return ie + (top - ie) * ppl / (ppl / burst_r + bpl)


def delay_impairment(one_way_delay_ms: float) -> float:
    """Idd of G.107 eq. 7-27/7-28 with the default mT = 100 ms and sT = 1."""
    if one_way_delay_ms <= 100.0:
        return 0.0
    x = math.log2(one_way_delay_ms / 100.0)
    return 25.0 * (math.pow(1.0 + x**6, 1.0 / 6.0) - 3.0 * math.pow(1.0 + (x / 3.0) ** 6, 1.0 / 6.0) + 2.0)


def mos_from_r(r: float) -> float:
    """G.107 Annex B R → MOS-CQE, clamped to 1.0 … 4.5."""
    if r <= 0.0:
        return 1.0
    if r >= 100.0:
        return 4.5
    mos = 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    return min(max(mos, 1.0), 4.5)


def r_factor(
    codec: CodecImpairment,
    loss_pct: float,
    one_way_delay_ms: float = DEFAULT_ASSUMED_DELAY_MS,
    burst_r: float = 1.0,
) -> float:
    """R = Ro − Is − Id − Ie,eff (A = 0) on the codec's own scale: 93.2 narrowband (G.107), 129
    wideband (G.107.1, where Ie,eff runs up to 129 instead of 95). Loss needs the codec's Bpl."""
    if loss_pct > 0.0 and codec.bpl is None:
        raise ValueError(f"{codec.name}: no Bpl, so no Ie,eff under packet loss")
    ie_eff = effective_equipment_impairment(codec.ie, codec.bpl or 0.0, loss_pct, burst_r,
                                            WIDEBAND_R0 if codec.wideband else 95.0)
    r0 = WIDEBAND_R0 if codec.wideband else DEFAULT_R0
    return r0 - delay_impairment(one_way_delay_ms) - ie_eff


def mos_of(codec: CodecImpairment, r: float) -> float:
    """MOS-CQE of an R on the codec's scale (G.107 Annex B; wideband R / 1.29 first, G.107.1 Annex A)."""
    return mos_from_r(r / WIDEBAND_MOS_SCALE if codec.wideband else r)


@dataclass(frozen=True, slots=True)
class MosModel:
    """The configurable assumptions of a MOS estimate from one capture point."""

    assumed_delay_ms: float = DEFAULT_ASSUMED_DELAY_MS
    jitter_buffer_factor: float = DEFAULT_JITTER_BUFFER_FACTOR
    plc: bool = True  # G.711 with packet-loss concealment (Bpl 25.1) or without (4.3)
    burst_r: float = 1.0

    def mos(self, codec: str, loss_pct: float, mean_jitter_ms: float = 0.0) -> float | None:
        """MOS-CQE of a stream with this loss percentage and mean jitter; None when the codec has
        no planning value for it (``mos_unavailable`` says why)."""
        impairment = codec_impairment(codec, self.plc)
        if impairment is None or mos_unavailable(codec, loss_pct, self.plc) is not None:
            return None
        delay = self.assumed_delay_ms + self.jitter_buffer_factor * max(mean_jitter_ms, 0.0)
        r = r_factor(impairment, loss_pct, delay, self.burst_r)
        return round(mos_of(impairment, r), 2)

    def unavailable(self, codec: str, loss_pct: float) -> str | None:
        """Why ``mos`` is None for this codec and loss (None when it is not)."""
        return mos_unavailable(codec, loss_pct, self.plc)
