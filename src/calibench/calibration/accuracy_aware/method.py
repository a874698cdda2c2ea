"""The AccuracyAware method, end to end: the Default model, FP32 and it evaluated, the search
(:mod:`.search`) run with a real evaluator and ranker, the returned model measured again."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import onnx

from calibench.calibration.accuracy_aware.backend import LOCAL, Backend
from calibench.calibration.accuracy_aware.candidates import Builder
from calibench.calibration.accuracy_aware.ranking import Built, rank
from calibench.calibration.accuracy_aware.search import STOP_SLOWER, Iteration, Trial, search
from calibench.calibration.accuracy_aware.speed import revert_speed, reverted_plan, verdict_for
from calibench.calibration.accuracy_aware.validator import Evaluation
from calibench.calibration.default import DefaultOutcome, run_default
from calibench.config import CalibrationConfig, DropType
from calibench.data.annotations import AnnotatedDataset
from calibench.data.dataset import Dataset, select_subset
from calibench.metrics.base import Metric
from calibench.passes.placement import QuantPlan
from calibench.progress import ProgressCallback, with_detail
from calibench.runtime.memory import default_limit


@dataclass
class AccuracyAwareOutcome:
    default: DefaultOutcome
    int8: onnx.ModelProto
    plan: QuantPlan
    metric: str
    fp32_accuracy: float
    default_accuracy: float
    accuracy: float
    """The returned model's accuracy, measured at the end."""
    allowed_drop: float
    met: bool
    reverted: dict[str, float]
    """Layer → accuracy points it cost (its share of the divergence, scaled to the drop)."""
    iterations: list[Iteration] = field(default_factory=list)
    evaluations: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    backend: str = "local"
    """Where the evaluations ran: ``local``, or ``ray (N workers)``."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds of the evaluations by what they went to (:meth:`Evaluation.timings`)."""
    speedup_vs_fp32: float | None = None
    """The returned model against FP32, whole runs interleaved at the inference settings."""
    verdict: str | None = None
    """Said when the returned model is no faster than FP32 (:data:`.speed.KEEP_FP32`)."""

    @property
    def drop(self) -> float:
        return self.fp32_accuracy - self.accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "fp32": self.fp32_accuracy,
            "default": self.default_accuracy,
            "final": self.accuracy,
            "drop": self.drop,
            "allowed_drop": self.allowed_drop,
            "met": self.met,
            "reverted": self.reverted,
            "iterations": [vars(i) for i in self.iterations],
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 3),
            "backend": self.backend,
            "timings": self.timings,
            "speedup_vs_fp32": self.speedup_vs_fp32,
            "verdict": self.verdict,
        }


def run_accuracy_aware(
    model: onnx.ModelProto,
    calibration: Dataset,
    validation: AnnotatedDataset,
    metric: Metric,
    config: CalibrationConfig,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
    backend: Backend = LOCAL,
    timing: AbstractContextManager[Any] | None = None,
) -> AccuracyAwareOutcome:
    """``backend`` runs the statistics pass and the evaluations (here, or on Ray); the
    result does not depend on it. ``timing``: as :func:`run_default`'s."""
    start = time.perf_counter()
    default = run_default(
        model,
        calibration,
        config,
        progress=progress,
        threads=threads,
        statistics=backend.collect_statistics,
        timing=timing,
    )
    fp32 = default.fp32
    indices = (
        select_subset(len(validation), config.validation_subset)
        if config.validation_subset
        else list(range(len(validation)))
    )
    validator = backend.evaluation(
        fp32,
        validation,
        metric,
        indices,
        config.batch_size,
        threads,
        config.memory_limit or default_limit(),
    )
    try:
        return _search(validator, default, config, metric, progress, threads, start, backend.name)
    finally:
        validator.close()


def _search(
    validator: Evaluation,
    default: DefaultOutcome,
    config: CalibrationConfig,
    metric: Metric,
    progress: ProgressCallback | None,
    threads: int | None,
    start: float,
    backend: str,
) -> AccuracyAwareOutcome:
    fp32 = default.fp32
    fp32_accuracy = validator.accuracy()
    validator.full = 1  # FP32, evaluated once and cached
    assert config.max_drop is not None
    allowed = (
        config.max_drop
        if config.drop_type is DropType.ABSOLUTE
        else fp32_accuracy * config.max_drop / 100
    )

    def report(step: str, done: int, total: int) -> None:
        if progress:
            progress(step, done, total)

    report("accuracy-aware", 0, 1)
    default_accuracy = validator.accuracy(default.int8)
    iterations = [
        Iteration(
            "default model", [], default_accuracy, fp32_accuracy - default_accuracy, validator.full
        )
    ]

    build = Builder(fp32, default.plan, default.params, default.shifts)

    costs: dict[str, float] = {}
    speed = revert_speed(default, config, threads, validator.first_feeds())
    fp32_ms = speed.revert_costs(default.plan) if speed else {}

    if speed is not None:
        speed.anchor(fp32, default.int8, default.plan)

    def too_slow(names: list[str]) -> bool:
        return speed is not None and speed.too_slow(reverted_plan(default.plan, names))

    def slower(names: list[str]) -> bool:
        assert speed is not None
        return speed.measured_slower(fp32, lambda: build(names, costs)[1], frozenset(names))

    class Evaluate:
        """Builds and measures a candidate on the whole validation set."""

        @property
        def evaluations(self) -> int:
            return validator.full

        def __call__(self, reverted: list[str]) -> Trial[Built]:
            plan, model = build(reverted, costs)
            return Trial(validator.accuracy(model), (plan, model), reverted)

    def ranking(names: list[str], drop: float) -> list[str]:
        current_plan, current_model = build(names, costs)
        return rank(
            validator,
            current_plan,
            current_model,
            names,
            costs,
            fp32_ms,
            build,
            drop,
            threads,
            lambda d, t: report("ranking layers", d, t),
            too_slow,
        )

    found = search(
        Evaluate(),
        ranking,
        Trial(default_accuracy, (default.plan, default.int8), []),
        costs,
        fp32_ms,
        fp32_accuracy,
        allowed,
        iterations,
        lambda d, t, detail: report(with_detail("accuracy-aware", detail), d, t),
        too_slow if speed else None,
        slower if speed else None,
    )
    plan, int8 = found.built
    # The model returned is measured once more; its figure is the one reported.
    final_accuracy = validator.accuracy(int8)
    met = fp32_accuracy - final_accuracy <= allowed + 1e-9
    iterations.append(
        Iteration(
            "final check",
            list(found.reverted),
            final_accuracy,
            fp32_accuracy - final_accuracy,
            validator.full,
        )
    )
    speedup = speed.speedup_over_fp32(fp32, int8) if speed else None
    verdict = verdict_for(speedup, met, any(i.step == STOP_SLOWER for i in iterations))
    report("accuracy-aware", 1, 1)
    return AccuracyAwareOutcome(
        default=default,
        int8=int8,
        plan=plan,
        metric=metric.name,
        fp32_accuracy=fp32_accuracy,
        default_accuracy=default_accuracy,
        accuracy=final_accuracy,
        allowed_drop=allowed,
        met=met,
        reverted={name: round(costs.get(name, 0.0), 4) for name in found.reverted},
        iterations=iterations,
        evaluations={"full": validator.full, "ranking": validator.ranked},
        seconds=time.perf_counter() - start,
        backend=backend,
        timings=validator.timings(),
        speedup_vs_fp32=speedup,
        verdict=verdict,
    )
