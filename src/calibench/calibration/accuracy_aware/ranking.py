"""Which INT8 layers cost the most accuracy: each reverted alone, on the samples INT8 gets most
wrong, and the fall in output divergence measured. Layers within a few percent of each other
are ordered by what their revert costs in time (``speed.RevertSpeed.revert_costs``: FP32 minus
INT8 ms, measured at the inference settings) cheapest first, so the layers where INT8 gains
most stay INT8 when they cost the same accuracy.

A large model (more than :data:`GROUP_FROM` candidates: a 443-layer OCR recognizer has 275) is
ranked in two steps, because one candidate per layer is most of AccuracyAware's time there:
blocks of about √n neighbouring layers are reverted together first, then the layers of the
blocks that gained most are reverted one by one. A layer of a block not refined is scored with
an equal share of its block's gain. Some 2√n candidates are run instead of n (85 of 275), on
half the samples (the 32 INT8 gets most wrong): a block's gain sums many layers' and needs
fewer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx

from calibench.calibration.accuracy_aware.validator import Evaluation, Group, RankingSet
from calibench.calibration.sensitivity import revertible
from calibench.passes.placement import QuantPlan

Built = tuple[QuantPlan, onnx.ModelProto]
RANKING_SAMPLES = 64
TIE = 0.05
"""Ranking scores within 5 % of each other count as equal; then the revert's time decides."""
GROUP_FROM = 96
"""Rankings of more candidates than this go by blocks first."""
REFINE_SHARE = 0.8
"""Blocks are refined, most helpful first, until they hold this share of the blocks' gain…"""
MAX_REFINED = 4
"""…or this many blocks are refined."""
Progress = Callable[[int, int], None]


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
    progress: Progress,
    too_slow: Callable[[list[str]], bool] | None = None,
) -> list[str]:
    """INT8 layers, most harmful first, scored on the samples INT8 gets most wrong. Fills
    ``costs``: each helpful layer's share of ``drop``, in proportion to its gain."""
    candidates = revertible(plan, exclude=reverted)
    if too_slow is not None:  # a layer whose revert alone loses the speed-up is not worth ranking
        candidates = [n for n in candidates if not too_slow([*reverted, n])]
    samples = RANKING_SAMPLES if len(candidates) <= GROUP_FROM else RANKING_SAMPLES // 2
    divergence = validator.divergence(model)
    chosen = np.argsort(-divergence)[: max(8, min(samples, len(divergence)))]
    subset = validator.ranking_set(sorted(chosen.tolist()))
    base = validator.noise(model, subset)
    gains = revert_gains(validator, build, reverted, costs, candidates, subset, base, progress)
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


def revert_gains(
    validator: Evaluation,
    build: Callable[[Sequence[str], dict[str, float]], Built],
    reverted: list[str],
    costs: dict[str, float],
    candidates: list[str],
    subset: RankingSet,
    base: float,
    progress: Progress,
) -> dict[str, float]:
    """Each candidate's fall in noise when reverted: alone, or by blocks first (module doc)."""

    def score(groups: Sequence[Group], report: Progress) -> dict[Group, float]:
        noises = validator.noise_each(build, reverted, costs, groups, subset, report)
        validator.ranked += len(groups)
        return {group: base - noises[group] for group in groups}

    if len(candidates) <= GROUP_FROM:
        alone = score([(name,) for name in candidates], progress)
        return {name: alone[(name,)] for name in candidates}
    blocks = blocks_of(candidates)
    bound = len(blocks) + MAX_REFINED * len(blocks[0])
    by_block = score(blocks, lambda done, _: progress(done, bound))
    refined = to_refine(by_block)
    members = [(name,) for block in refined for name in block]
    total = len(blocks) + len(members)
    alone = score(members, lambda done, _: progress(len(blocks) + done, total))
    gains: dict[str, float] = {}
    for block in blocks:
        for name in block:
            gains[name] = alone[(name,)] if block in refined else by_block[block] / len(block)
    return gains


def blocks_of(names: list[str]) -> list[Group]:
    """``names`` (in graph order) cut into about √n blocks of neighbours."""
    size = max(1, math.ceil(math.sqrt(len(names))))
    return [tuple(names[i : i + size]) for i in range(0, len(names), size)]


def to_refine(gains: dict[Group, float]) -> list[Group]:
    """The most helpful blocks, until they hold :data:`REFINE_SHARE` of the positive gain or
    :data:`MAX_REFINED` are chosen."""
    helpful = sorted((b for b in gains if gains[b] > 0), key=lambda b: -gains[b])
    total = sum(gains[b] for b in helpful)
    chosen: list[Group] = []
    for block in helpful:
        if len(chosen) >= MAX_REFINED or sum(gains[b] for b in chosen) >= REFINE_SHARE * total:
            break
        chosen.append(block)
    return chosen
