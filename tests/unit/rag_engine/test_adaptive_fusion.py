"""The adaptive fusion rule: its signals, its weight and the fused order, on hand-made runs."""

from __future__ import annotations

import math

import pytest

from rag_engine.fusion import DEFAULT_MODEL, AdaptiveModel, FusionSignals, adaptive, convex, signals

VECTOR = {1: 0.80, 2: 0.60, 3: 0.55, 4: 0.50}
LEXICAL = {3: 12.0, 5: 3.0, 1: 2.0}


def test_signals_are_read_off_the_two_runs() -> None:
    sig = signals(VECTOR, LEXICAL, depth=10)
    assert sig.vector_top == pytest.approx(0.80)
    assert sig.vector_spread == pytest.approx(0.80 - (0.80 + 0.60 + 0.55 + 0.50) / 4)
    assert sig.lexical_spread == pytest.approx(1 - (12 + 3 + 2) / 3 / 12)
    assert sig.overlap == pytest.approx(2 / 4)  # chunks 1 and 3 are in both heads
    assert sig.lexical_found == pytest.approx(3 / 10)


def test_signals_of_empty_runs_are_zero() -> None:
    assert signals({}, {}, depth=10) == FusionSignals(0.0, 0.0, 0.0, 0.0, 0.0)
    flat = signals(VECTOR, {7: 1.0, 8: 1.0}, depth=2)
    assert flat.lexical_spread == 0.0 and flat.overlap == 0.0 and flat.lexical_found == 1.0


def test_weight_is_the_logistic_of_the_signals_clipped() -> None:
    sig = FusionSignals(0.5, 0.1, 0.4, 0.3, 1.0)
    model = AdaptiveModel(intercept=0.2, coefficients=(1.0, 0.0, -2.0, 0.0, 0.5))
    z = 0.2 + 0.5 - 0.8 + 0.5
    assert model.vector_weight(sig) == pytest.approx(1 / (1 + math.exp(-z)))
    clipped = AdaptiveModel(intercept=50.0, coefficients=(0.0,) * 5, low=0.1, high=0.9)
    assert clipped.vector_weight(sig) == 0.9  # and no overflow for a huge z
    assert AdaptiveModel(-50.0, (0.0,) * 5, low=0.1).vector_weight(sig) == 0.1


def test_the_weight_decides_which_list_leads() -> None:
    lexical_first = AdaptiveModel(intercept=-5.0, coefficients=(0.0,) * 5)
    vector_first = AdaptiveModel(intercept=5.0, coefficients=(0.0,) * 5)
    fused, w = adaptive(VECTOR, LEXICAL, 10, lexical_first)
    assert w < 0.01 and max(fused, key=fused.__getitem__) == 3
    fused, w = adaptive(VECTOR, LEXICAL, 10, vector_first)
    assert w > 0.99 and max(fused, key=fused.__getitem__) == 1
    assert set(fused) == set(VECTOR) | set(LEXICAL)


def test_a_fixed_weight_model_is_the_convex_fusion() -> None:
    model = AdaptiveModel(intercept=math.log(0.7 / 0.3), coefficients=(0.0,) * 5)
    fused, w = adaptive(VECTOR, LEXICAL, 10, model)
    assert w == pytest.approx(0.7)
    expected = convex((VECTOR, LEXICAL), (0.7, 0.3))
    assert fused == pytest.approx(expected)


def test_one_empty_side_keeps_the_other_order() -> None:
    fused, w = adaptive(VECTOR, {}, 10)
    assert w == 1.0 and sorted(fused, key=lambda i: -fused[i]) == [1, 2, 3, 4]
    fused, w = adaptive({}, LEXICAL, 10)
    assert w == 0.0 and sorted(fused, key=lambda i: -fused[i]) == [3, 5, 1]


def test_shipped_model_stays_inside_its_bounds() -> None:
    for sig in (FusionSignals(0.2, 0.0, 0.0, 0.0, 0.0), FusionSignals(0.9, 0.3, 0.95, 1.0, 1.0)):
        assert DEFAULT_MODEL.low <= DEFAULT_MODEL.vector_weight(sig) <= DEFAULT_MODEL.high
