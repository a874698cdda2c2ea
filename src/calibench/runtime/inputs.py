"""Model inputs, and batches of dataset samples checked against them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from calibench.data.dataset import Dataset, Sample
from calibench.errors import DatasetError


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
    """Reads samples by index, checks them against the model's inputs, stacks batches."""

    dataset: Dataset
    specs: Sequence[InputSpec]
    batch_size: int
    skipped: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if any(spec.batch_fixed_to_one for spec in self.specs):
            self.batch_size = 1

    def batches(self, indices: Sequence[int]) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        pending: list[tuple[int, Sample]] = []
        for index in indices:
            sample = self.dataset[index]
            if sample is None:
                self.skipped.append(index)
                continue
            sample = self._conform(index, sample)
            pending.append((index, sample))
            if len(pending) == self.batch_size:
                yield self._stack(pending)
                pending = []
        if pending:
            yield self._stack(pending)
        if len(self.skipped) == len(indices):
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
            if array.dtype != spec.dtype:
                same_kind = array.dtype.kind == spec.dtype.kind or (
                    array.dtype.kind in "ui" and spec.dtype.kind in "ui"
                )
                if not same_kind:
                    raise DatasetError(
                        f"input {spec.name!r}: the model takes {spec.dtype} but sample {index} "
                        f"holds {array.dtype}"
                    )
                array = array.astype(spec.dtype)
            out[spec.name] = array
        return out


def _show(shape: tuple[int | str | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
