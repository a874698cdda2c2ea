"""A candidate model: the Default model with some layers reverted to FP32.

A plain object, not a closure, so that it travels: a Ray actor builds and scores the ranking's
candidates itself from one copy of it in the object store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from calibench.passes.insert_qdq import insert_qdq
from calibench.passes.placement import QuantPlan, revert_layers
from calibench.quant import QuantParams


@dataclass(frozen=True)
class Builder:
    fp32: onnx.ModelProto
    plan: QuantPlan
    """The Default model's plan."""
    params: dict[str, QuantParams]
    shifts: dict[str, np.ndarray]

    def __call__(
        self, reverted: Sequence[str], costs: dict[str, float]
    ) -> tuple[QuantPlan, onnx.ModelProto]:
        reasons = {name: f"reverted: cost {costs.get(name, 0.0):.2f} points" for name in reverted}
        plan = revert_layers(self.plan, reasons)
        return plan, insert_qdq(self.fp32, plan, self.params, bias_shifts=self.shifts)
