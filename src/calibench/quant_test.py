import numpy as np
import pytest

from calibench.errors import ModelError
from calibench.quant import (
    QuantParams,
    constant_params,
    dequantize_weights,
    quantize_bias,
    quantize_weights,
    uint8_codes,
)


def test_weights_are_symmetric_narrow_range_per_channel() -> None:
    w = np.array([[1.0, -0.5], [0.01, 0.02]], dtype=np.float32)
    q, scale = quantize_weights(w, axis=0)
    assert q.dtype == np.int8 and q.min() >= -127 and q.max() == 127
    np.testing.assert_allclose(scale, [1 / 127, 0.02 / 127], rtol=1e-6)
    np.testing.assert_allclose(q * scale[:, None], w, atol=scale.max() / 2)


def test_bias_is_int32_at_input_times_weight_scale() -> None:
    q = quantize_bias(np.array([0.5, -0.25]), 0.01, np.array([0.1, 0.05], dtype=np.float32))
    assert q.dtype == np.int32 and list(q) == [500, -500]


def test_weights_that_are_not_finite_are_refused() -> None:
    w = np.ones((2, 3), dtype=np.float32)
    w[1, 2] = np.nan
    with pytest.raises(ModelError, match="NaN or infinite"):
        quantize_weights(w, axis=0)


def test_uint8_codes_round_half_to_even_and_saturate() -> None:
    p = QuantParams(0.5, 10)
    codes = uint8_codes(np.array([0.25, 0.75, -100.0, 1000.0]), p)
    assert list(codes) == [10, 12, 0, 255]  # 0.5 → 0 and 1.5 → 2, like QuantizeLinear


def test_constants_are_held_by_their_own_range() -> None:
    values = np.array([-1.0, 3.0])
    p = constant_params(values)
    assert p == QuantParams(4.0 / 255, 64) and p.low <= -1.0 and p.high >= 3.0 - p.scale


def test_dequantized_weights_are_within_half_a_step() -> None:
    w = np.random.default_rng(0).normal(size=(4, 3, 2, 2)).astype(np.float32)
    q, scale = quantize_weights(w, axis=0, bits=7)
    assert np.abs(q).max() == 63
    back = dequantize_weights(q, scale, axis=0)
    assert back.dtype == np.float32
    assert (np.abs(back - w) <= scale.reshape(-1, 1, 1, 1) / 2 + 1e-7).all()
