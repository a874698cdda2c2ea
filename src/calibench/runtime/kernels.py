"""What ONNX Runtime really executes: its optimised graph, read node by node.

Q/DQ in a model file are only a request; ORT decides which groups become integer kernels. We ask
ORT to write the graph it will run (``optimized_model_filepath``) and read, for each node, the
kernel it picked and the precision of the tensors it reads and writes.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnx

from calibench.ops import DATA_MOVEMENT
from calibench.runtime.session import make_session

INTEGER_KERNELS = frozenset(
    {
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QLinearMul",
        "QLinearConcat",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
        "QLinearLeakyRelu",
        "QLinearSigmoid",
        "QLinearSoftmax",
        "QLinearWhere",
        "QGemm",
        "MatMulIntegerToFloat",
        "ConvInteger",
        "MatMulInteger",
        "DynamicQuantizeMatMul",
        "QAttention",
        "NhwcQLinearConv",
        "QLinearReduceMean",
    }
)
CONVERSIONS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
_TOKEN = re.compile(r"_token_\d+$")
_INT_TYPES: dict[int, str] = {onnx.TensorProto.UINT8: "U8", onnx.TensorProto.INT8: "I8"}


@dataclass(frozen=True)
class RuntimeNode:
    name: str
    """The node's name with ORT's ``_token_N`` suffixes removed: the original layer's name."""
    kernel: str
    precision: str
    """INT8 for integer kernels and for data movement on 8-bit tensors, FP32 otherwise;
    CONVERT for the QuantizeLinear/DequantizeLinear that remain."""
    input_precision: str
    output_precision: str


def optimized_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph ORT runs on this machine at its full optimisation level."""
    with tempfile.TemporaryDirectory(prefix="calibench-ort-") as tmp:
        path = Path(tmp) / "optimized.onnx"
        make_session(model, threads=1, optimized_path=path)
        return onnx.load(str(path))


def runtime_nodes(model: onnx.ModelProto) -> list[RuntimeNode]:
    """Each node of ORT's optimised graph with the precision it computes in."""
    optimized = optimized_graph(model)
    graph = optimized.graph
    precision: dict[str, str] = {}
    for value in graph.input:
        precision[value.name] = _type_name(value.type.tensor_type.elem_type)
    for tensor in graph.initializer:
        precision[tensor.name] = _type_name(tensor.data_type)
    nodes = []
    for node in graph.node:
        data = _data_input(node)
        first = precision.get(data, "FP32") if data else "FP32"
        out = _output_precision(node, first, precision)
        for name in node.output:
            precision[name] = out
        if node.op_type in CONVERSIONS:
            kind = "CONVERT"
        elif node.op_type in INTEGER_KERNELS or (
            node.op_type in DATA_MOVEMENT and first in ("U8", "I8")
        ):
            kind = "INT8"
        else:
            kind = "FP32"
        nodes.append(RuntimeNode(_TOKEN.sub("", node.name), node.op_type, kind, first, out))
    return nodes


def kernel_counts(nodes: list[RuntimeNode]) -> dict[str, dict[str, int]]:
    """Kernels by precision: {"INT8": {"QLinearConv": 52, ...}, "FP32": {...}, ...}."""
    counts: dict[str, Counter[str]] = {}
    for node in nodes:
        counts.setdefault(node.precision, Counter())[node.kernel] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}


def _data_input(node: onnx.NodeProto) -> str | None:
    """The first tensor a node computes on (QLinearConcat lists its output scale first)."""
    if node.op_type == "QLinearConcat":
        return node.input[2] if len(node.input) > 2 else None
    return node.input[0] if node.input else None


def _output_precision(node: onnx.NodeProto, first: str, known: dict[str, str]) -> str:
    op = node.op_type
    if op == "QuantizeLinear":
        return known.get(node.input[2], "U8") if len(node.input) > 2 else "U8"
    if op == "DequantizeLinear":
        return "FP32"
    if op == "QLinearConcat":
        return known.get(node.input[1], first)
    if op == "QGemm":
        return known.get(node.input[8], first) if len(node.input) > 8 and node.input[8] else "FP32"
    if op in ("MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QAttention"):
        return "FP32"
    if op in ("ConvInteger", "MatMulInteger"):
        return "I32"
    if op == "Cast":
        for attr in node.attribute:
            if attr.name == "to":
                return _type_name(attr.i)
    if op in INTEGER_KERNELS or op in DATA_MOVEMENT:
        return first
    return "FP32" if first in ("U8", "I8", "FP32") else first


def _type_name(elem_type: int) -> str:
    if elem_type in _INT_TYPES:
        return _INT_TYPES[elem_type]
    if elem_type == onnx.TensorProto.FLOAT:
        return "FP32"
    if elem_type == onnx.TensorProto.FLOAT16:
        return "FP16"
    return onnx.TensorProto.DataType.Name(elem_type)
