"""One INT8 layer sent to FP32 together with what must go with it: the unit that speed-aware
placement times (``calibration.measured_placement``).

Two shapes, the smaller one whenever ONNX Runtime allows it:

* **the layer alone**: it runs in FP32 but keeps its output quantizer, so the layers after it
  stay INT8. This is only sound when none of its inputs stays quantized: ORT quantizes the
  weights of any Conv/Gemm standing between a DequantizeLinear and a QuantizeLinear, so such a
  layer would run in INT8 all the same. A model's input Conv (its input read by nothing else)
  is the classic case: the model input stays float and the QuantizeLinear moves after the Conv;
* **the layer and its readers** (:func:`~calibench.passes.placement.revert_layers`): its output
  quantizer goes, and the INT8 layers reading that output go to FP32 with it; their own output
  quantizers stay, so INT8 resumes after them.
"""

from __future__ import annotations

from dataclasses import replace

from calibench.passes.placement import QuantPlan, prune_quantizers, revert_layers
from calibench.passes.reasons import Reason


def fp32_region(
    plan: QuantPlan, name: str, words: str, code: Reason = Reason.MEASURED_SLOWER
) -> tuple[QuantPlan, list[str]]:
    """``plan`` with ``name`` in FP32 (reason ``code``, told as ``words``) and the layers that
    must follow it; returns that plan and the layers no longer INT8, in graph order."""
    changed = _alone(plan, name, words, code) or revert_layers(plan, {name: words}, code)
    region = [n for n, d in plan.layers.items() if d.int8 and not changed.layers[n].int8]
    return changed, region


def region_parts(plan: QuantPlan, region: list[str]) -> set[str]:
    """The layers whose kernels time a region: its layers and the activations folded into them."""
    members = set(region)
    return members | {f for f, layer in plan.folded.items() if layer in members}


def _alone(plan: QuantPlan, name: str, words: str, code: Reason) -> QuantPlan | None:
    """``name`` in FP32 with its output quantizer kept, or ``None`` where that is unsound."""
    decision = plan.layers[name]
    if not decision.int8 or decision.output_tensor is None:
        return None
    layers = {n: replace(d) for n, d in plan.layers.items()}
    layers[name].stay_fp32(code, words)
    alone = QuantPlan(
        layers, list(plan.tensors), dict(plan.aliases), dict(plan.constants), dict(plan.folded)
    )
    prune_quantizers(alone)
    still = set(alone.tensors)
    if any(t in still for t in decision.activation_inputs if t not in plan.constants):
        return None
    return alone
