"""Custom metrics: a user's own scoring function, where no built-in metric fits the model.

A model with an unusual output (OCR strings, embeddings, a segmentation mask) still needs an
accuracy figure for the AccuracyAware method; a plain function scoring one sample is the
smallest thing a user can write for it. It is named on the command line as
``package.module:function`` or ``path/to/file.py:function``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from calibench.data.annotations import Annotation, SampleInfo
from calibench.errors import ConfigError

ScoreFn = Callable[[dict[str, np.ndarray], Annotation], float]
"""Scores one sample: its outputs (each without its batch axis, wherever the model keeps it:
``runtime.batch_axis``) and its annotation (a class index, a number, a text, an array or boxes,
as the dataset holds it)."""


class MetricError(ConfigError):
    """The user's metric function raised on a sample. Its own class (exit 5, as the option that
    named the function) so that it is never taken for a fault of calibench: the message names
    the function and the sample, and ``--debug`` shows the function's own traceback."""


class CallableMetric:
    """The mean of ``fn(outputs, annotation)`` over the samples, under ``name``."""

    def __init__(self, fn: ScoreFn, name: str = "custom") -> None:
        if not callable(fn):
            raise ConfigError(f"a custom metric must be a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name
        self.reset()

    def reset(self) -> None:
        self._total = 0.0
        self._count = 0

    def update(
        self, outputs: dict[str, np.ndarray], annotation: Annotation, info: SampleInfo
    ) -> float | None:
        try:
            value = self.fn(outputs, annotation)
        except Exception as error:
            raise MetricError(
                f"custom metric {_function_name(self.fn)} failed on sample {info.index}: "
                f"{_one_line(error)} (its outputs: {_shapes(outputs)}; its annotation: "
                f"{_kind(annotation)}; run with --debug for the traceback)"
            ) from error
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(
                f"custom metric {self.name!r} returned {type(value).__name__} for sample "
                f"{info.index}; it must return a number"
            )
        score = float(value)
        if not math.isfinite(score):
            raise ConfigError(
                f"custom metric {self.name!r} returned {score} for sample {info.index}"
            )
        self._total += score
        self._count += 1
        return score

    def result(self) -> dict[str, float]:
        """The mean score; 0 before any sample."""
        return {self.name: self._total / self._count if self._count else 0.0}


def load_metric(spec: str, name: str | None = None) -> CallableMetric:
    """Import ``module:function`` (or ``file.py:function``) as a :class:`CallableMetric` named
    ``name``, by default after the function."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"a custom metric is given as 'package.module:function', got {spec!r}")
    module = _import(module_name)
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"custom metric: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"custom metric {spec!r} is a {type(target).__name__}, not a function")
    return CallableMetric(target, name=name or attribute.rsplit(".", 1)[-1])


def _import(module_name: str) -> Any:
    """The module called ``module_name``, or loaded from it as a ``.py`` file path."""
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ConfigError(f"custom metric file {module_name!r} not found")
        spec = importlib.util.spec_from_file_location(f"calibench_custom_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"custom metric file {module_name!r} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise ConfigError(
                f"custom metric file {module_name!r} failed to import: {_one_line(error)}"
            ) from error
        return module
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and (
            module_name == error.name or module_name.startswith(error.name + ".")
        ):
            raise ConfigError(
                f"custom metric module {module_name!r} not found; is it on PYTHONPATH?"
            ) from error
        raise ConfigError(
            f"custom metric module {module_name!r} failed to import: {_one_line(error)}"
        ) from error
    except Exception as error:
        raise ConfigError(
            f"custom metric module {module_name!r} failed to import: {_one_line(error)}"
        ) from error


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


def _function_name(fn: Callable[..., object]) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    if module and module.startswith("calibench_custom_"):  # loaded from a file: name the file
        code = getattr(fn, "__code__", None)
        module = Path(code.co_filename).name if code is not None else None
    return f"{module}:{name}" if module else name


def _shapes(outputs: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {list(np.shape(v))}" for k, v in outputs.items()) or "none"


def _kind(annotation: Annotation) -> str:
    if isinstance(annotation, np.ndarray):
        return f"array {list(annotation.shape)} {annotation.dtype}"
    if isinstance(annotation, str):
        return f"text {annotation[:40]!r}"
    if isinstance(annotation, (int, float)):
        return repr(annotation)
    return type(annotation).__name__
