"""Top-k accuracy, the figure classification models are compared by.

Ties between class scores are broken towards the lower class index, as ``argmax`` does. A
quantized model that collapses to constant outputs must not score as if every class were its
first guess, so ties never count in the annotation's favour.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from calibench.data.annotations import Annotation, SampleInfo
from calibench.errors import ConfigError
from calibench.metrics._outputs import pick_output, squeeze_leading


class TopK:
    """Top-1 and top-k accuracy from a logits or probabilities output of shape [C] or [1, C].

    Annotations are class indices. ``update`` returns 100 when the top-1 guess is right, else 0.
    """

    name = "top1"

    def __init__(self, k: Sequence[int] = (1, 5), output: str | None = None) -> None:
        ks = sorted({int(v) for v in k} | {1})
        if any(v < 1 for v in ks):
            raise ConfigError(f"top-k accuracy takes k of 1 or more, got {tuple(k)}")
        self.k = tuple(ks)
        self.output = output
        self.reset()

    def reset(self) -> None:
        self._correct = dict.fromkeys(self.k, 0)
        self._count = 0

    def update(
        self, outputs: dict[str, np.ndarray], annotation: Annotation, info: SampleInfo
    ) -> float | None:
        if isinstance(annotation, bool) or not isinstance(annotation, numbers.Integral):
            raise ConfigError(
                f"top-1 accuracy needs a class index for each sample; sample {info.index} "
                f"has {type(annotation).__name__}"
            )
        scores = squeeze_leading(pick_output(outputs, self.output, "top-1 accuracy"), 1)
        if scores.ndim != 1:
            raise ConfigError(
                f"top-1 accuracy expects an output of shape [C] or [1, C], "
                f"got {list(scores.shape)}; choose the classifier's output"
            )
        label = int(annotation)
        if not 0 <= label < scores.shape[0]:
            raise ConfigError(
                f"sample {info.index} has class {label}, but the model scores "
                f"{scores.shape[0]} classes"
            )
        rank = _rank(scores.astype(np.float64, copy=False), label)
        for k in self.k:
            self._correct[k] += rank < k
        self._count += 1
        return 100.0 if rank == 0 else 0.0

    def result(self) -> dict[str, float]:
        """``top1`` first, then the other k; 0 before any sample."""
        return {
            f"top{k}": 100.0 * self._correct[k] / self._count if self._count else 0.0
            for k in self.k
        }


def _rank(scores: np.ndarray, label: int) -> int:
    """Position of ``label`` when classes are sorted by score, ties to the lower index."""
    own = scores[label]
    if np.isnan(own):
        return scores.shape[0]
    return int(np.count_nonzero(scores > own) + np.count_nonzero(scores[:label] == own))
