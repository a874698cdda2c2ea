"""Tiny models from ONNX text for the pass tests."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from calibench.config import Preset
from calibench.passes.placement import QuantPlan, plan_quantization
from calibench.quant import QuantParams, params_for_range
from calibench.runtime.session import make_session

HEADER = '<ir_version: 8, opset_import: ["" : 17]>'


def model_from_text(text: str, header: str = HEADER) -> onnx.ModelProto:
    model = onnx.parser.parse_model(header + text)
    onnx.checker.check_model(model)
    return model


def weights(shape: tuple[int, ...], seed: int) -> str:
    """ONNX-text initializer values for ``shape``: random, but fixed by ``seed``."""
    values = np.random.default_rng(seed).normal(size=shape).round(3).reshape(-1)
    return ",".join(str(v) for v in values)


def planned(model: onnx.ModelProto) -> tuple[ir.Model, QuantPlan]:
    ir_model = ir.from_proto(model)
    return ir_model, plan_quantization(ir_model)


def params_from_data(
    model: onnx.ModelProto, plan: QuantPlan, feeds: dict[str, np.ndarray]
) -> dict[str, QuantParams]:
    """Params for every planned tensor from its own min/max on ``feeds`` (run in ORT)."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    for name in plan.tensors:
        if name not in present:
            exposed.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    values = dict(zip(plan.tensors, make_session(exposed).run(plan.tensors, feeds), strict=True))
    return {
        t: params_for_range(min(float(v.min()), 0.0), max(float(v.max()), 0.0), Preset.MIXED)
        for t, v in values.items()
    }
