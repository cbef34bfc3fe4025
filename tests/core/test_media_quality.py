"""E-model (ITU-T G.107) MOS: reference points and hand-computed impairments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.media_quality import (
    G711_NO_PLC,
    G711_PLC,
    G729A,
    MosModel,
    codec_impairment,
    delay_impairment,
    effective_equipment_impairment,
    mos_from_r,
    r_factor,
)


@pytest.mark.parametrize(
    ("r", "mos"),
    [
        # G.107 Annex B: MOS = 1 + 0.035R + R(R−60)(100−R)·7e-6
        (93.2, 4.409285824),  # default R → 1 + 3.262 + 93.2·33.2·6.8·7e-6
        (50.0, 2.575),  # 1 + 1.75 − 0.175
        (60.0, 3.1),  # the cubic term vanishes
        (100.0, 4.5),
        (120.0, 4.5),
        (0.0, 1.0),
        (-5.0, 1.0),
    ],
)
def test_r_to_mos_reference_points(r: float, mos: float) -> None:
    assert mos_from_r(r) == pytest.approx(mos, abs=1e-9)


def test_effective_equipment_impairment_uses_percent() -> None:
    # G.711 with PLC, 1 % random loss: 95·1/(1 + 25.1) = 3.63985
    assert effective_equipment_impairment(0.0, 25.1, 1.0) == pytest.approx(95 / 26.1)
    # G.729A, 2 %: 11 + 84·2/(2 + 19) = 19 exactly
    assert effective_equipment_impairment(11.0, 19.0, 2.0) == pytest.approx(19.0)
    # a fraction (0.01) fed where percent is expected would nearly not hurt: the bug DOMAIN warns of
    assert effective_equipment_impairment(0.0, 25.1, 0.01) < 0.04
    # no loss: Ie only; over 100 % is clipped
    assert effective_equipment_impairment(11.0, 19.0, 0.0) == 11.0
    assert effective_equipment_impairment(0.0, 4.3, 250.0) == effective_equipment_impairment(0.0, 4.3, 100.0)


def test_delay_impairment() -> None:
    assert delay_impairment(0.0) == 0.0
    assert delay_impairment(100.0) == 0.0  # mT = 100 ms
    # Ta = 200 ms: X = 1 → 25·(2^(1/6) − 3·(1 + 3^-6)^(1/6) + 2)
    expected = 25 * (2 ** (1 / 6) - 3 * (1 + 3**-6) ** (1 / 6) + 2)
    assert delay_impairment(200.0) == pytest.approx(expected)
    assert delay_impairment(200.0) == pytest.approx(3.0444, abs=1e-4)
    assert delay_impairment(400.0) > delay_impairment(300.0) > delay_impairment(200.0)


def test_codec_table_and_plc_switch() -> None:
    assert codec_impairment("PCMA") == G711_PLC
    assert codec_impairment("pcmu", plc=False) == G711_NO_PLC
    assert codec_impairment("G729A") == G729A
    assert codec_impairment("G.723").ie == 15.0
    assert codec_impairment("opus") is None  # no planning value: no MOS rather than a made-up one


def test_mos_model_examples() -> None:
    model = MosModel()
    assert model.mos("PCMA", 0.0) == 4.41  # R = 93.2
    # 1 % loss, G.711 + PLC: R = 93.2 − 3.63985 = 89.56 → 4.33
    assert r_factor(G711_PLC, 1.0) == pytest.approx(89.56015, abs=1e-5)
    assert model.mos("PCMA", 1.0) == 4.33
    # G.729A, no loss: R = 82.2 → 4.10
    assert model.mos("G729A", 0.0) == 4.10
    # without PLC the same loss hurts much more (Bpl 4.3)
    assert MosModel(plc=False).mos("PCMU", 1.0) < model.mos("PCMU", 1.0) - 0.3
    # jitter adds buffer delay: 100 ms assumed + 2·60 ms → Idd(220 ms) > 0
    assert model.mos("PCMA", 0.0, mean_jitter_ms=60.0) < 4.41


@given(
    loss=st.floats(min_value=0, max_value=100, allow_nan=False),
    jitter=st.floats(min_value=0, max_value=1000, allow_nan=False),
    codec=st.sampled_from(["PCMA", "PCMU", "G729", "G729A", "G723", "G722", "GSM", "G726-32", "opus", "whatever"]),
)
def test_mos_is_bounded_and_monotone_in_loss(loss: float, jitter: float, codec: str) -> None:
    model = MosModel()
    mos = model.mos(codec, loss, jitter)
    if mos is None:
        assert model.unavailable(codec, loss)
        return
    assert 1.0 <= mos <= 4.5 and model.unavailable(codec, loss) is None
    worse = model.mos(codec, min(loss + 5.0, 100.0), jitter)
    assert worse is None or worse <= mos


@pytest.mark.parametrize(("codec", "ie", "mos"), [
    # R = 93.2 − Ie (no loss, 100 ms assumed delay: Idd = 0) → G.107 Annex B, hand-checked
    ("G726-40", 2.0, 4.37),  # R 91.2
    ("G726-32", 7.0, 4.24),  # R 86.2
    ("G721", 7.0, 4.24),  # static payload type 2 is G.726-32
    ("G726-24", 25.0, 3.51),  # R 68.2: 1 + 2.387 + 68.2·8.2·31.8·7e-6 = 3.5115
    ("G726-16", 50.0, 2.22),  # R 43.2: 1 + 1.512 + 43.2·(−16.8)·56.8·7e-6 = 2.2234
    ("GSM", 20.0, 3.74),  # GSM 06.10 full rate, R 73.2
    ("G728", 7.0, 4.24),
    ("GSM-EFR", 5.0, 4.29),
])
def test_codecs_without_bpl_score_by_ie_when_nothing_is_lost(codec: str, ie: float, mos: float) -> None:
    found = codec_impairment(codec)
    assert found is not None and found.ie == ie and found.bpl is None
    assert MosModel().mos(codec, 0.0) == mos
    # with loss there is no Bpl to weigh it: no MOS, and the reason says so
    assert MosModel().mos(codec, 0.5) is None
    assert "packet-loss robustness (Bpl)" in (MosModel().unavailable(codec, 0.5) or "")


def test_codecs_score_differently() -> None:
    """GSM, iLBC, Speex and G.726 at every rate no longer all read as G.711's 4.41."""
    model = MosModel()
    scores = {c: model.mos(c, 0.0) for c in ("PCMA", "GSM", "G726-16", "G726-24", "G726-32", "G726-40")}
    assert len(set(scores.values())) == len(scores) and max(scores, key=lambda c: scores[c] or 0) == "PCMA"
    for codec in ("iLBC", "speex", "SPEEX", "opus", "SILK", "AMR", "AMR-WB", "G7221", "L16"):
        assert model.mos(codec, 0.0) is None
        assert model.unavailable(codec, 0.0) == f"no E-model equipment impairment (Ie) published for {codec}"
    assert model.unavailable("telephone-event", 0.0) == "telephone-event carries no speech"
    assert "without an SDP rtpmap" in (model.unavailable("PT96", 0.0) or "")


def test_g722_on_the_wideband_scale() -> None:
    g722 = codec_impairment("G722")
    assert g722 is not None and g722.wideband and g722.ie == 13.0
    # R_WB = 129 − 13 = 116; 116 / 1.29 = 89.92 → 1 + 3.1473 + 89.92·29.92·10.08·7e-6 = 4.337
    assert r_factor(g722, 0.0) == pytest.approx(116.0)
    assert MosModel().mos("G722", 0.0) == 4.34
    # the wideband Ie,eff runs up to 129, not 95
    assert effective_equipment_impairment(13.0, 10.0, 100.0, top=129.0) == pytest.approx(13 + 116 * 100 / 110)
