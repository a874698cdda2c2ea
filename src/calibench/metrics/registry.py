"""Choosing a dataset's metric from its task and the user's ``--metric`` spec.

Specs: ``topk`` (aliases ``top1``, ``top5``, ``accuracy``), ``map:<decoder>`` (``map:yolox``), or
a custom ``module:function``. Without a spec the task decides: top-1/top-5 for classification and
tensors with class labels, mAP for detection (which still needs a decoder, from the spec or a
``decoder`` option); tensors with other labels (texts, arrays) need a custom metric. Built-in
names are looked up in one table, :data:`CHOICES`: the CLI's parser and help, the workbench's
form and every message are derived from it, so a name one of them offers is never refused by
another.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
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
        spec = default_spec(task, classes)
    if spec is None:
        raise ConfigError(
            "the dataset's labels are not class indices (texts, numbers or arrays), so no "
            "built-in metric scores them; score them with your own function: "
            "--metric package.module:function (README: Metrics)"
        )
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
    raise ConfigError(_unknown(spec))


def _topk(task: Task, classes: list[str], argument: str, options: dict[str, Any]) -> Metric:
    if task not in (Task.CLASSIFICATION, Task.TENSORS):
        raise ConfigError(f"top-k accuracy needs class labels, but the dataset is {task.value}")
    if not classes:
        raise ConfigError(
            "top-k accuracy needs class indices as labels, but this dataset's labels are texts, "
            "numbers or arrays; score them with --metric package.module:function"
        )
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


@dataclass(frozen=True)
class MetricChoice:
    """A built-in metric as users name it: its spec, the other names it answers to (the names of
    its figures among them, so that a figure the JSON reports can be typed back), and words."""

    spec: str
    words: str
    aliases: tuple[str, ...] = ()


CHOICES: tuple[MetricChoice, ...] = (
    MetricChoice("topk", "top-1 / top-5 accuracy (classification)", ("top1", "top5", "accuracy")),
    *(
        MetricChoice(f"map:{name}", f"mAP with the {name} output decoder (detection)")
        for name in DECODERS
    ),
)
"""Every built-in metric, in full: the one list the parser, the help, the workbench and the
messages use."""

ALIASES: dict[str, str] = {alias: c.spec for c in CHOICES for alias in c.aliases}
"""Other names of built-in metrics (all without a ``:`` argument)."""

BUILTIN_SPECS: tuple[str, ...] = tuple(c.spec for c in CHOICES)
"""What the workbench offers, since it never runs a custom metric a client names."""

WORDS: dict[str, str] = {c.spec: c.words for c in CHOICES}
"""Each built-in spec in words, for the workbench's form."""

NAMES = ", ".join(f"{c.spec} ({', '.join(c.aliases)})" if c.aliases else c.spec for c in CHOICES)
"""Every name a spec may be, for messages."""

SPEC_HELP = (
    "topk (also top1, top5, accuracy: classification), "
    f"map:{'|'.join(DECODERS)} (detection), or package.module:function (your own)"
)
"""The choices in words, for the command line's help."""


def check_spec(spec: str) -> str:
    """``spec`` in its canonical form (aliases and case resolved) when it names a built-in
    metric, as given when it names a custom ``module:function``; refused otherwise, before any
    work, in the words the help uses."""
    text = spec.strip()
    builtin = builtin_spec(text)
    if builtin is not None:
        return builtin
    head, colon, argument = text.partition(":")
    if _resolve(head) == "map" and not argument.strip():
        raise ConfigError(f"mAP needs the model's output decoder: map:{' | map:'.join(DECODERS)}")
    if colon and head and argument and _resolve(head) not in BUILTIN:
        return text
    raise ConfigError(_unknown(spec))


def _unknown(spec: str) -> str:
    return f"unknown metric {spec!r}; choose {NAMES}, or your own 'package.module:function'"


def builtin_spec(spec: str) -> str | None:
    """The entry of :data:`BUILTIN_SPECS` that ``spec`` names (aliases and case allowed), or
    ``None`` when it names no built-in metric."""
    head, colon, argument = spec.strip().partition(":")
    full = _resolve(head) + colon + argument.strip().lower()
    return full if full in BUILTIN_SPECS else None


def _resolve(head: str) -> str:
    name = head.strip().lower()
    return ALIASES.get(name, name)


def default_spec(task: Task, classes: list[str]) -> str | None:
    """The metric a dataset gets when the user names none; ``None`` for tensors whose labels
    are not class indices (only a custom metric can score those)."""
    if task is Task.TENSORS and not classes:
        return None
    return DEFAULTS[task]


DEFAULTS: dict[Task, str] = {
    Task.CLASSIFICATION: "topk",
    Task.TENSORS: "topk",
    Task.DETECTION: "map",
}
"""The metric each annotated task gets when the user names none."""
