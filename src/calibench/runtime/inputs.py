"""Model inputs, and batches of dataset samples checked against them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from calibench.data.dataset import Dataset, Sample
from calibench.errors import DatasetError
from calibench.runtime.memory import fitting_batch


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: np.dtype
    shape: tuple[int | str | None, ...]

    @property
    def batch_fixed_to_one(self) -> bool:
        return bool(self.shape) and self.shape[0] == 1


def input_specs(model: onnx.ModelProto) -> list[InputSpec]:
    weights = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim
        )
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        specs.append(InputSpec(value.name, dtype, dims))
    return specs


@dataclass
class BatchReader:
    """Reads samples by index, checks them against the model's inputs, stacks batches.

    Every sample is checked here, where it enters: names, ranks, fixed dimensions, dtypes, and
    float inputs must hold finite numbers (a NaN or an infinity would poison every range
    computed from it; a huge finite value is data and passes)."""

    dataset: Dataset
    specs: Sequence[InputSpec]
    batch_size: int
    skipped: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if any(spec.batch_fixed_to_one for spec in self.specs):
            self.batch_size = 1

    def batches(self, indices: Sequence[int]) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        pending: list[tuple[int, Sample]] = []
        unreadable = 0
        for index in indices:
            sample = self.dataset[index]
            if sample is None:
                self.skipped.append(index)
                unreadable += 1
                continue
            sample = self._conform(index, sample)
            pending.append((index, sample))
            if len(pending) == self.batch_size:
                yield self._stack(pending)
                pending = []
        if pending:
            yield self._stack(pending)
        if unreadable == len(indices):
            raise DatasetError(f"none of the {len(indices)} selected samples could be read")

    def _stack(self, pending: list[tuple[int, Sample]]) -> tuple[list[int], dict[str, np.ndarray]]:
        names = [spec.name for spec in self.specs]
        return [i for i, _ in pending], {n: np.stack([s[n] for _, s in pending]) for n in names}

    def _conform(self, index: int, sample: Sample) -> Sample:
        out: Sample = {}
        for spec in self.specs:
            if spec.name not in sample:
                raise DatasetError(
                    f"sample {index} has no array for model input {spec.name!r} "
                    f"(it has: {', '.join(sorted(sample)) or 'nothing'})"
                )
            array = np.asarray(sample[spec.name])
            if spec.shape and array.ndim == len(spec.shape) and array.shape[0] == 1:
                array = array[0]  # a sample given with its own batch axis of 1
            if array.ndim != len(spec.shape) - 1:
                raise DatasetError(
                    f"input {spec.name!r}: the model expects rank {len(spec.shape)} "
                    f"(shape {_show(spec.shape)}) but sample {index} has shape "
                    f"{tuple(array.shape)} (rank {array.ndim + 1} once batched)"
                )
            for axis, (want, got) in enumerate(zip(spec.shape[1:], array.shape, strict=True)):
                if isinstance(want, int) and want > 0 and want != got:
                    raise DatasetError(
                        f"input {spec.name!r}: the model expects shape {_show(spec.shape)} but "
                        f"sample {index} has {tuple(array.shape)} (axis {axis + 1} differs); "
                        "check the resize/crop options"
                    )
            converted = ""
            if array.dtype != spec.dtype:
                same_kind = array.dtype.kind == spec.dtype.kind or (
                    array.dtype.kind in "ui" and spec.dtype.kind in "ui"
                )
                if not same_kind:
                    raise DatasetError(
                        f"input {spec.name!r}: the model takes {spec.dtype} but sample {index} "
                        f"holds {array.dtype}"
                    )
                given = array
                with np.errstate(over="ignore", invalid="ignore"):
                    array = array.astype(spec.dtype)
                if array.dtype.kind in "fc" and given.dtype.kind in "fc":
                    _check_finite(given, spec.name, index)
                    converted = f" once converted to {spec.dtype}"  # a float64 past float32
            if array.dtype.kind in "fc":
                _check_finite(array, spec.name, index, converted)
            out[spec.name] = array
        return out


def _check_finite(array: np.ndarray, name: str, index: int, how: str = "") -> None:
    """Refuse NaN and infinities, naming the input, the sample and the first bad position."""
    if np.isfinite(array).all():
        return
    position = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
    where = f"first at position {list(position)}: " if position else ""
    raise DatasetError(
        f"input {name!r}: sample {index} holds NaN or infinite values{how} ({where}"
        f"{array[position]}); calibration needs finite numbers, so fix or leave out that sample"
    )


def fit_reader(
    reader: BatchReader,
    indices: Sequence[int],
    run: Callable[[dict[str, np.ndarray]], object],
    memory_limit: int | None,
) -> BatchReader:
    """A reader whose batches fit ``memory_limit``: ``run`` is tried on one sample and the
    growth of the peak memory taken as one sample's cost (``runtime.memory.fitting_batch``)."""
    if memory_limit is None or reader.batch_size <= 1 or not indices:
        return reader
    single = BatchReader(reader.dataset, reader.specs, 1, skipped=reader.skipped)
    first = next(single.batches(indices), None)
    if first is None:
        return reader
    batch, _ = fitting_batch(lambda: run(first[1]), memory_limit, reader.batch_size)
    return BatchReader(reader.dataset, reader.specs, batch, skipped=reader.skipped)


def _show(shape: tuple[int | str | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
