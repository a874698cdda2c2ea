"""Which INT8 layers cost the most accuracy: each reverted alone, on the samples INT8 gets most
wrong, and the fall in output divergence measured. Layers within a few percent of each other
are ordered by what their revert costs in time (``speed.RevertSpeed.revert_costs``: FP32 minus
INT8 ms, measured at the inference settings) cheapest first, so the layers where INT8 gains
most stay INT8 when they cost the same accuracy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx

from calibench.calibration.accuracy_aware.validator import Evaluation
from calibench.calibration.sensitivity import revertible
from calibench.passes.placement import QuantPlan

Built = tuple[QuantPlan, onnx.ModelProto]
RANKING_SAMPLES = 64
TIE = 0.05
"""Ranking scores within 5 % of each other count as equal; then the revert's time decides."""


def rank(
    validator: Evaluation,
    plan: QuantPlan,
    model: onnx.ModelProto,
    reverted: list[str],
    costs: dict[str, float],
    fp32_ms: dict[str, float],
    build: Callable[[Sequence[str], dict[str, float]], Built],
    drop: float,
    threads: int | None,
    progress: Callable[[int, int], None],
    too_slow: Callable[[list[str]], bool] | None = None,
) -> list[str]:
    """INT8 layers, most harmful first, scored on the samples INT8 gets most wrong. Fills
    ``costs``: each helpful layer's share of ``drop``, in proportion to its gain."""
    divergence = validator.divergence(model)
    chosen = np.argsort(-divergence)[: max(8, min(RANKING_SAMPLES, len(divergence)))]
    subset = validator.ranking_set(sorted(chosen.tolist()))
    base = validator.noise(model, subset)
    candidates = revertible(plan, exclude=reverted)
    if too_slow is not None:  # a layer whose revert alone loses the speed-up is not worth ranking
        candidates = [n for n in candidates if not too_slow([*reverted, n])]
    noises = validator.noise_each(build, reverted, costs, candidates, subset, progress)
    gains = {name: base - noises[name] for name in candidates}
    validator.ranked += len(candidates)
    helpful = [n for n in candidates if gains[n] > 0]
    total = sum(gains[n] for n in helpful) or 1.0
    for name in helpful:
        costs[name] = drop * gains[name] / total
    return order_by_gain(helpful, gains, fp32_ms)


def order_by_gain(
    names: list[str], gains: dict[str, float], fp32_ms: dict[str, float]
) -> list[str]:
    """Most harmful first; near-equal gains (within :data:`TIE`): the cheaper revert first
    (``fp32_ms``: layer → ms per run its revert adds)."""
    ordered = sorted(names, key=lambda n: -gains[n])
    result: list[str] = []
    while ordered:
        head = gains[ordered[0]]
        tier = [n for n in ordered if gains[n] >= head * (1 - TIE)]
        result += sorted(tier, key=lambda n: fp32_ms.get(n, 0.0))
        ordered = [n for n in ordered if n not in tier]
    return result
