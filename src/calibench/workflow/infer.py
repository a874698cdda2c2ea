"""Inference on a model over a dataset: accuracy (when annotated) and performance, cached."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from calibench.config import Subset
from calibench.data.annotations import AnnotatedDataset, is_annotated
from calibench.data.dataset import select_subset
from calibench.data.open import open_for_model
from calibench.data.preprocess import Preprocess
from calibench.errors import ConfigError, DatasetError
from calibench.metrics.base import Metric
from calibench.model.load import load_model
from calibench.runtime.inputs import BatchReader, input_specs
from calibench.workflow.cache import ResultCache, file_digest, source_identity
from calibench.workflow.evaluate import evaluate_accuracy
from calibench.workflow.performance import PerfSettings, measure_performance

Progress = Callable[[str, int, int], None]


@dataclass
class InferenceReport:
    model: str
    model_digest: str
    model_bytes: int
    dataset: dict[str, Any]
    preprocess: dict[str, Any] | None
    accuracy: dict[str, Any] | None
    """``{"metric": "top1", "figures": {...}, "samples": n, "skipped": k}``"""
    performance: dict[str, Any]
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceReport:
        return cls(**data)

    def render(self, console: Console) -> None:
        table = Table(title=f"Inference: {self.model}" + (" (cached)" if self.cached else ""))
        table.add_column("figure")
        table.add_column("value", justify="right")
        if self.accuracy:
            for key, value in self.accuracy["figures"].items():
                table.add_row(key, f"{value:.2f}")
            table.add_row("samples", str(self.accuracy["samples"]))
        perf = self.performance
        settings = perf["settings"]
        table.add_row("batch × streams", f"{settings['batch']} × {settings['streams']}")
        table.add_row(
            "latency median / p90 / p99 (ms)",
            f"{perf['latency_ms_median']:.2f} / {perf['latency_ms_p90']:.2f} / "
            f"{perf['latency_ms_p99']:.2f}",
        )
        table.add_row("throughput (samples/s)", f"{perf['throughput']:.1f}")
        measured_on = perf.get("measured_on") or {}
        if measured_on.get("text"):
            table.add_row("measured on", measured_on["text"])
        table.add_row("model size (MB)", f"{self.model_bytes / 1e6:.2f}")
        console.print(table)
        if measured_on.get("warning"):
            console.print(f"Warning: {measured_on['warning']}")


def run_inference(
    model_path: Path,
    dataset: Any,
    *,
    metric: str | Metric | None = None,
    perf: PerfSettings | None = None,
    preprocess: Preprocess | dict[str, Any] | None = None,
    subset: Subset | None = None,
    workspace: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    timing: AbstractContextManager[Any] | None = None,
) -> InferenceReport:
    """Accuracy over ``dataset`` (if it is annotated) and latency/throughput of ``model_path``.

    ``timing`` is entered around the speed measurement alone (a lock, say, so that jobs side by
    side do not skew each other's timings)."""
    from calibench.metrics.registry import builtin_spec, default_spec, metric_for

    perf = perf or PerfSettings()
    proto = load_model(model_path)
    specs = input_specs(proto)
    data, bound = open_for_model(dataset, specs, preprocess, model_path.name)
    annotated = is_annotated(data)
    if metric is not None and not annotated:
        raise ConfigError(
            f"the metric needs an annotated dataset; {_source(dataset)} has no annotations "
            "(an .npz needs a 'labels' array; images need class folders, a labels file or "
            "COCO/VOC boxes, imported with `calibench dataset import`)"
        )
    if annotated and metric is None:
        assert isinstance(data, AnnotatedDataset)
        # Labels only a custom metric can score (texts, arrays): performance alone.
        annotated = default_spec(data.task, data.classes) is not None
    digest = file_digest(model_path)
    cache = ResultCache(workspace) if workspace is not None and use_cache else None
    key = None
    if (
        cache is not None
        and isinstance(dataset, (str, os.PathLike))
        and (metric is None or (isinstance(metric, str) and builtin_spec(metric) is not None))
    ):  # a custom metric is code the user may have changed since: never served from the cache
        key = cache.key(
            {
                "model": digest,
                "dataset": source_identity(Path(dataset)),
                "preprocess": bound.to_dict() if bound else None,
                "metric": metric,
                "perf": perf.to_dict(),
                "subset": asdict(subset) if subset else None,
            }
        )
        hit = cache.get(key)
        if hit is not None:
            report = InferenceReport.from_dict(hit)
            report.cached = True
            return report

    accuracy = None
    indices = select_subset(len(data), subset) if subset else list(range(len(data)))
    if annotated:
        assert isinstance(data, AnnotatedDataset)
        chosen = (
            metric if isinstance(metric, Metric) else metric_for(data.task, data.classes, metric)
        )
        result = evaluate_accuracy(
            proto,
            data,
            chosen,
            indices,
            progress=(lambda d, t: progress("accuracy", d, t)) if progress else None,
            runtime=perf.runtime,
        )
        accuracy = result.to_dict()
    feeds = _first_batch(data, specs, indices)
    if progress:
        progress("performance", 0, 1)
    with timing if timing is not None else nullcontext():
        measured = measure_performance(proto, feeds, perf)
    if progress:
        progress("performance", 1, 1)
    describe = getattr(data, "describe", None)
    report = InferenceReport(
        model=model_path.name,
        model_digest=digest,
        model_bytes=model_path.stat().st_size,
        dataset=describe() if describe else {"samples": len(data)},
        preprocess=bound.to_dict() if bound else None,
        accuracy=accuracy,
        performance=measured.to_dict(),
    )
    if cache is not None and key is not None:
        cache.put(key, report.to_dict())
    return report


def _source(dataset: Any) -> str:
    return str(dataset) if isinstance(dataset, (str, os.PathLike)) else "this dataset"


def _first_batch(data: Any, specs: list[Any], indices: list[int]) -> dict[str, Any]:
    reader = BatchReader(data, specs, batch_size=1)
    for _, feeds in reader.batches(indices[:64]):
        return feeds
    raise DatasetError("no sample of the dataset could be read")
