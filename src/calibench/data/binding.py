"""Open what the user named as a dataset and bind it to a model's input and preprocessing."""

from __future__ import annotations

from typing import Any

from calibench.data.dataset import Dataset, as_dataset
from calibench.data.preprocess import Preprocess
from calibench.errors import DatasetError, NotEligibleError
from calibench.runtime.inputs import InputSpec


def open_for_model(
    source: Any,
    specs: list[InputSpec],
    preprocess: Preprocess | dict[str, Any] | None = None,
    model_name: str = "the model",
) -> tuple[Dataset, Preprocess | None]:
    """The dataset, bound to the model's image input when it holds images, and the
    preprocessing it was bound with (``None`` for tensor datasets)."""
    if not specs:
        raise NotEligibleError(
            f"{model_name} has no inputs (every value it computes is a constant), so there is "
            "nothing to calibrate or feed data to"
        )
    data = as_dataset(source, [s.name for s in specs])
    bind = getattr(data, "bind", None)
    if bind is None or not getattr(data, "needs_binding", True):
        return data, None
    if len(specs) != 1:
        raise DatasetError(
            f"{model_name} has {len(specs)} inputs; a dataset of images can feed only a "
            "single-input model (use an .npz file with one array per input)"
        )
    if isinstance(preprocess, Preprocess):
        chosen = preprocess
    else:
        chosen = Preprocess.for_input_shape(list(specs[0].shape), **(preprocess or {}))
    bind(specs[0].name, chosen)
    return data, chosen
