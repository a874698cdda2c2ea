"""The few graph edits the passes share: constants, Q/DQ nodes, reductions, node order.

Each is written once here, so that every QuantizeLinear/DequantizeLinear calibench writes (in the
INT8 model and in the measuring copies) has the same form.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir


def initializer(graph: ir.Graph, name: str, array: np.ndarray | np.generic) -> ir.Value:
    """Register ``array`` as the initializer ``name`` (a name used twice is an error). The value
    carries no type of its own (the tensor has it), so no value_info is written for it."""
    value = ir.Value(name=name, const_value=ir.tensor(np.asarray(array), name=name))
    graph.register_initializer(value)
    return value


def quantize(x: ir.Value, scale: ir.Value, zero_point: ir.Value, output: str) -> ir.Node:
    """A QuantizeLinear of ``x`` writing the tensor ``output`` (the node is not yet placed)."""
    return ir.node("QuantizeLinear", [x, scale, zero_point], outputs=[ir.val(output)])


def dequantize(
    q: ir.Value, scale: ir.Value, zero_point: ir.Value, output: str, axis: int | None = None
) -> ir.Node:
    """A DequantizeLinear of ``q`` writing the tensor ``output``; ``axis`` for per-channel
    scales (the node is not yet placed)."""
    attributes = {} if axis is None else {"axis": axis}
    return ir.node("DequantizeLinear", [q, scale, zero_point], attributes, outputs=[ir.val(output)])


def reduce(
    graph: ir.Graph, op: str, source: ir.Value, output: str, axes: Sequence[int] | None
) -> ir.Node:
    """A Reduce* node over ``axes`` (all axes when ``None``) without keeping them, in the form
    the model's opset wants: axes as an input from opset 18 (ReduceSum: 13), else an attribute.
    The axes input is one shared initializer per axes list."""
    opset = graph.opset_imports.get("", 1)
    if axes is None:
        return ir.node(op, [source], {"keepdims": 0}, outputs=[ir.val(output)])
    if opset >= 18 or (op == "ReduceSum" and opset >= 13):
        name = f"calibench::axes{list(axes)}"
        axes_value = graph.initializers.get(name) or initializer(
            graph, name, np.asarray(list(axes), dtype=np.int64)
        )
        return ir.node(op, [source, axes_value], {"keepdims": 0}, outputs=[ir.val(output)])
    return ir.node(op, [source], {"keepdims": 0, "axes": list(axes)}, outputs=[ir.val(output)])


class SideBranches:
    """Nodes added next to what they read, not at the end of the graph.

    ONNX Runtime keeps a tensor alive until its last reader has run. Side branches appended at
    the end (statistics, twins) would keep every activation of the batch alive until the very
    end; placed right after their inputs' producers, each activation is freed as soon as the
    network has moved past it. Branches are kept in the order they are added.
    """

    def __init__(self, graph: ir.Graph) -> None:
        self.graph = graph
        self._last: dict[ir.Node | None, ir.Node] = {}
        """Anchor (``None``: the graph's start) → the last branch node placed after it."""
        self._first = next(iter(graph), None)

    def add(self, nodes: Sequence[ir.Node]) -> None:
        """Place ``nodes`` (a chain, in order) after the latest producer of their inputs."""
        produced = set(nodes)
        anchor = self._anchor(nodes, produced)
        after = self._last.get(anchor, anchor)
        if after is not None:
            self.graph.insert_after(after, nodes)
        elif self._first is not None:
            self.graph.insert_before(self._first, nodes)
        else:
            self.graph.extend(nodes)
        self._last[anchor] = nodes[-1]

    def _anchor(self, nodes: Sequence[ir.Node], produced: set[ir.Node]) -> ir.Node | None:
        order = {node: i for i, node in enumerate(self.graph)}
        anchor: ir.Node | None = None
        for node in nodes:
            for value in node.inputs:
                producer = value.producer() if value is not None else None
                if producer is None or producer in produced:
                    continue
                if anchor is None or order[producer] > order[anchor]:
                    anchor = producer
        return anchor


def values_by_name(graph: ir.Graph) -> dict[str, ir.Value]:
    """The graph's inputs and every node's outputs, by name: the tensors a plan names."""
    values = {v.name: v for v in graph.inputs if v.name is not None}
    values.update({v.name: v for node in graph for v in node.outputs if v.name is not None})
    return values


def sort_keeping_order(graph: ir.Graph) -> None:
    """Reorder the nodes so that each follows the producers of its inputs, moving as little as
    possible: nodes are taken first-come first-served as soon as their inputs exist (Kahn's
    algorithm over the current order), so an appended node lands just after what it reads."""
    nodes = list(graph)
    index = {node: i for i, node in enumerate(nodes)}
    waiting = [
        {index[p] for v in node.inputs if v is not None and (p := v.producer()) in index}
        for node in nodes
    ]
    followers: dict[int, list[int]] = {}
    for i, deps in enumerate(waiting):
        for dep in deps:
            followers.setdefault(dep, []).append(i)
    ready = [i for i, deps in enumerate(waiting) if not deps]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for follower in followers.get(i, []):
            waiting[follower].discard(i)
            if not waiting[follower]:
                ready.append(follower)
    if len(order) != len(nodes):
        raise ValueError("the graph has a cycle")
    graph.remove(nodes)
    graph.extend(nodes[i] for i in order)
