"""Fold shape computations to constants where the dimensions they read are static.

Exporters compute padding, reshape targets and the like at run time (EfficientNet-Lite0's
"same" padding: ConstantOfShape → Concat → Slice → Transpose → Reshape → Cast → Pad, per Conv).
Left in, those chains keep the Pad's amounts non-constant, and placement must keep the Pad in
FP32 with a conversion pair around it. Folding them is what every converter's simplifier does.

Rules, applied in graph order until nothing changes:

* ``Shape(x)`` (with its ``start``/``end``) becomes a constant when every dimension it returns is
  static; with a dynamic batch the spatial dimensions usually still are.
* ``Gather(Shape(x), i)`` with constant ``i`` becomes a constant when the gathered dimensions are
  static, even if others (the batch) are not.
* A deterministic standard-domain node whose inputs are all constants (initializers that are not
  graph inputs) is evaluated once, with ONNX's reference implementation, and replaced by an
  initializer, unless its output would exceed ``size_limit`` elements (a folded weight
  transform would only duplicate the weights).
* Nodes and initializers nothing reads any more are removed.

A dimension that is symbolic or unknown is never assumed: the chain reading it stays.
Results are unchanged by construction: the folded values are what those nodes computed.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx.reference import ReferenceEvaluator
from onnx_ir.passes import common

_NON_DETERMINISTIC = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)


class SimplifyPass(ir.passes.InPlacePass):
    def __init__(self, size_limit: int = 1 << 16) -> None:
        super().__init__()
        self.size_limit = size_limit

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        common.ShapeInferencePass()(model)
        opset = model.opset_imports.get("", 17)
        folded = 0
        for node in list(model.graph):
            values = _fold(node, opset, self.size_limit)
            if values is None:
                continue
            for output, array in zip(node.outputs, values, strict=True):
                _replace_with_constant(model.graph, output, array)
            folded += 1
        removed = common.RemoveUnusedNodesPass()(model).modified
        return ir.passes.PassResult(model, modified=folded > 0 or removed)


def _fold(node: ir.Node, opset: int, size_limit: int) -> list[np.ndarray] | None:
    if node.domain not in ("", "ai.onnx") or node.op_type in _NON_DETERMINISTIC:
        return None
    if any(o.is_graph_output() for o in node.outputs):
        return None
    if node.op_type == "Shape":
        return _static_shape(node)
    if node.op_type == "Gather":
        gathered = _gather_of_shape(node)
        if gathered is not None:
            return [gathered]
    if not node.inputs or any(_attr_has_graph(a) for a in node.attributes.values()):
        return None
    inputs = [_constant(v) if v is not None else None for v in node.inputs]
    if any(v is not None and a is None for v, a in zip(node.inputs, inputs, strict=True)):
        return None
    try:
        results = _evaluate(node, inputs, opset)
    except Exception:  # an op the reference implementation cannot run is left as it is
        return None
    if any(r.size > size_limit for r in results):
        return None
    return results


def _static_shape(node: ir.Node) -> list[np.ndarray] | None:
    source = node.inputs[0]
    if source is None or source.shape is None:
        return None
    rank = len(source.shape)
    start = node.attributes.get_int("start", 0)
    end = node.attributes.get_int("end", rank)
    dims = list(source.shape)[slice(start, end)]
    if not all(isinstance(d, int) for d in dims):
        return None
    return [np.array(dims, dtype=np.int64)]


def _gather_of_shape(node: ir.Node) -> np.ndarray | None:
    data, indices = node.inputs[0], node.inputs[1] if len(node.inputs) > 1 else None
    shape_node = data.producer() if data is not None else None
    if indices is None or shape_node is None or shape_node.op_type != "Shape":
        return None
    if node.attributes.get_int("axis", 0) != 0:
        return None
    index = _constant(indices)
    source = shape_node.inputs[0]
    if index is None or source is None or source.shape is None:
        return None
    rank = len(source.shape)
    start = shape_node.attributes.get_int("start", 0)
    end = shape_node.attributes.get_int("end", rank)
    dims = list(source.shape)[slice(start, end)]
    picked = np.asarray(dims, dtype=object)[index.astype(np.int64)]
    if not all(isinstance(d, int) for d in np.ravel(picked)):
        return None
    return np.asarray(picked, dtype=np.int64)


def _constant(value: ir.Value) -> np.ndarray | None:
    if value.is_graph_input():
        return None
    if value.const_value is not None:
        return value.const_value.numpy()
    producer = value.producer()
    if producer is not None and producer.op_type == "Constant" and not producer.inputs:
        attr = producer.attributes.get("value")
        if attr is not None and attr.type == ir.AttributeType.TENSOR:
            return attr.as_tensor().numpy()
    return None


def _attr_has_graph(attr: object) -> bool:
    return isinstance(attr, ir.Attr) and attr.type in (
        ir.AttributeType.GRAPH,
        ir.AttributeType.GRAPHS,
    )


def _evaluate(node: ir.Node, inputs: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    proto = ir.serde.serialize_node(node)
    names = [f"i{k}" if a is not None else "" for k, a in enumerate(inputs)]
    outputs = [f"o{k}" for k in range(len(node.outputs))]
    del proto.input[:]
    proto.input.extend(names)
    del proto.output[:]
    proto.output.extend(outputs)
    graph = onnx.helper.make_graph(
        [proto],
        "fold",
        [
            onnx.helper.make_tensor_value_info(
                n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), None
            )
            for n, a in zip(names, inputs, strict=True)
            if a is not None
        ],
        [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outputs],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    feeds = {n: a for n, a in zip(names, inputs, strict=True) if a is not None}
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


def _replace_with_constant(graph: ir.Graph, output: ir.Value, array: np.ndarray) -> None:
    name = output.name or "folded"
    constant = ir.Value(name=f"{name}_folded", const_value=ir.tensor(array))
    constant.shape = ir.Shape(array.shape)
    constant.dtype = ir.DataType.from_numpy(array.dtype)
    graph.register_initializer(constant)
    output.replace_all_uses_with(constant)
