"""Fast bias correction (the POT/NNCF reference method), all layers in one pass.

For each INT8 Conv/Gemm the model is given a twin of that layer that reads the quantized copy of
the layer's FP32 input and the dequantized INT8 weights (``passes.add_bias_twins``). The
per-channel mean of ``fp32_output − twin_output`` over the calibration data is the systematic
error quantization adds to that layer; adding it to the bias removes it. Every layer is measured
against FP32 inputs, so the corrections are independent and one pass computes them all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnx_ir as ir

from calibench.calibration.statistics import Progress
from calibench.passes.add_bias_twins import AddBiasTwinsPass
from calibench.passes.placement import QuantPlan
from calibench.quant import QuantParams
from calibench.runtime.inputs import BatchReader, fit_reader
from calibench.runtime.session import make_session


def bias_shifts(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: dict[str, QuantParams],
    reader: BatchReader,
    indices: Sequence[int],
    progress: Progress | None = None,
    threads: int | None = None,
    memory_limit: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-layer additive bias corrections, in FP32 units."""
    model = ir.from_proto(fp32)
    adding = AddBiasTwinsPass(plan, params)
    if not adding(model).modified:
        return {}
    outputs = adding.outputs
    session = make_session(ir.to_proto(model), threads=threads, lean=True)
    names = list(outputs.values())
    reader = fit_reader(reader, indices, lambda feeds: session.run(names, feeds), memory_limit)
    sums = {layer: np.zeros(0) for layer in outputs}
    seen = 0
    for batch_indices, feeds in reader.batches(indices):
        results = session.run(list(outputs.values()), feeds)
        for layer, mean in zip(outputs, results, strict=True):
            weighted = mean.astype(np.float64) * len(batch_indices)
            sums[layer] = weighted if sums[layer].size == 0 else sums[layer] + weighted
        seen += len(batch_indices)
        if progress:
            progress(seen, len(indices))
    return {layer: total / max(seen, 1) for layer, total in sums.items()}


def output_sqnr(
    reference: list[list[np.ndarray]], session_outputs: list[list[np.ndarray]]
) -> float:
    """Signal-to-quantization-noise ratio (dB) of all model outputs against FP32."""
    signal = noise = 0.0
    for ref_batch, got_batch in zip(reference, session_outputs, strict=True):
        for ref, got in zip(ref_batch, got_batch, strict=True):
            ref64 = ref.astype(np.float64)
            signal += float((ref64**2).sum())
            noise += float(((ref64 - got.astype(np.float64)) ** 2).sum())
    return float(10 * np.log10(max(signal, 1e-30) / max(noise, 1e-30)))


def depth_prefixes(
    shifts: dict[str, np.ndarray], order: Sequence[str]
) -> list[dict[str, np.ndarray]]:
    """Corrections for the first 0, ¼, ½, ¾ and all of the layers in graph order.

    Each layer's correction is exact for FP32 inputs, but deep in a network the inputs carry
    the error of every layer above, and corrections measured there can add error instead of
    removing it (seen on MobileNetV2's last blocks). Comparing these five candidates on the
    model's outputs keeps the correction only as deep as it helps.
    """
    layers = [name for name in order if name in shifts]
    cuts = sorted({round(len(layers) * f) for f in (0, 0.25, 0.5, 0.75, 1.0)})
    return [{name: shifts[name] for name in layers[:cut]} for cut in cuts]
