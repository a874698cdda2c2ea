from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calibench.runtime.saturation import (
    ConvGeometry,
    conv_columns,
    conv_rows,
    saturation_error,
    saturation_error_conv,
)
from tests.avx2_cpu import needs_avx2_cpu, run_on_avx2


def brute_force(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """exact − saturated, one pair at a time."""
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), dtype=np.int64)
    for i in range(m):
        for j in range(n):
            exact = saturated = 0
            for p in range(0, k, 2):
                s = int(a[i, p]) * int(b[p, j])
                if p + 1 < k:
                    s += int(a[i, p + 1]) * int(b[p + 1, j])
                exact += s
                saturated += min(max(s, -32768), 32767)
            out[i, j] = exact - saturated
    return out


@pytest.mark.parametrize("k", [6, 7])
def test_pairs_saturate_in_16_bits(k: int) -> None:
    rng = np.random.default_rng(k)
    a = rng.integers(100, 256, (5, k)).astype(np.uint8)
    b = rng.choice([-127, -90, 3, 100, 127], (k, 4)).astype(np.int8)
    error, peak = saturation_error(a, b)
    assert np.array_equal(error, brute_force(a, b))
    assert error.any() and peak > 32767


def test_seven_bit_weights_never_saturate() -> None:
    a = np.full((3, 16), 255, dtype=np.uint8)
    b = np.full((16, 2), 63, dtype=np.int8)
    error, peak = saturation_error(a, b)
    assert not error.any() and peak == 2 * 255 * 63


