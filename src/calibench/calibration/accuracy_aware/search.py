"""Which layers to send back to FP32: the decisions of AccuracyAware, apart from any model.

Pure: the caller supplies an *evaluator* (build the model with these layers in FP32, measure
its accuracy on the validation set) and a *ranker* (the INT8 layers most harmful first), so the
search runs, and is tested, without onnxruntime or files.

1. The top 1, 2, 4, 8 … layers of the ranking are tried until the drop is met, then the count
   is bisected down to the fewest layers that meet it.
2. If every ranked layer fails, the best prefix is kept and the rest ranked again (a few rounds,
   while a round still finds a better prefix: from the same reverted set a ranking repeats).
3. Once the drop is met, layers are given back to INT8 while it still holds, those that cost
   the least accuracy per millisecond of FP32 time first (the prefix search overshoots, since
   the ranking measured one layer at a time).
4. With a speed estimate (``too_slow``), no candidate estimated no faster than FP32 is
   evaluated: the ranking is cut where reverting more would lose INT8's speed-up, and when
   the drop cannot be met within it the search stops (:data:`STOP_SLOWER`) instead of
   evaluating ever larger reverts. The cut is found on the estimate (free); a whole-model
   check (``confirm``: seconds per call) then times only the largest prefix it allows, and
   halves it while that is slower (:data:`MAX_CONFIRMS` times at most).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
MAX_ROUNDS = 4
"""Rankings made at most: each one after the best prefix of the previous one is reverted."""
MAX_CONFIRMS = 5
"""Whole-model checks of a round's cut at most: the largest prefix, then half, a quarter…"""
STOP_SLOWER = "stop: reverting more cannot beat FP32"
"""The step logged when the search stops because every further revert is estimated slower
than FP32."""


@dataclass
class Iteration:
    step: str
    reverted: list[str]
    accuracy: float
    drop: float
    evaluations: int
    """Full validation evaluations spent so far."""


@dataclass(frozen=True)
class Trial(Generic[T]):
    """One candidate measured on the whole validation set."""

    accuracy: float
    built: T
    """What the evaluator built (for calibration: the plan and the model); opaque here."""
    reverted: list[str]


class Evaluator(Protocol[T]):
    """Builds the candidate with ``reverted`` in FP32 and measures it on the validation set."""

    @property
    def evaluations(self) -> int:
        """Full validation evaluations spent so far (for the iteration log)."""
        ...

    def __call__(self, reverted: list[str]) -> Trial[T]: ...


TooSlow = Callable[[list[str]], bool]
"""``(reverted) ->`` whether the model with ``reverted`` in FP32 is estimated no faster than
FP32 (cheap: no model is built or run)."""
Ranker = Callable[[list[str], float], list[str]]
"""``(reverted, drop) ->`` the INT8 layers left, most harmful first; it also fills the costs."""
Progress = Callable[[int, int, str], None]


def search(
    evaluate: Evaluator[T],
    rank: Ranker,
    start: Trial[T],
    costs: dict[str, float],
    fp32_ms: dict[str, float],
    fp32_accuracy: float,
    allowed: float,
    iterations: list[Iteration],
    progress: Progress,
    too_slow: TooSlow | None = None,
    confirm: TooSlow | None = None,
) -> Trial[T]:
    """The candidate to keep: the fewest reverts that meet ``allowed``, else the best found.
    ``too_slow`` is the free estimate, ``confirm`` the costly whole-model check (module doc)."""
    best = start
    tried: dict[frozenset[str], Trial[T]] = {}
    """Reverted sets already evaluated on the whole validation set: never twice."""
    reverted: list[str] = []
    rounds = 0

    def stop() -> None:
        drop = fp32_accuracy - best.accuracy
        iterations.append(
            Iteration(STOP_SLOWER, list(best.reverted), best.accuracy, drop, evaluate.evaluations)
        )

    while fp32_accuracy - best.accuracy > allowed and rounds < MAX_ROUNDS:
        rounds += 1
        if confirm(reverted) if confirm else too_slow is not None and too_slow(reverted):
            stop()  # the current model is slower than FP32, timed whole where it can be
            break
        ranking = rank(reverted, fp32_accuracy - best.accuracy)
        if not ranking:
            break
        fast = len(ranking) if too_slow is None else fastest_prefix(ranking, reverted, too_slow)
        fast = confirmed_prefix(ranking, reverted, fast, confirm)
        if fast > 0:
            found = search_prefix(
                evaluate,
                ranking[:fast],
                reverted,
                fp32_accuracy,
                allowed,
                tried,
                iterations,
                progress,
            )
            if found.accuracy > best.accuracy or fp32_accuracy - found.accuracy <= allowed:
                best = found
            if best.reverted == reverted:
                break  # no prefix beat the last round's best: ranking again would repeat it
            reverted = list(best.reverted)
        if fp32_accuracy - best.accuracy <= allowed:
            break
        if fast < len(ranking):
            stop()
            break
    if fp32_accuracy - best.accuracy <= allowed and len(best.reverted) > 1:
        best = shrink(evaluate, best, costs, fp32_ms, fp32_accuracy, allowed, iterations)
    return best


