"""Let ONNX Runtime hand back per-sample minima and maxima of chosen tensors, not the tensors.

Rule: for each named tensor, add ``ReduceMin`` and ``ReduceMax`` over every axis but the batch
axis (``per_sample``; over all axes when the rank is unknown or below 2, or when a batch holds
one sample) and make ``<tensor>::min`` and ``<tensor>::max`` graph outputs. With ``raw=True`` the
tensors themselves become graph outputs instead (for histograms, which need the values).

The statistics pass uses this to keep memory flat: two numbers per sample and tensor come back,
however large the activations are. The reductions sit right after the tensor's producer, so ORT
frees each activation as soon as the network has moved past it.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx
import onnx_ir as ir

from calibench.passes import _build

REDUCTIONS = (("ReduceMin", "min"), ("ReduceMax", "max"))


class AddReductionOutputsPass(ir.passes.InPlacePass):
    def __init__(self, tensors: Sequence[str], raw: bool = False, per_sample: bool = True) -> None:
        super().__init__()
        self.tensors = list(tensors)
        self.raw = raw
        self.per_sample = per_sample

    @property
    def outputs(self) -> list[str]:
        """The graph outputs to fetch, in order: per tensor its minimum and maximum (or the
        tensor itself when ``raw``)."""
        if self.raw:
            return list(self.tensors)
        return [f"{t}::{suffix}" for t in self.tensors for _, suffix in REDUCTIONS]

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        values = _build.values_by_name(graph)
        if self.raw:
            for tensor in self.tensors:
                if not values[tensor].is_graph_output():
                    graph.outputs.append(values[tensor])
            return ir.passes.PassResult(model, modified=bool(self.tensors))
        ranks = _ranks(model)
        branches = _build.SideBranches(graph)
        for tensor in self.tensors:
            rank = ranks.get(tensor, 0)
            axes = list(range(1, rank)) if self.per_sample and rank >= 2 else None
            nodes = [
                _build.reduce(graph, op, values[tensor], f"{tensor}::{suffix}", axes)
                for op, suffix in REDUCTIONS
            ]
            branches.add(nodes)
            graph.outputs.extend(node.outputs[0] for node in nodes)
        return ir.passes.PassResult(model, modified=bool(self.tensors))


def _ranks(model: ir.Model) -> dict[str, int]:
    """Tensor ranks from ONNX shape inference (unknown tensors are simply absent)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(ir.to_proto(model))
    except Exception:
        return {}
    ranks = {}
    for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape"):
            ranks[value.name] = len(tensor_type.shape.dim)
    return ranks
