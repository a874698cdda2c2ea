"""The quantization arithmetic: uint8 activation parameters, int8 weights, int32 biases.

One module that the graph passes (which write these numbers into the model) and the calibration
methods (which choose ranges and predict what the kernels will compute) both import, so that
the model and the predictions never round differently.

Activations are always executed as uint8 (ONNX Runtime's fast x86 path; int8 activations run
about 2× slower there). "Symmetric" therefore means a zero point of 0 for non-negative tensors
and 128 for signed ones; "asymmetric" means the zero point follows the tensor's own minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibench.config import Preset
from calibench.errors import ModelError

MIN_SCALE = 1e-8


@dataclass(frozen=True)
class QuantParams:
    scale: float
    zero_point: int
    """uint8 zero point."""

    @property
    def low(self) -> float:
        return (0 - self.zero_point) * self.scale

    @property
    def high(self) -> float:
        return (255 - self.zero_point) * self.scale


def params_for_range(low: float, high: float, preset: Preset, bits: int = 8) -> QuantParams:
    """uint8 params for [low, high]; ``bits=7`` maps the range onto 0..127 only (the stored type
    stays uint8), so that no u8×s8 pair of products can overflow 16 bits."""
    top = (1 << bits) - 1
    if low >= 0:
        return QuantParams(max(high / top, MIN_SCALE), 0)
    if preset is Preset.PERFORMANCE:
        span = max(-low, high)
        half = 1 << (bits - 1)
        return QuantParams(max(span / (half - 1), MIN_SCALE), half)
    scale = max((high - low) / top, MIN_SCALE)
    zero_point = int(np.clip(round(-low / scale), 0, top))
    return QuantParams(scale, zero_point)


def constant_params(values: np.ndarray) -> QuantParams:
    """Per-tensor asymmetric params that hold a constant's own values."""
    low = min(float(values.min()), 0.0)
    high = max(float(values.max()), 0.0)
    return params_for_range(low, high, Preset.MIXED)


def uint8_codes(values: np.ndarray, params: QuantParams) -> np.ndarray:
    """What QuantizeLinear stores for ``values`` (round half to even, saturate to 0..255), as
    floats so that callers can compute with the codes before casting."""
    return np.clip(np.round(values / params.scale) + params.zero_point, 0, 255)


def quantize_weights(weight: np.ndarray, axis: int, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8, narrow range −127..127 (per-channel absolute maximum);
    ``bits=7``: −63..63, which no u8×s8 pair of products can push past 16 bits."""
    top = (1 << (bits - 1)) - 1
    if not np.isfinite(weight).all():
        raise ModelError("the model's weights hold NaN or infinite values: it cannot be quantized")
    moved = np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)
    absmax = np.abs(moved).max(axis=1).astype(np.float64)
    scale = np.where(absmax > 0, absmax / top, 1.0)
    q = np.clip(np.round(weight / scale.reshape(_channel_shape(weight.ndim, axis))), -top, top)
    return q.astype(np.int8), scale.astype(np.float32)


def dequantize_weights(q: np.ndarray, scale: np.ndarray, axis: int) -> np.ndarray:
    """The float weights the integer kernel effectively multiplies with."""
    return (q * scale.reshape(_channel_shape(q.ndim, axis))).astype(np.float32)


def bias_scale(input_scale: float, weight_scale: np.ndarray) -> np.ndarray:
    """The scale of an int32 bias: input_scale × weight_scale per output channel (float64)."""
    return (np.float64(input_scale) * weight_scale.astype(np.float64)).reshape(-1)


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scale: np.ndarray) -> np.ndarray:
    """int32 bias with scale input_scale × weight_scale (what QLinearConv adds in integers)."""
    limit = np.iinfo(np.int32).max
    scaled = np.round(bias.astype(np.float64) / bias_scale(input_scale, weight_scale))
    return np.clip(scaled, -limit, limit).astype(np.int32)


def _channel_shape(ndim: int, axis: int) -> list[int]:
    shape = [1] * ndim
    shape[axis] = -1
    return shape
