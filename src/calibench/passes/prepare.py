"""The FP32 model as calibench quantizes it, and the placement decided on it.

Constants become initializers, shape computations over static dimensions fold to constants
(``SimplifyPass``), a zero Pad before a Conv joins the Conv's pads, Identity nodes go,
BatchNormalization folds into the Conv before it, and every node gets a name. The INT8 model is
built from this graph, and the layer-error report runs the same preparation on the FP32 side so
that tensor names line up.
"""

from __future__ import annotations

import onnx
import onnx_ir as ir
from onnx_ir.passes import common

from calibench.passes.fold_batchnorm import FoldBatchNormPass
from calibench.passes.fold_pad import FoldPadIntoConvPass
from calibench.passes.placement import QuantPlan, plan_quantization
from calibench.passes.simplify import SimplifyPass


def prepare_fp32(model: onnx.ModelProto) -> tuple[onnx.ModelProto, QuantPlan]:
    """Simplify, fold BatchNorm, name nodes, and decide placement."""
    ir_model = ir.from_proto(model)
    ir.passes.Sequential(
        common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        SimplifyPass(),
        FoldPadIntoConvPass(),
        common.IdentityEliminationPass(),
        FoldBatchNormPass(),
        common.RemoveUnusedNodesPass(),
    )(ir_model)
    plan = plan_quantization(ir_model)
    return ir.to_proto(ir_model), plan
