"""The search against a fake evaluator: layers with known costs, no model, no onnxruntime."""

from __future__ import annotations

from calibench.calibration.accuracy_aware.search import (
    MAX_ROUNDS,
    STOP_SLOWER,
    Iteration,
    TooSlow,
    Trial,
    fastest_prefix,
    search,
)

FP32 = 100.0
COSTS = {"a": 5.0, "b": 3.0, "c": 1.0, "d": 0.5, "e": 0.2, "f": 0.1, "g": 0.1, "h": 0.1}


class Fake:
    """Accuracy = FP32 − the cost of every layer still in INT8 − a residual no revert removes."""

    def __init__(
        self, residual: float = 0.0, ranked_per_round: int | None = None, first: str = ""
    ) -> None:
        self.residual = residual
        self.first = first
        """A layer the ranking puts first whatever its cost (rankings are estimates)."""
        self.ranked_per_round = ranked_per_round
        self.calls: list[list[str]] = []
        self.rankings: list[list[str]] = []

    @property
    def evaluations(self) -> int:
        return len(self.calls)

    def __call__(self, reverted: list[str]) -> Trial[None]:
        self.calls.append(list(reverted))
        return Trial(self.accuracy(reverted), None, list(reverted))

    def accuracy(self, reverted: list[str]) -> float:
        return FP32 - self.residual - sum(c for n, c in COSTS.items() if n not in reverted)

    def rank(self, reverted: list[str], drop: float) -> list[str]:
        left = sorted(
            (n for n in COSTS if n not in reverted), key=lambda n: (n != self.first, -COSTS[n])
        )
        ranking = left[: self.ranked_per_round] if self.ranked_per_round else left
        self.rankings.append(ranking)
        return ranking


def _run(
    fake: Fake, allowed: float, too_slow: TooSlow | None = None, confirm: TooSlow | None = None
) -> tuple[Trial[None], list[Iteration]]:
    start = Trial(fake.accuracy([]), None, [])
    iterations: list[Iteration] = []
    costs = dict(COSTS)
    found = search(
        fake,
        fake.rank,
        start,
        costs,
        {},
        FP32,
        allowed,
        iterations,
        lambda d, t, s: None,
        too_slow,
        confirm,
    )
    return found, iterations


def _slower_past(count: int) -> TooSlow:
    """A speed estimate: the model is no faster than FP32 with more than ``count`` reverts."""
    return lambda reverted: len(reverted) > count


def test_the_top_of_the_ranking_is_reverted_doubling_then_bisecting_to_the_fewest() -> None:
    fake = Fake()
    found, iterations = _run(fake, allowed=1.0)
    assert found.reverted == ["a", "b", "c"] and FP32 - found.accuracy <= 1.0
    assert [i.step for i in iterations] == [
        "revert top 1",
        "revert top 2",
        "revert top 4",
        "revert top 3",
    ]  # no shrinking: giving c back leaves {a, b}, measured already
    assert fake.calls[:4] == [["a"], ["a", "b"], ["a", "b", "c", "d"], ["a", "b", "c"]]
    assert [i.evaluations for i in iterations] == [1, 2, 3, 4]
    assert len(fake.rankings) == 1  # met in the first round: no second ranking


def test_layers_reverted_past_need_are_given_back_cheapest_per_millisecond_first() -> None:
    fake = Fake(first="h")
    found, iterations = _run(fake, allowed=2.1)
    assert [i.step for i in iterations][-3:] == ["revert top 3", "requantize 1", "requantize 1"]
    assert iterations[-3].reverted == ["h", "a", "b"]
    assert iterations[-2].reverted == ["a", "b"]  # h cost least: back to INT8, drop 2.0 holds
    assert iterations[-1].reverted == ["a"]  # then b: drop 5.0, refused
    assert found.reverted == ["a", "b"]


def test_a_model_that_already_meets_the_drop_is_kept_without_an_evaluation() -> None:
    fake = Fake()
    found, iterations = _run(fake, allowed=20.0)
    assert found.reverted == [] and fake.calls == [] and fake.rankings == [] and iterations == []