def test_conv_rows_are_channels_fastest_with_zero_point_padding() -> None:
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(1, 2, 3, 3)
    rows = conv_rows(x, ConvGeometry((2, 2), pads=(1, 1, 0, 0)), pad_value=128)
    assert rows.shape == (1, 9, 8)
    # first output: taps (-1,-1) (-1,0) (0,-1) (0,0); channels side by side at each tap
    assert rows[0, 0].tolist() == [128, 128, 128, 128, 128, 128, 0, 9]
    w = np.arange(3 * 2 * 2 * 2).reshape(3, 2, 2, 2)
    assert conv_columns(w, 1)[0][:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_depthwise_convolutions_are_exact() -> None:
    x = np.full((1, 4, 5, 5), 255, dtype=np.uint8)
    w = np.full((4, 1, 3, 3), 127, dtype=np.int8)
    error = saturation_error_conv(x, w, ConvGeometry((3, 3), group=4), 0)
    assert not error.any()


def _qdq_model(
    layer: onnx.NodeProto,
    stored: np.ndarray,
    w_zero: np.ndarray,
    w_axis: int,
    zp: int,
    shape: tuple[int, ...],
    s_out: float,
    z_out: int,
) -> onnx.ModelProto:
    """uint8 input → DequantizeLinear → ``layer`` (reading "xd" and weights "wd", writing "c")
    → QuantizeLinear → uint8 output, with per-channel weights of scale 1."""
    inits = [
        numpy_helper.from_array(stored, "w"),
        numpy_helper.from_array(w_zero, "wz"),
        numpy_helper.from_array(np.ones(w_zero.size, np.float32), "ws"),
        numpy_helper.from_array(np.array(1.0, np.float32), "s"),
        numpy_helper.from_array(np.array(zp, np.uint8), "z"),
        numpy_helper.from_array(np.array(s_out, np.float32), "so"),
        numpy_helper.from_array(np.array(z_out, np.uint8), "zo"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=w_axis),
        layer,
        helper.make_node("QuantizeLinear", ["c", "so", "zo"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _qdq_conv(
    w: np.ndarray,
    zp: int,
    geometry: dict[str, Any],
    shape: tuple[int, ...],
    s_out: float,
    z_out: int,
    unsigned_weights: bool = False,
) -> onnx.ModelProto:
    cout = w.shape[0]
    if unsigned_weights:
        stored = (w.astype(np.int16) + 128).astype(np.uint8)
        zero = np.full(cout, 128, np.uint8)
    else:
        stored, zero = w, np.zeros(cout, np.int8)
    conv = helper.make_node("Conv", ["xd", "wd"], ["c"], **geometry)
    return _qdq_model(conv, stored, zero, 0, zp, shape, s_out, z_out)


CASES = [
    dict(cin=32, cout=16, k=1, stride=1, pad=0, group=1),  # ORT's ConvSym path
    dict(cin=3, cout=8, k=3, stride=2, pad=1, group=1),  # odd channels: pairs straddle taps
    dict(cin=8, cout=8, k=3, stride=1, pad=1, group=2),
    dict(cin=1, cout=4, k=3, stride=1, pad=1, group=1),
]


@needs_avx2_cpu
@pytest.mark.parametrize("zp", [0, 128])
def test_the_model_matches_onnx_runtimes_avx2_kernels(tmp_path: Path, zp: int) -> None:
    rng = np.random.default_rng(zp)
    for index, case in enumerate(CASES):
        cin, cout, k = case["cin"], case["cout"], case["k"]
        x = rng.integers(140, 256, (2, cin, 7, 7)).astype(np.uint8)
        w = rng.choice([-127, -115, 4, 110, 127], (cout, cin // case["group"], k, k))
        w = w.astype(np.int8)
        attrs = {"strides": [case["stride"]] * 2, "pads": [case["pad"]] * 4, "group": case["group"]}
        geometry = ConvGeometry.from_attributes(attrs, w.shape, (7, 7))
        columns = conv_columns(w.astype(np.int64), geometry.group)
        rows = conv_rows(x.astype(np.int64) - zp, geometry, 0)
        exact = np.concatenate([rows[g] @ columns[g] for g in range(geometry.group)], axis=1)
        exact = exact.reshape(2, -1, cout).transpose(0, 2, 1)
        error = saturation_error_conv(x, w, geometry, zp)
        assert error.any(), case
        s_out = float(exact.max() - exact.min()) / 255 * 1.5
        z_out = int(np.clip(round(-exact.min() / s_out), 0, 255))
        for unsigned in (False, True):
            name = f"case{index}-{'u8' if unsigned else 's8'}"
            model = _qdq_conv(w, zp, attrs, x.shape, s_out, z_out, unsigned)
            onnx.save(model, tmp_path / f"{name}.onnx")
            got = run_on_avx2(tmp_path / f"{name}.onnx", {"x": x}, tmp_path)[0]
            got = got.reshape(2, cout, -1).astype(np.int64)
            # u8×s8 saturates exactly as modelled; u8×u8 (uint8 weights) is exact.
            acc = exact if unsigned else exact - error
            want = np.clip(np.round(acc / s_out) + z_out, 0, 255)
            assert np.array_equal(got, want), name


def _qdq_matmul(
    w: np.ndarray, zp: int, op: str, shape: tuple[int, ...], s_out: float, z_out: int
) -> onnx.ModelProto:
    """DQ → Gemm (transB=1, weights N×K) or MatMul (weights K×N) → Q."""
    n = w.shape[0] if op == "Gemm" else w.shape[1]
    layer = (
        helper.make_node("Gemm", ["xd", "wd"], ["c"], transB=1)
        if op == "Gemm"
        else helper.make_node("MatMul", ["xd", "wd"], ["c"])
    )
    axis = 0 if op == "Gemm" else 1
    return _qdq_model(layer, w, np.zeros(n, np.int8), axis, zp, shape, s_out, z_out)


@needs_avx2_cpu
@pytest.mark.parametrize(("op", "k"), [("Gemm", 16), ("Gemm", 15), ("MatMul", 33)])
def test_gemm_and_matmul_saturate_as_modelled(tmp_path: Path, op: str, k: int) -> None:
    rng = np.random.default_rng(k)
    zp, n = 128, 6
    shape = (5, k) if op == "Gemm" else (2, 3, k)
    x = rng.integers(140, 256, shape).astype(np.uint8)
    w = rng.choice([-127, -100, 4, 120, 127], (n, k) if op == "Gemm" else (k, n)).astype(np.int8)
    columns = (w.T if op == "Gemm" else w).astype(np.int64)
    rows = x.reshape(-1, k)
    exact = (rows.astype(np.int64) - zp) @ columns
    error, _ = saturation_error(rows, columns.astype(np.int8))
    assert error.any()
    s_out = float(exact.max() - exact.min()) / 255 * 1.5
    z_out = int(np.clip(round(-exact.min() / s_out), 0, 255))
    onnx.save(_qdq_matmul(w, zp, op, shape, s_out, z_out), tmp_path / f"{op}.onnx")
    got = run_on_avx2(tmp_path / f"{op}.onnx", {"x": x}, tmp_path)[0].reshape(-1, n)
    want = np.clip(np.round((exact - error) / s_out) + z_out, 0, 255)
    assert np.array_equal(got, want)


@needs_avx2_cpu
def test_depthwise_is_exact_on_the_avx2_kernels(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    c, zp = 16, 128
    x = rng.integers(150, 256, (1, c, 9, 9)).astype(np.uint8)
    w = rng.choice([-127, 120, 127], (c, 1, 3, 3)).astype(np.int8)
    attrs = {"pads": [1, 1, 1, 1], "group": c}
    geometry = ConvGeometry.from_attributes(attrs, w.shape, (9, 9))
    assert not saturation_error_conv(x, w, geometry, zp).any()
    columns = conv_columns(w.astype(np.int64), c)
    rows = conv_rows(x.astype(np.int64) - zp, geometry, 0)
    exact = np.concatenate([rows[g] @ columns[g] for g in range(c)], axis=1)
    exact = exact.reshape(1, -1, c).transpose(0, 2, 1)
    s_out = float(exact.max() - exact.min()) / 255 * 1.5
    z_out = int(np.clip(round(-exact.min() / s_out), 0, 255))
    onnx.save(_qdq_conv(w, zp, attrs, x.shape, s_out, z_out), tmp_path / "dw.onnx")
    got = run_on_avx2(tmp_path / "dw.onnx", {"x": x}, tmp_path)[0].reshape(1, c, -1)
    assert np.array_equal(got, np.clip(np.round(exact / s_out) + z_out, 0, 255))
