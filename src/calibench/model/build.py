"""Small helpers for adding nodes and constants to an ``onnx.ModelProto``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper


def add_constant(graph: onnx.GraphProto, name: str, array: np.ndarray | np.generic) -> str:
    graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
    return name


def reduce_node(
    op: str,
    source: str,
    output: str,
    axes: Sequence[int],
    opset: int,
    axes_name: str,
    graph: onnx.GraphProto,
) -> onnx.NodeProto:
    """A Reduce* node over ``axes`` without keeping them, in the form ``opset`` wants."""
    takes_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    if takes_input:
        if not any(t.name == axes_name for t in graph.initializer):
            add_constant(graph, axes_name, np.asarray(list(axes), dtype=np.int64))
        return helper.make_node(op, [source, axes_name], [output], keepdims=0)
    return helper.make_node(op, [source], [output], keepdims=0, axes=list(axes))


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so that every node follows the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    producers: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for out in node.output:
            producers[out] = index
    nodes = list(graph.node)
    waiting = [
        {producers[i] for i in node.input if i not in available and i in producers}
        for node in nodes
    ]
    consumers: dict[int, list[int]] = {}
    for index, deps in enumerate(waiting):
        for dep in deps:
            consumers.setdefault(dep, []).append(index)
    ready = [i for i, deps in enumerate(waiting) if not deps]
    order: list[int] = []
    while ready:
        index = ready.pop(0)
        order.append(index)
        for follower in consumers.get(index, []):
            waiting[follower].discard(index)
            if not waiting[follower]:
                ready.append(follower)
    if len(order) != len(nodes):
        raise ValueError("the graph has a cycle")
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)


def interleave_added_nodes(graph: onnx.GraphProto, original_count: int) -> None:
    """Move nodes appended after the first ``original_count`` next to what they read.

    ONNX Runtime keeps a tensor alive until its last reader has run. Side branches appended at
    the end of the graph (statistics, twins) would keep every activation of the batch alive
    until the very end; placed right after their inputs' producers, each activation is freed as
    soon as the network has moved past it.
    """
    nodes = list(graph.node)
    originals, added = nodes[:original_count], nodes[original_count:]
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    order: list[onnx.NodeProto] = []
    waiting = list(added)

    def flush() -> None:
        progress = True
        while progress:
            progress = False
            still = []
            for node in waiting:
                if all(name in ready for name in node.input):
                    order.append(node)
                    ready.update(node.output)
                    progress = True
                else:
                    still.append(node)
            waiting[:] = still

    flush()
    for node in originals:
        order.append(node)
        ready.update(node.output)
        flush()
    order.extend(waiting)
    del graph.node[:]
    graph.node.extend(order)
