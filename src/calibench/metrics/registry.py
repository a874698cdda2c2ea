"""Choosing a dataset's metric from its task and the user's ``--metric`` spec.

Specs: ``topk`` (aliases ``accuracy``, ``top1``, ``top5``), ``map:<decoder>`` (``map:yolox``), or
a custom ``module:function``. Without a spec the task decides: top-1/top-5 for classification and
labelled tensors, mAP for detection (which still needs a decoder, from the spec or a ``decoder``
option). Built-in names are looked up in a table, so a new metric is one entry; the CLI's help
and the workbench's choices are derived from the same tables.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from calibench.data.annotations import Task
from calibench.errors import ConfigError
from calibench.metrics.base import Metric
from calibench.metrics.classification import TopK
from calibench.metrics.custom import load_metric
from calibench.metrics.detection.decoders import DECODERS
from calibench.metrics.detection.mean_ap import DetectionMAP

Factory = Callable[[Task, list[str], str, dict[str, Any]], Metric]
"""Builds a metric from the task, class names, the spec's argument (after ``:``) and options."""


def metric_for(task: Task, classes: list[str], spec: str | None, **options: Any) -> Metric:
    """The metric ``spec`` names for a dataset of ``task`` (its default when ``spec`` is None).

    Options set to ``None`` are left out, so a caller can pass every option it knows.
    """
    options = {key: value for key, value in options.items() if value is not None}
    if task == Task.NOT_ANNOTATED:
        raise ConfigError(
            f"the {spec or 'accuracy'} metric needs an annotated dataset; this one has no labels"
        )
    if spec is None:
        spec = DEFAULTS[task]
    head, _, argument = spec.partition(":")
    factory = BUILTIN.get(_resolve(head))
    if factory is not None:
        return factory(task, classes, argument.strip(), options)
    if argument:
        if set(options) - {"name"}:
            raise ConfigError(
                f"custom metric {spec!r} takes no options; got {', '.join(sorted(options))}"
            )
        return load_metric(spec, name=options.get("name"))
    raise ConfigError(
        f"unknown metric {spec!r}; choose {', '.join(BUILTIN)} (as map:<decoder>) "
        "or a custom 'module:function'"
    )


def _topk(task: Task, classes: list[str], argument: str, options: dict[str, Any]) -> Metric:
    if task not in (Task.CLASSIFICATION, Task.TENSORS):
        raise ConfigError(f"top-k accuracy needs class labels, but the dataset is {task.value}")
    if argument:
        raise ConfigError(f"top-k accuracy takes no ':' argument, got {argument!r}")
    return TopK(**_accepted(TopK, options, "top-k accuracy"))


def _map(task: Task, classes: list[str], argument: str, options: dict[str, Any]) -> Metric:
    if task != Task.DETECTION:
        raise ConfigError(f"mAP needs a detection dataset, but the dataset is {task.value}")
    decoder = argument or options.pop("decoder", None)
    if not decoder:
        raise ConfigError(f"mAP needs the model's output decoder: map:{' | map:'.join(DECODERS)}")
    return DetectionMAP(str(decoder), classes, **options)


def _accepted(cls: type, options: dict[str, Any], what: str) -> dict[str, Any]:
    """``options``, after checking ``cls`` takes each of them."""
    known = [p for p in inspect.signature(cls).parameters if p != "self"]
    for key in options:
        if key not in known:
            raise ConfigError(f"{what} has no option {key!r}; its options are {', '.join(known)}")
    return options


BUILTIN: dict[str, Factory] = {"topk": _topk, "map": _map}
"""Built-in metrics by the name a spec starts with."""

ALIASES: dict[str, str] = {"accuracy": "topk", **{f"top{k}": "topk" for k in (1, 5)}}
"""Other names of built-in metrics: the CLI's ``accuracy`` and the names of top-k's figures."""

BUILTIN_SPECS: tuple[str, ...] = ("topk", *(f"map:{name}" for name in DECODERS))
"""Every built-in metric in full (a detection metric with each decoder): what the workbench
offers, since it never runs a custom metric a client names."""

SPEC_HELP = f"topk (classes), map:{'|'.join(DECODERS)} (detection), or package.module:function"
"""The choices in words, for the command line's help."""


def builtin_spec(spec: str) -> str | None:
    """The entry of :data:`BUILTIN_SPECS` that ``spec`` names (aliases and case allowed), or
    ``None`` when it names no built-in metric."""
    head, colon, argument = spec.strip().partition(":")
    full = _resolve(head) + colon + argument.strip().lower()
    return full if full in BUILTIN_SPECS else None


def _resolve(head: str) -> str:
    name = head.strip().lower()
    return ALIASES.get(name, name)


DEFAULTS: dict[Task, str] = {
    Task.CLASSIFICATION: "topk",
    Task.TENSORS: "topk",
    Task.DETECTION: "map",
}
"""The metric each annotated task gets when the user names none."""
