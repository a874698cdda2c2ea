"""Finding a metric's output among a model's outputs, with one-line errors when it is not there.

Metrics receive every output of one sample; most read just one. Picking it, and checking its
shape, is the same for every metric, and a wrong choice is a user's configuration error.
"""

from __future__ import annotations

import numpy as np

from calibench.errors import ConfigError


def pick_output(outputs: dict[str, np.ndarray], name: str | None, who: str) -> np.ndarray:
    """The output called ``name``, or the model's first output when ``name`` is ``None``."""
    if not outputs:
        raise ConfigError(f"{who} got no model outputs")
    if name is None:
        return np.asarray(next(iter(outputs.values())))
    if name not in outputs:
        raise ConfigError(
            f"{who} reads output {name!r}, but the model's outputs are {', '.join(outputs)}"
        )
    return np.asarray(outputs[name])


def squeeze_leading(array: np.ndarray, rank: int) -> np.ndarray:
    """Drop leading axes of length 1 until ``array`` has ``rank`` axes (a left-over batch axis).

    Arrays that cannot be brought to ``rank`` that way are returned as they are; callers check.
    """
    while array.ndim > rank and array.shape[0] == 1:
        array = array[0]
    return array
