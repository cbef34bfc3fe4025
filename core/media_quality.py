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

Codec impairments Ie / Bpl are ITU-T G.113 (11/2007) Appendix I, Tables I.1 and I.3 (narrowband):

=============  ====  =====================================================================
codec          Ie    Bpl
=============  ====  =====================================================================
G.711 (PCMU/A)  0    25.1 with packet-loss concealment (G.711 App. I PLC) — the default,
                     since every current endpoint conceals loss; 4.3 without PLC
                     (``MosModel(plc=False)``)
G.729A + VAD   11    19.0
G.729 (plain)  10    19.0 (G.113 lists Bpl only for G.729A; the same concealment is assumed)
G.723.1 6.3k   15    16.1
=============  ====  =====================================================================

Wideband codecs (G.722, opus, AMR-WB) are rated by G.113 only on the wideband scale of
G.107.1 (Ro = 129), which this narrowband model cannot use; they are scored here as G.711 with
PLC (Ie = 0, Bpl = 25.1) — i.e. never better than narrowband PCM, a deliberately conservative
choice. Unknown codecs get the same G.711-with-PLC parameters.

Reference points (hand-checked): R = 93.2 → MOS 4.409; R = 50 → 2.575; R = 0 → 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_R0 = 93.2  # Ro − Is with all G.107 default parameters
DEFAULT_ASSUMED_DELAY_MS = 100.0
DEFAULT_JITTER_BUFFER_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    """Equipment impairment Ie and packet-loss robustness Bpl of one codec (G.113 App. I)."""

    name: str
    ie: float
    bpl: float


G711_PLC = CodecImpairment("G.711 with PLC", 0.0, 25.1)
G711_NO_PLC = CodecImpairment("G.711 without PLC", 0.0, 4.3)
G729A = CodecImpairment("G.729A", 11.0, 19.0)
G729 = CodecImpairment("G.729", 10.0, 19.0)
G723_1 = CodecImpairment("G.723.1 6.3 kbit/s", 15.0, 16.1)

_BY_CODEC: dict[str, CodecImpairment] = {
    "PCMU": G711_PLC, "PCMA": G711_PLC, "G711": G711_PLC,
    "G729": G729, "G729A": G729A, "G729AB": G729A, "G729B": G729,
    "G723": G723_1, "G7231": G723_1,
}


def codec_impairment(codec: str, plc: bool = True) -> CodecImpairment:
    """Ie/Bpl for an SDP encoding name or IANA static name (case-insensitive; '.' ignored)."""
    key = codec.upper().replace(".", "").replace("_", "-")
    found = _BY_CODEC.get(key, G711_PLC)
    if found is G711_PLC and not plc:
        return G711_NO_PLC
    return found


def effective_equipment_impairment(ie: float, bpl: float, loss_pct: float, burst_r: float = 1.0) -> float:
    """Ie,eff of G.107 eq. 7-29; ``loss_pct`` in percent, clipped to 0..100."""
    ppl = min(max(loss_pct, 0.0), 100.0)
    if ppl == 0.0:
        return ie
    return ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl)


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
    """R = 93.2 − Id − Ie,eff (A = 0)."""
    return (
        DEFAULT_R0
        - delay_impairment(one_way_delay_ms)
        - effective_equipment_impairment(codec.ie, codec.bpl, loss_pct, burst_r)
    )


@dataclass(frozen=True, slots=True)
class MosModel:
    """The configurable assumptions of a MOS estimate from one capture point."""

    assumed_delay_ms: float = DEFAULT_ASSUMED_DELAY_MS
    jitter_buffer_factor: float = DEFAULT_JITTER_BUFFER_FACTOR
    plc: bool = True  # G.711 with packet-loss concealment (Bpl 25.1) or without (4.3)
    burst_r: float = 1.0

    def mos(self, codec: str, loss_pct: float, mean_jitter_ms: float = 0.0) -> float:
        """MOS-CQE of a stream with this loss percentage and mean jitter."""
        delay = self.assumed_delay_ms + self.jitter_buffer_factor * max(mean_jitter_ms, 0.0)
        r = r_factor(codec_impairment(codec, self.plc), loss_pct, delay, self.burst_r)
        return round(mos_from_r(r), 2)
