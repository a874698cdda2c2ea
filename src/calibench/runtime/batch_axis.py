"""Where each model output keeps its batch axis, so that a metric gets exactly one sample.

Samples are stacked along axis 0 of every input, but an output may carry its batch anywhere: a
CTC text reader answers (T, N, C), time first. Taking axis 0 for the batch would hand a metric
the first time step of every sample instead of a sample's whole sequence. The axis is found,
for each output, in this order:

1. **declared**: the output's shape names the input's batch symbol (``N``) in one place, and
   the outputs of a real batch agree;
2. **measured**: on a copy of the model whose inputs take any batch size, one sample is run at
   batch 1 and at batch 2; the one axis that grows from 1 to 2 is the batch axis (this covers
   models with a batch fixed at 1, and outputs declared wrongly or not at all);
3. **assumed** when the model cannot run at batch 2: the only axis of length 1 at batch 1 (axis
   0 when several are), else no batch axis at all: the output is the sample's as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import onnx

from calibench.errors import ModelError
from calibench.runtime.inputs import input_specs
from calibench.runtime.session import make_session

_SYMBOL = "calibench_batch"


class FoundBy(str, Enum):
    DECLARED = "declared"
    MEASURED = "measured"
    ASSUMED = "assumed"


@dataclass(frozen=True)
class BatchAxes:
    """Each output's batch axis (``None``: the output has none, as a batch-1 model that drops
    it, or an output the same whatever the batch; each sample gets it whole), and how it was
    found."""

    axes: dict[str, int | None]
    found_by: dict[str, FoundBy]

    def split(
        self, names: Sequence[str], outputs: Sequence[np.ndarray], count: int
    ) -> list[dict[str, np.ndarray]]:
        """The outputs of a batch of ``count`` samples as one dict per sample, each output
        without its batch axis."""
        per_output = [
            self.rows(name, np.asarray(o), count) for name, o in zip(names, outputs, strict=True)
        ]
        return [
            {name: rows[i] for name, rows in zip(names, per_output, strict=True)}
            for i in range(count)
        ]

    def rows(self, name: str, output: np.ndarray, count: int) -> np.ndarray:
        """``output`` with its batch axis first; an output without one is every sample's."""
        axis = self.axes[name]
        if axis is None:
            return np.broadcast_to(output, (count, *output.shape))
        if output.ndim <= axis or output.shape[axis] != count:
            raise ModelError(
                f"output {name!r} has shape {list(output.shape)} for a batch of {count}: its "
                f"batch axis ({axis}, {self.found_by[name].value}) does not hold the batch"
            )
        return np.moveaxis(output, axis, 0)


def find_batch_axes(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    outputs: Sequence[np.ndarray],
    threads: int | None = None,
) -> BatchAxes:
    """The batch axis of every output of ``model``, from a batch it ran: ``feeds`` (samples
    stacked on axis 0) and the ``outputs`` it gave, in the order of ``model.graph.output``."""
    names = [o.name for o in model.graph.output]
    count = _batch_size(feeds)
    axes: dict[str, int | None] = {}
    found: dict[str, FoundBy] = {}
    symbols = _input_batch_symbols(model)
    for value, actual in zip(model.graph.output, outputs, strict=True):
        axis = _declared(value, symbols)
        if axis is not None and np.ndim(actual) == _rank(value) and actual.shape[axis] == count:
            axes[value.name], found[value.name] = axis, FoundBy.DECLARED
    missing = [n for n in names if n not in axes]
    if missing:
        measured = _measure(model, feeds, threads)
        for name, actual in zip(names, outputs, strict=True):
            if name not in missing:
                continue
            if measured is not None and name in measured:
                axes[name], found[name] = measured[name], FoundBy.MEASURED
            else:
                axes[name], found[name] = _assumed(np.shape(actual), count), FoundBy.ASSUMED
    return BatchAxes(axes, found)


def _batch_size(feeds: dict[str, np.ndarray]) -> int:
    sizes = {int(np.shape(v)[0]) for v in feeds.values() if np.ndim(v)}
    return sizes.pop() if len(sizes) == 1 else 1


def _input_batch_symbols(model: onnx.ModelProto) -> set[str]:
    return {str(s.shape[0]) for s in input_specs(model) if s.shape and isinstance(s.shape[0], str)}


def _declared(value: onnx.ValueInfoProto, symbols: set[str]) -> int | None:
    """The one axis of the declared output shape that carries an input's batch symbol."""
    if not symbols or not value.type.tensor_type.HasField("shape"):
        return None
    hits = [i for i, d in enumerate(value.type.tensor_type.shape.dim) if d.dim_param in symbols]
    return hits[0] if len(hits) == 1 else None


def _rank(value: onnx.ValueInfoProto) -> int:
    return len(value.type.tensor_type.shape.dim)


def _measure(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int | None
) -> dict[str, int | None] | None:
    """Each output's batch axis from runs of one sample at batch 1 and 2 on a copy of the model
    that takes any batch; ``None`` when the copy cannot run at batch 2 (a reshape fixed to 1)."""
    free = onnx.ModelProto()
    free.CopyFrom(model)
    weights = {t.name for t in free.graph.initializer}
    for value in free.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in weights and dims:
            dims[0].Clear()
            dims[0].dim_param = _SYMBOL
    del free.graph.value_info[:]  # shapes inferred for batch 1 would contradict batch 2
    for value in free.graph.output:
        value.type.tensor_type.ClearField("shape")
    one = {k: np.asarray(v)[:1] for k, v in feeds.items()}
    two = {k: np.concatenate([v, v]) for k, v in one.items()}
    try:
        session = make_session(free, threads=threads, lean=True)
        single, double = session.run(None, one), session.run(None, two)
    except Exception:  # ORT raises its own types for a graph that cannot take batch 2
        return None
    axes: dict[str, int | None] = {}
    for value, a, b in zip(free.graph.output, single, double, strict=True):
        if a.shape == b.shape:
            axes[value.name] = None  # the same for every batch size: no batch axis
            continue
        grown = [i for i, (x, y) in enumerate(zip(a.shape, b.shape, strict=False)) if x != y]
        if (
            a.ndim == b.ndim
            and len(grown) == 1
            and (a.shape[grown[0]], b.shape[grown[0]]) == (1, 2)
        ):
            axes[value.name] = grown[0]
    return axes


def _assumed(shape: tuple[int, ...], count: int) -> int | None:
    """The batch axis guessed from one batch's output shape alone."""
    hits = [i for i, d in enumerate(shape) if d == count]
    if not hits:
        return None
    return 0 if 0 in hits else hits[0]