def test_a_target_out_of_reach_gives_up_with_the_best_model_found() -> None:
    fake = Fake(residual=3.0)
    found, iterations = _run(fake, allowed=1.0)
    assert sorted(found.reverted) == sorted(COSTS) and found.accuracy == FP32 - 3.0
    assert [i.step for i in iterations] == [f"revert top {k}" for k in (1, 2, 4, 8)]
    assert fake.rankings[-1] == []  # ranked again with everything reverted: nothing left
    assert not any(i.step.startswith("requantize") for i in iterations)


def test_each_round_ranks_again_after_the_best_prefix_and_rounds_are_bounded() -> None:
    fake = Fake(ranked_per_round=1)  # each ranking finds one harmful layer only
    found, _ = _run(fake, allowed=0.05)
    assert fake.rankings == [["a"], ["b"], ["c"], ["d"]][:MAX_ROUNDS]
    assert found.reverted == ["a", "b", "c", "d"][:MAX_ROUNDS]


def test_a_set_already_measured_is_not_measured_again() -> None:
    fake = Fake()
    _run(fake, allowed=1.0)
    assert len({frozenset(c) for c in fake.calls}) == len(fake.calls)


def test_reverts_that_would_lose_the_speed_up_are_never_evaluated() -> None:
    fake = Fake(residual=3.0)  # the drop cannot be met at all
    found, iterations = _run(fake, allowed=1.0, too_slow=_slower_past(2))
    assert max(len(c) for c in fake.calls) == 2  # never 4 or 8 layers, as without the estimate
    assert iterations[-1].step == STOP_SLOWER
    assert len(fake.rankings) == 1  # stopped: no second ranking
    assert found.reverted == ["a", "b"]


def test_a_default_model_no_faster_than_fp32_stops_before_ranking() -> None:
    fake = Fake()
    found, iterations = _run(fake, allowed=1.0, too_slow=_slower_past(-1))
    assert fake.calls == [] and fake.rankings == []
    assert [i.step for i in iterations] == [STOP_SLOWER] and found.reverted == []


def test_the_estimate_does_not_change_a_search_that_stays_fast() -> None:
    plain, with_estimate = Fake(), Fake()
    found, _ = _run(plain, allowed=1.0)
    again, iterations = _run(with_estimate, allowed=1.0, too_slow=_slower_past(8))
    assert again.reverted == found.reverted and with_estimate.calls == plain.calls
    assert STOP_SLOWER not in [i.step for i in iterations]


def test_fastest_prefix_is_the_longest_prefix_still_faster_than_fp32() -> None:
    ranking = list("abcdefgh")
    assert fastest_prefix(ranking, [], _slower_past(3)) == 3
    assert fastest_prefix(ranking, ["x"], _slower_past(3)) == 2
    assert fastest_prefix(ranking, [], _slower_past(20)) == 8


class Worse(Fake):
    """Only "a" helps; every other revert costs a point (new FP32/INT8 borders, as on an OCR
    recognizer whose drop grew from 23 to 28 points between 64 and 128 reverts)."""

    def accuracy(self, reverted: list[str]) -> float:
        return FP32 - 10.0 + 5.0 * ("a" in reverted) - sum(1.0 for n in reverted if n != "a")


def test_a_round_that_finds_nothing_better_is_not_ranked_again() -> None:
    fake = Worse()
    found, _ = _run(fake, allowed=1.0)
    assert found.reverted == ["a"]
    assert len(fake.rankings) == 2  # the second ranking, from ["a"], found nothing better


def test_the_whole_model_check_times_the_estimates_cut_and_halves_it_only() -> None:
    fake = Fake(residual=3.0)  # the drop cannot be met at all
    checked: list[int] = []

    def confirm(reverted: list[str]) -> bool:  # the estimate misses conversions past 2 layers
        checked.append(len(reverted))
        return len(reverted) > 2

    found, iterations = _run(fake, allowed=1.0, too_slow=_slower_past(8), confirm=confirm)
    assert checked == [0, 8, 4, 2]  # the default model, then the cut halved: no bisection
    assert max(len(c) for c in fake.calls) == 2 and found.reverted == ["a", "b"]
    assert iterations[-1].step == STOP_SLOWER
