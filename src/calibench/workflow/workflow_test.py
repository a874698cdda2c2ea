"""Baseline inference: accuracy with a metric, performance at batch × streams, and the cache."""

from pathlib import Path

import numpy as np
import onnx
import pytest

from calibench.data.annotations import Annotation, SampleInfo, Task
from calibench.data.dataset import Sample
from calibench.runtime.session import make_session
from calibench.workflow.evaluate import evaluate_accuracy
from calibench.workflow.infer import run_inference
from calibench.workflow.performance import PerfSettings, measure_performance


class LabelledTensors:
    """Random inputs labelled with the FP32 model's own top-1 for half of them."""

    task = Task.TENSORS

    def __init__(self, model: Path, n: int = 16) -> None:
        self.classes = [str(i) for i in range(10)]
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(n, 3, 32, 32)).astype(np.float32)
        top1 = make_session(model).run(None, {"input": self.x})[0].argmax(1)
        self.labels = [int(t) if i % 2 == 0 else int((t + 1) % 10) for i, t in enumerate(top1)]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> Sample | None:
        return {"input": self.x[index]}

    def annotation(self, index: int) -> Annotation:
        return self.labels[index]

    def info(self, index: int) -> SampleInfo:
        return SampleInfo(index)


class Top1:
    name = "top1"

    def reset(self) -> None:
        self.scores: list[float] = []

    def update(
        self, outputs: dict[str, np.ndarray], annotation: Annotation, info: SampleInfo
    ) -> float | None:
        score = 100.0 * (int(outputs["logits"].argmax()) == annotation)
        self.scores.append(score)
        return score

    def result(self) -> dict[str, float]:
        return {"top1": float(np.mean(self.scores))}


def test_accuracy_counts_every_sample_with_per_sample_scores(tiny_cnn_path: Path) -> None:
    data = LabelledTensors(tiny_cnn_path)
    result = evaluate_accuracy(onnx.load(str(tiny_cnn_path)), data, Top1(), batch_size=5)
    assert result.samples == 16 and result.value == 50.0
    assert [result.per_sample[i] for i in range(4)] == [100.0, 0.0, 100.0, 0.0]


def test_performance_reports_latency_percentiles_and_throughput(tiny_cnn_path: Path) -> None:
    feeds = {"input": np.zeros((1, 3, 32, 32), np.float32)}
    result = measure_performance(
        tiny_cnn_path, feeds, PerfSettings(batch=4, streams=2, seconds=0.3)
    )
    assert result.requests > 2
    assert result.latency_ms_median <= result.latency_ms_p90 <= result.latency_ms_p99
    assert result.throughput > 0 and result.settings["streams"] == 2
    assert result.settings["threads"] >= 1


def test_baseline_is_computed_once_and_reused(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path
) -> None:
    settings = PerfSettings(seconds=0.2)
    first = run_inference(tiny_cnn_path, tiny_data, perf=settings, workspace=tmp_path)
    again = run_inference(tiny_cnn_path, tiny_data, perf=settings, workspace=tmp_path)
    other = run_inference(
        tiny_cnn_path, tiny_data, perf=PerfSettings(seconds=0.2, batch=2), workspace=tmp_path
    )
    assert not first.cached and again.cached and not other.cached
    assert again.performance == first.performance
    assert first.accuracy is None  # an .npz without labels: performance only


def test_a_metric_on_data_without_annotations_is_refused(
    tiny_cnn_path: Path, tiny_data: Path
) -> None:
    from calibench.errors import ConfigError

    with pytest.raises(ConfigError, match="needs an annotated dataset"):
        run_inference(tiny_cnn_path, tiny_data, metric="top1", perf=PerfSettings(seconds=0.1))
