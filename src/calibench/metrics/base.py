"""The metric protocol every accuracy figure in calibench goes through."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from calibench.data.annotations import Annotation, SampleInfo


@runtime_checkable
class Metric(Protocol):
    """Scores a model's outputs against annotations, one sample at a time.

    ``name`` is the primary figure's key in :meth:`result`; every figure is in percent points
    (76.2 means 76.2 %), so a maximum accuracy drop of 0.5 means half a point of it.
    """

    name: str

    def reset(self) -> None: ...

    def update(
        self, outputs: dict[str, np.ndarray], annotation: Annotation, info: SampleInfo
    ) -> float | None:
        """Add one sample (outputs without the batch axis); return its own score if the metric
        has per-sample scores (top-1: 100 or 0), else ``None``."""
        ...

    def result(self) -> dict[str, float]:
        """All figures, the primary one first."""
        ...