def fastest_prefix(ranking: list[str], reverted: list[str], too_slow: TooSlow) -> int:
    """The most top-ranked layers that can be reverted (after ``reverted``) with the model still
    estimated faster than FP32 (reverting more never makes a model faster here)."""
    low, high = 0, len(ranking)
    if not too_slow([*reverted, *ranking]):
        return high
    while high - low > 1:  # too_slow(low) is False, too_slow(high) is True
        middle = (low + high) // 2
        if too_slow([*reverted, *ranking[:middle]]):
            high = middle
        else:
            low = middle
    return low


def confirmed_prefix(
    ranking: list[str], reverted: list[str], fast: int, confirm: TooSlow | None
) -> int:
    """``fast`` (the estimate's cut), halved while the whole-model check finds it slower; 0
    when :data:`MAX_CONFIRMS` checks all find it slower."""
    if confirm is None:
        return fast
    for _ in range(MAX_CONFIRMS):
        if fast == 0 or not confirm([*reverted, *ranking[:fast]]):
            return fast
        fast //= 2
    return 0


def search_prefix(
    evaluate: Evaluator[T],
    ranking: list[str],
    reverted: list[str],
    fp32_accuracy: float,
    allowed: float,
    known: dict[frozenset[str], Trial[T]],
    iterations: list[Iteration],
    progress: Progress,
) -> Trial[T]:
    """Fewest top-ranked layers to revert that meet the drop: doubling, then bisection; the
    most accurate prefix tried when none meets it."""
    tried: dict[int, Trial[T]] = {}

    def attempt(k: int) -> Trial[T]:
        names = [*reverted, *ranking[:k]]
        if k not in tried and frozenset(names) in known:
            tried[k] = known[frozenset(names)]
        if k not in tried:
            trial = evaluate(names)
            tried[k] = known[frozenset(names)] = trial
            drop = fp32_accuracy - trial.accuracy
            iterations.append(
                Iteration(f"revert top {k}", names, trial.accuracy, drop, evaluate.evaluations)
            )
            progress(min(k, len(ranking)), len(ranking), f"drop {drop:.3f}, max {allowed:.3f}")
        return tried[k]

    def ok(k: int) -> bool:
        return fp32_accuracy - attempt(k).accuracy <= allowed

    low, k = 0, 1
    while k < len(ranking) and not ok(k):
        low, k = k, k * 2
    k = min(k, len(ranking))
    if not ok(k):
        return max(tried.values(), key=lambda t: t.accuracy)
    high = k
    while high - low > 1:
        middle = (low + high) // 2
        if ok(middle):
            high = middle
        else:
            low = middle
    return attempt(high)


def shrink(
    evaluate: Evaluator[T],
    found: Trial[T],
    costs: dict[str, float],
    fp32_ms: dict[str, float],
    fp32_accuracy: float,
    allowed: float,
    iterations: list[Iteration],
) -> Trial[T]:
    """Give layers back to INT8 while the target still holds, those that cost the least
    accuracy per millisecond of FP32 time first: half of the reverted set, then quarters…"""
    best = found
    reverted = list(found.reverted)
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
        measured = evaluate(trial)
        iterations.append(
            Iteration(
                f"requantize {len(candidates)}",
                trial,
                measured.accuracy,
                fp32_accuracy - measured.accuracy,
                evaluate.evaluations,
            )
        )
        if fp32_accuracy - measured.accuracy <= allowed:
            best, reverted = measured, trial
            chunk = min(chunk, len(reverted) // 2)
        else:
            chunk //= 2
    return best
