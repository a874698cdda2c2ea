"""What ONNX Runtime's u8×s8 GEMM computes on a CPU without VNNI, reproduced in numpy.

On AVX2 (and AVX-512BW without VNNI) ORT's integer GEMM multiplies the raw uint8 activations
(zero point *not* subtracted; it is corrected afterwards from the weight sums) by the int8
weights and adds each pair of adjacent products along the reduction axis into a saturating
16-bit integer (``vpmaddubsw``), then sums the pairs in 32 bits. The reduction axis of a Conv is
its im2col row in NHWC order (kernel row, kernel column, input channel: channels fastest), and
padding holds the activation's zero point. Depthwise convolutions use another kernel that is
exact. ``saturation_test`` checks this model bit for bit against the real kernels under an
emulated AVX2 CPU.

Only the *error* is computed here: ``exact − saturated`` per output, from the few pairs that
can overflow at all (``|w₀| + |w₁| > 128``), so the cost stays near one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INT16_MAX = 32767
INT16_MIN = -32768
CHUNK = 1 << 22
"""Elements of a (rows × hot pairs) block processed at once."""


@dataclass(frozen=True)
class ConvGeometry:
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    """top, left, bottom, right"""
    dilations: tuple[int, int] = (1, 1)
    group: int = 1

    @classmethod
    def from_attributes(
        cls, attrs: dict[str, object], weight_shape: tuple[int, ...], spatial: tuple[int, int]
    ) -> ConvGeometry:
        kernel = (int(weight_shape[2]), int(weight_shape[3]))
        strides = tuple(int(v) for v in attrs.get("strides", (1, 1)))  # type: ignore[attr-defined]
        dilations = tuple(int(v) for v in attrs.get("dilations", (1, 1)))  # type: ignore[attr-defined]
        pads = tuple(int(v) for v in attrs.get("pads", (0, 0, 0, 0)))  # type: ignore[attr-defined]
        auto_pad = attrs.get("auto_pad", "NOTSET")
        if isinstance(auto_pad, bytes):
            auto_pad = auto_pad.decode()
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            computed = []
            for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
                out = -(-size // s)
                total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
                small, big = total // 2, total - total // 2
                computed.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
            pads = (computed[0][0], computed[1][0], computed[0][1], computed[1][1])
        elif auto_pad == "VALID":
            pads = (0, 0, 0, 0)
        return cls(
            kernel,
            (strides[0], strides[1]),
            (pads[0], pads[1], pads[2], pads[3]),
            (dilations[0], dilations[1]),
            int(attrs.get("group", 1)),  # type: ignore[call-overload]
        )

    def is_depthwise(self, in_channels: int, out_channels: int) -> bool:
        """ORT's depthwise kernel (exact) takes one input and one output channel per group."""
        return self.group == in_channels == out_channels and self.group > 1


def conv_rows(x: np.ndarray, geometry: ConvGeometry, pad_value: float) -> np.ndarray:
    """im2col of an NCHW batch: (groups, N·OH·OW, KH·KW·C/groups), channels fastest."""
    n, c, h, w = x.shape
    kh, kw = geometry.kernel
    top, left, bottom, right = geometry.pads
    (sh, sw), (dh, dw) = geometry.strides, geometry.dilations
    padded = np.full((n, c, h + top + bottom, w + left + right), pad_value, dtype=x.dtype)
    padded[:, :, top : top + h, left : left + w] = x
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    rows = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = padded[
                :,
                :,
                i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                j * dw : j * dw + sw * (ow - 1) + 1 : sw,
            ]
            rows[:, :, :, i, j, :] = window.transpose(0, 2, 3, 1)
    g = geometry.group
    per = c // g
    grouped = rows.reshape(n * oh * ow, kh, kw, g, per)
    return np.ascontiguousarray(grouped.transpose(3, 0, 1, 2, 4)).reshape(g, n * oh * ow, -1)


def conv_columns(weight: np.ndarray, group: int) -> np.ndarray:
    """Conv weights (Cout, C/g, KH, KW) as (groups, KH·KW·C/g, Cout/g), matching ``conv_rows``."""
    cout = weight.shape[0]
    per = cout // group
    parts = [weight[k * per : (k + 1) * per].transpose(2, 3, 1, 0) for k in range(group)]
    return np.stack([p.reshape(-1, per) for p in parts])


def saturation_error(a: np.ndarray, b: np.ndarray, watch: float = 0.5) -> tuple[np.ndarray, int]:
    """``exact − saturated`` for ``a @ b`` with a = raw uint8 rows (M×K), b = int8 (K×N), and
    the largest pair sum seen among pairs that can reach ``watch`` × 32 767.

    The saturated product sums ``clip(a[2i]·b[2i] + a[2i+1]·b[2i+1], −32768, 32767)``; an odd K
    pairs the last element with a zero. Only pairs that can come near the limit are visited."""
    m, k = a.shape
    n = b.shape[1]
    error = np.zeros((m, n), dtype=np.int64)
    peak = 0
    if k % 2:
        a = np.concatenate([a, np.zeros((m, 1), dtype=a.dtype)], axis=1)
        b = np.concatenate([b, np.zeros((1, n), dtype=b.dtype)], axis=0)
    b0 = b[0::2].astype(np.int32)
    b1 = b[1::2].astype(np.int32)
    a0 = a[:, 0::2].astype(np.int32)
    a1 = a[:, 1::2].astype(np.int32)
    reach = a0.max(axis=0, initial=0)[:, None] * np.abs(b0) + a1.max(axis=0, initial=0)[
        :, None
    ] * np.abs(b1)
    pair, column = np.nonzero(reach > watch * INT16_MAX)
    if pair.size == 0:
        return error, peak
    step = max(1, CHUNK // max(m, 1))
    for start in range(0, pair.size, step):
        p, c = pair[start : start + step], column[start : start + step]
        sums = a0[:, p] * b0[p, c] + a1[:, p] * b1[p, c]
        peak = max(peak, int(np.abs(sums).max(initial=0)))
        excess = sums - np.clip(sums, INT16_MIN, INT16_MAX)
        touched = np.nonzero(excess.any(axis=0))[0]
        if touched.size:
            np.add.at(error.T, c[touched], excess[:, touched].T)
    return error, peak


def saturation_error_conv(
    x_u8: np.ndarray, weight_i8: np.ndarray, geometry: ConvGeometry, zero_point: int
) -> np.ndarray:
    """``exact − saturated`` accumulators of a QLinearConv, as (N, Cout, OH·OW). Zero for a
    depthwise convolution (its kernel is exact)."""
    n, c = x_u8.shape[:2]
    cout = weight_i8.shape[0]
    rows = conv_rows(x_u8, geometry, zero_point)
    oh_ow = rows.shape[1] // n
    if geometry.is_depthwise(c, cout):
        return np.zeros((n, cout, oh_ow), dtype=np.int64)
    columns = conv_columns(weight_i8, geometry.group)
    parts = [saturation_error(rows[g], columns[g])[0] for g in range(geometry.group)]
    error = np.concatenate(parts, axis=1)
    return error.reshape(n, oh_ow, cout).transpose(0, 2, 1)
