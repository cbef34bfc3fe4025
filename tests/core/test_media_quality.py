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
    assert codec_impairment("opus") == G711_PLC  # wideband: scored as G.711 with PLC (documented)


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
    codec=st.sampled_from(["PCMA", "PCMU", "G729", "G723", "G722", "opus", "whatever"]),
)
def test_mos_is_bounded_and_monotone_in_loss(loss: float, jitter: float, codec: str) -> None:
    model = MosModel()
    mos = model.mos(codec, loss, jitter)
    assert 1.0 <= mos <= 4.5
    assert model.mos(codec, min(loss + 5.0, 100.0), jitter) <= mos
