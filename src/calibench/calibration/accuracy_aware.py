"""The AccuracyAware method: the fastest INT8 model whose accuracy drop stays within a maximum.

It starts from the Default method's model (same statistics, no second collection) and, while
the drop is too large, sends the layers that cost the most accuracy back to FP32:

1. FP32 is evaluated once on the validation samples; its outputs are kept, so every later
   candidate is compared with them without running FP32 again.
2. Ranking: on the validation samples where INT8 strays furthest from FP32 (the ranking
   subset), each INT8 layer is reverted alone and the fall in output divergence measured.
   Layers within a few percent of each other are ordered cheapest-in-FP32 first, so slow layers
   stay in INT8 when they cost the same.
3. Reverting: the top 1, 2, 4, 8 … layers of the ranking are tried on the whole validation set
   until the drop is met, then the count is bisected down to the fewest layers that meet it.
   If every ranked layer fails, the best prefix is kept and the rest ranked again.
4. The model returned is evaluated once more at the end: its accuracy, not an estimate, is what
   the report states, and the guarantee ``accuracy ≥ FP32 − max drop`` is checked on it. If the
   target cannot be met the best model found is kept and the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from calibench.calibration.default import DefaultOutcome, ProgressCallback, run_default
from calibench.calibration.sensitivity import revert_each, revertible, score_metric
from calibench.config import CalibrationConfig, DropType
from calibench.data.annotations import AnnotatedDataset
from calibench.data.dataset import Dataset, select_subset
from calibench.metrics.base import Metric
from calibench.passes.insert_qdq import insert_qdq
from calibench.passes.placement import QuantPlan, revert_layers
from calibench.runtime.inputs import BatchReader, fit_reader, input_specs
from calibench.runtime.memory import default_limit
from calibench.runtime.profiling import profile_layers
from calibench.runtime.session import make_session
from calibench.runtime.spill import SpillList

Built = tuple[QuantPlan, onnx.ModelProto]
RANKING_SAMPLES = 64
TIE = 0.05
"""Ranking scores within 5 % of each other count as equal; then FP32 time decides."""


@dataclass
class Iteration:
    step: str
    reverted: list[str]
    accuracy: float
    drop: float
    evaluations: int
    """Full validation evaluations spent so far."""


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
        }


class _Feeds(Sequence[tuple[list[int], dict[str, np.ndarray]]]):
    """Validation batches as (sample indices, feeds), spilled to disk past the budget."""

    def __init__(self, names: list[str], budget: int | None) -> None:
        self.names = names
        self.indices: list[list[int]] = []
        self.arrays = SpillList(budget)

    def append(self, indices: list[int], feeds: dict[str, np.ndarray]) -> None:
        self.indices.append(indices)
        self.arrays.append([feeds[n] for n in self.names])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[list[int], dict[str, np.ndarray]]:  # type: ignore[override]
        return self.indices[index], dict(zip(self.names, self.arrays[index], strict=True))

    def __iter__(self) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        for index in range(len(self.indices)):
            yield self[index]


class _Validator:
    """Runs models on the validation samples; remembers FP32's outputs."""

    def __init__(
        self,
        fp32: onnx.ModelProto,
        data: AnnotatedDataset,
        metric: Metric,
        indices: list[int],
        batch_size: int,
        threads: int | None,
        memory_limit: int | None = None,
    ) -> None:
        self.data, self.metric, self.threads = data, metric, threads
        self.names = [o.name for o in fp32.graph.output]
        self.specs = input_specs(fp32)
        reader = BatchReader(data, self.specs, batch_size)
        reference = make_session(fp32, threads=threads, lean=True)
        reader = fit_reader(reader, indices, lambda f: reference.run(None, f), memory_limit)
        # Inputs and FP32's outputs are kept for every evaluation, in memory up to a quarter of the
        # memory limit each and on disk beyond it (a detector's outputs alone can be gigabytes).
        budget = None if memory_limit is None else memory_limit // 4
        self.batches = _Feeds([s.name for s in self.specs], budget)
        for batch_indices, feeds in reader.batches(indices):
            self.batches.append(batch_indices, feeds)
        self.full = 0
        self.ranked = 0
        self.tried: dict[frozenset[str], tuple[float, QuantPlan, onnx.ModelProto, list[str]]] = {}
        """Reverted sets already evaluated on the whole validation set: never twice."""
        self.reference = SpillList(budget)
        for _, feeds in self.batches:
            self.reference.append(reference.run(None, feeds))

    def outputs(
        self,
        model: onnx.ModelProto,
        batches: Sequence[Any] | None = None,
        threads: int | None = None,
    ) -> list[list[np.ndarray]]:
        session = make_session(model, threads=threads or self.threads, lean=True)
        return [session.run(None, feeds) for _, feeds in (batches or self.batches)]

    def accuracy(self, model: onnx.ModelProto | None = None) -> float:
        outs = self.reference if model is None else self.outputs(model)
        if model is not None:
            self.full += 1
        return score_metric(self.metric, self.data, self.names, self.batches, outs)

    def divergence_per_sample(self, outs: list[list[np.ndarray]]) -> np.ndarray:
        """Per validation sample: squared error against FP32 over FP32's energy."""
        values = []
        for ref_batch, got_batch in zip(self.reference, outs, strict=True):
            noise = sum(
                ((r - g) ** 2).reshape(len(r), -1).sum(1)
                for r, g in zip(ref_batch, got_batch, strict=True)
            )
            signal = sum((r**2).reshape(len(r), -1).sum(1) for r in ref_batch)
            values.append(noise / np.maximum(signal, 1e-12))
        return np.concatenate(values)


