"""Where a calibration's heavy passes run: here, or on a cluster.

A backend supplies the two passes that split over data: the statistics pass over the
calibration set, and the evaluations over the validation set (:class:`Evaluation`). The local
backend is today's code path, unchanged; ``calibration.distributed.RayBackend`` runs the same
passes on Ray actors and gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import onnx

from calibench.calibration.accuracy_aware.validator import Evaluation, Validator
from calibench.calibration.statistics import Progress, TensorStats, collect_statistics
from calibench.data.annotations import AnnotatedDataset
from calibench.metrics.base import Metric
from calibench.runtime.inputs import BatchReader


class Backend(Protocol):
    name: str

    def collect_statistics(
        self,
        model: onnx.ModelProto,
        tensors: Sequence[str],
        reader: BatchReader,
        indices: Sequence[int],
        histograms: bool = False,
        progress: Progress | None = None,
        threads: int | None = None,
        memory_limit: int | None = None,
    ) -> dict[str, TensorStats]:
        """What :func:`calibration.statistics.collect_statistics` returns, bit for bit."""
        ...

    def evaluation(
        self,
        fp32: onnx.ModelProto,
        data: AnnotatedDataset,
        metric: Metric,
        indices: list[int],
        batch_size: int,
        threads: int | None,
        memory_limit: int | None,
    ) -> Evaluation:
        """The validation set, read and run through FP32 once."""
        ...


class LocalBackend:
    """Everything in this process (ONNX Runtime's threads, and threads for the ranking): the
    functions themselves."""

    name = "local"
    collect_statistics = staticmethod(collect_statistics)
    evaluation = Validator


LOCAL = LocalBackend()
