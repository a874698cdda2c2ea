"""Any two models of one original timed side by side: the same sample, the same inference
settings, alternating windows (:func:`~calibench.workflow.performance.measure_interleaved`, as
an INT8 model's comparison with its parent times the two), so that a change in the machine's
load falls on both alike and their figures may be divided into a speed-up.

Two INT8 models of one FP32 model, each timed against its parent in its own run, cannot be
compared through those runs: the machine's state differs from one run to the next. Timing the
two together is the only honest way to say which one is faster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calibench.data.open import open_for_model
from calibench.data.preprocess import Preprocess
from calibench.errors import CalibenchError
from calibench.model.load import load_model
from calibench.runtime.inputs import BatchReader, InputSpec, input_specs
from calibench.workflow.performance import PerfResult, PerfSettings, measure_interleaved

A, B = "a", "b"
"""The keys of the two models in the timing (the reference first); shown names replace them."""
LOOK_AT = 8
"""Samples tried for the one that feeds both models (an unreadable sample is skipped)."""


def prepare_pair(
    a: Path,
    b: Path,
    dataset: Any,
    preprocess: Preprocess | dict[str, Any] | None = None,
    names: tuple[str, str] = ("the reference model", "the compared model"),
) -> dict[str, np.ndarray]:
    """The sample both models are timed on (batch axis included): the first readable sample of
    ``dataset``, prepared as for ``a``. Refused in words when ``b`` takes other inputs."""
    specs_a = input_specs(load_model(a))
    specs_b = input_specs(load_model(b))
    if _signature(specs_a) != _signature(specs_b):
        raise CalibenchError(
            f"{names[1]} takes other inputs ({_words(specs_b)}) than {names[0]} "
            f"({_words(specs_a)}): the two cannot be timed on the same sample"
        )
    data, _ = open_for_model(dataset, specs_a, preprocess, names[0])
    reader = BatchReader(data, specs_a, batch_size=1)
    for _, feeds in reader.batches(list(range(min(len(data), LOOK_AT)))):
        return feeds
    raise CalibenchError(
        f"none of the first {min(len(data), LOOK_AT)} samples of the dataset could be read: "
        "there is nothing to time the two models on"
    )


def time_side_by_side(
    a: Path, b: Path, feeds: dict[str, np.ndarray], settings: PerfSettings
) -> dict[str, PerfResult]:
    """Both models timed in alternating windows, ``settings.seconds`` each in all: ``{"a": …,
    "b": …}``, each stamped with when, where and with what it was timed."""
    return measure_interleaved({A: a, B: b}, feeds, settings)


def _signature(specs: list[InputSpec]) -> list[tuple[str, str, tuple[int | None, ...]]]:
    """Names, types and fixed sizes (a symbolic size, such as the batch, fits any)."""
    return [
        (s.name, str(s.dtype), tuple(d if isinstance(d, int) else None for d in s.shape))
        for s in specs
    ]


def _words(specs: list[InputSpec]) -> str:
    return ", ".join(f"{s.name} {s.dtype} {list(s.shape)}" for s in specs)