def run_accuracy_aware(
    model: onnx.ModelProto,
    calibration: Dataset,
    validation: AnnotatedDataset,
    metric: Metric,
    config: CalibrationConfig,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
) -> AccuracyAwareOutcome:
    start = time.perf_counter()
    default = run_default(model, calibration, config, progress=progress, threads=threads)
    fp32, params, shifts = default.fp32, default.params, default.shifts
    indices = (
        select_subset(len(validation), config.validation_subset)
        if config.validation_subset
        else list(range(len(validation)))
    )
    validator = _Validator(
        fp32,
        validation,
        metric,
        indices,
        config.batch_size,
        threads,
        config.memory_limit or default_limit(),
    )
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
    best: tuple[float, QuantPlan, onnx.ModelProto, list[str]] = (
        default_accuracy,
        default.plan,
        default.int8,
        [],
    )

    def build(
        reverted: Sequence[str], costs: dict[str, float]
    ) -> tuple[QuantPlan, onnx.ModelProto]:
        reasons = {name: f"reverted: cost {costs.get(name, 0.0):.2f} points" for name in reverted}
        plan = revert_layers(default.plan, reasons)
        return plan, insert_qdq(fp32, plan, params, bias_shifts=shifts)

    costs: dict[str, float] = {}
    reverted: list[str] = []
    fp32_ms = _fp32_times(fp32)
    rounds = 0
    while fp32_accuracy - best[0] > allowed and rounds < 4:
        rounds += 1
        current_plan, current_model = build(reverted, costs)
        ranking = _rank(
            validator,
            current_plan,
            current_model,
            reverted,
            costs,
            fp32_ms,
            build,
            fp32_accuracy - best[0],
            threads,
            lambda d, t: report("ranking layers", d, t),
        )
        if not ranking:
            break
        found = _search(
            validator,
            ranking,
            reverted,
            costs,
            build,
            fp32_accuracy,
            allowed,
            iterations,
            lambda d, t, detail: report(f"accuracy-aware|{detail}", d, t),
        )
        if found is not None and (found[0] > best[0] or fp32_accuracy - found[0] <= allowed):
            best = found
        reverted = list(best[3])
        if fp32_accuracy - best[0] <= allowed:
            break
    if fp32_accuracy - best[0] <= allowed and len(best[3]) > 1:
        best = _shrink(validator, best, build, costs, fp32_ms, fp32_accuracy, allowed, iterations)
    # The model returned is measured once more; its figure is the one reported.
    final_accuracy = validator.accuracy(best[2])
    met = fp32_accuracy - final_accuracy <= allowed + 1e-9
    iterations.append(
        Iteration(
            "final check",
            list(best[3]),
            final_accuracy,
            fp32_accuracy - final_accuracy,
            validator.full,
        )
    )
    report("accuracy-aware", 1, 1)
    return AccuracyAwareOutcome(
        default=default,
        int8=best[2],
        plan=best[1],
        metric=metric.name,
        fp32_accuracy=fp32_accuracy,
        default_accuracy=default_accuracy,
        accuracy=final_accuracy,
        allowed_drop=allowed,
        met=met,
        reverted={name: round(costs.get(name, 0.0), 4) for name in best[3]},
        iterations=iterations,
        evaluations={"full": validator.full, "ranking": validator.ranked},
        seconds=time.perf_counter() - start,
    )


def _fp32_times(fp32: onnx.ModelProto) -> dict[str, float]:
    """Per-layer FP32 time: what a revert gives back in speed (batch 1, one thread)."""
    try:
        return profile_layers(fp32, runs=5, warmup=2).layers_ms
    except Exception:  # profiling is a tie-breaker only; never fail the method over it
        return {}


def _rank(
    validator: _Validator,
    plan: QuantPlan,
    model: onnx.ModelProto,
    reverted: list[str],
    costs: dict[str, float],
    fp32_ms: dict[str, float],
    build: Callable[[Sequence[str], dict[str, float]], Built],
    drop: float,
    threads: int | None,
    progress: Callable[[int, int], None],
) -> list[str]:
    """INT8 layers, most harmful first, scored on the samples INT8 gets most wrong."""
    divergence = validator.divergence_per_sample(validator.outputs(model))
    chosen = np.argsort(-divergence)[: max(8, min(RANKING_SAMPLES, len(divergence)))]
    flat = [(i, j) for i, (idx, _) in enumerate(validator.batches) for j in range(len(idx))]
    picked = sorted(chosen.tolist())
    feeds_rows = [flat[k] for k in picked]
    ranking_batches = [
        ([0], {n: a[j : j + 1] for n, a in validator.batches[i][1].items()}) for i, j in feeds_rows
    ]
    reference = [[o[j : j + 1] for o in validator.reference[i]] for i, j in feeds_rows]

    def score(outs: list[list[np.ndarray]]) -> float:
        noise = sum(
            float(((r - g) ** 2).sum())
            for rb, gb in zip(reference, outs, strict=True)
            for r, g in zip(rb, gb, strict=True)
        )
        return noise

    base = score(validator.outputs(model, ranking_batches))
    candidates = revertible(plan, exclude=reverted)

    def run(name: str) -> list[list[np.ndarray]]:
        _, candidate = build([*reverted, name], costs)
        return validator.outputs(candidate, ranking_batches, threads=1)

    gains = revert_each(candidates, run, lambda outs: base - score(outs), progress)
    validator.ranked += len(candidates)
    helpful = [n for n in candidates if gains[n] > 0]
    total = sum(gains[n] for n in helpful) or 1.0
    for name in helpful:
        costs[name] = drop * gains[name] / total
    # Most harmful first; near-equal gains: cheaper in FP32 first (slow layers stay INT8).
    ordered = sorted(helpful, key=lambda n: -gains[n])
    result: list[str] = []
    while ordered:
        head = gains[ordered[0]]
        tier = [n for n in ordered if gains[n] >= head * (1 - TIE)]
        result += sorted(tier, key=lambda n: fp32_ms.get(n, 0.0))
        ordered = [n for n in ordered if n not in tier]
    return result


def _search(
    validator: _Validator,
    ranking: list[str],
    reverted: list[str],
    costs: dict[str, float],
    build: Callable[[Sequence[str], dict[str, float]], Built],
    fp32_accuracy: float,
    allowed: float,
    iterations: list[Iteration],
    progress: Callable[[int, int, str], None],
) -> tuple[float, QuantPlan, onnx.ModelProto, list[str]] | None:
    """Fewest top-ranked layers to revert that meet the drop: doubling, then bisection."""
    tried: dict[int, tuple[float, QuantPlan, onnx.ModelProto, list[str]]] = {}

    def attempt(k: int) -> tuple[float, QuantPlan, onnx.ModelProto, list[str]]:
        known = validator.tried.get(frozenset([*reverted, *ranking[:k]]))
        if k not in tried and known is not None:
            tried[k] = known
        if k not in tried:
            names = [*reverted, *ranking[:k]]
            plan, model = build(names, costs)
            accuracy = validator.accuracy(model)
            tried[k] = (accuracy, plan, model, names)
            validator.tried[frozenset(names)] = tried[k]
            iterations.append(
                Iteration(
                    f"revert top {k}", names, accuracy, fp32_accuracy - accuracy, validator.full
                )
            )
            detail = f"drop {fp32_accuracy - accuracy:.3f}, max {allowed:.3f}"
            progress(min(k, len(ranking)), len(ranking), detail)
        return tried[k]

    def ok(k: int) -> bool:
        return fp32_accuracy - attempt(k)[0] <= allowed

    low, k = 0, 1
    while k < len(ranking) and not ok(k):
        low, k = k, k * 2
    k = min(k, len(ranking))
    if not ok(k):
        return max(tried.values(), key=lambda t: t[0])
    high = k
    while high - low > 1:
        middle = (low + high) // 2
        if ok(middle):
            high = middle
        else:
            low = middle
    return attempt(high)


def _shrink(
    validator: _Validator,
    found: tuple[float, QuantPlan, onnx.ModelProto, list[str]],
    build: Callable[[Sequence[str], dict[str, float]], Built],
    costs: dict[str, float],
    fp32_ms: dict[str, float],
    fp32_accuracy: float,
    allowed: float,
    iterations: list[Iteration],
) -> tuple[float, QuantPlan, onnx.ModelProto, list[str]]:
    """Give layers back to INT8 while the target still holds, those that cost the least
    accuracy per millisecond of FP32 time first: half of the reverted set, then quarters…
    (the prefix search overshoots, since the ranking measured one layer at a time)."""
    best = found
    reverted = list(found[3])
    seen = {frozenset(i.reverted) for i in iterations}
    chunk = len(reverted) // 2
    while chunk >= 1:
        order = sorted(reverted, key=lambda n: costs.get(n, 0.0) / max(fp32_ms.get(n, 0.0), 1e-3))
        candidates = order[:chunk]
        trial = [n for n in reverted if n not in candidates]
        if frozenset(trial) in seen:
            chunk //= 2
            continue
        seen.add(frozenset(trial))
        plan, model = build(trial, costs)
        accuracy = validator.accuracy(model)
        iterations.append(
            Iteration(
                f"requantize {len(candidates)}",
                trial,
                accuracy,
                fp32_accuracy - accuracy,
                validator.full,
            )
        )
        if fp32_accuracy - accuracy <= allowed:
            best, reverted = (accuracy, plan, model, trial), trial
            chunk = min(chunk, len(reverted) // 2)
        else:
            chunk //= 2
    return best
