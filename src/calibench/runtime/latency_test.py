from functools import partial

import pytest

from calibench.runtime.latency import Latency, block_turn, interleaved


def test_turns_rotate_from_round_to_round_after_the_warmup() -> None:
    order: list[str] = []

    def turn(name: str) -> list[float]:
        order.append(name)
        return [1.0]

    turns = {n: partial(turn, n) for n in "abc"}
    result = interleaved(turns, min_rounds=3, warmup=1)
    assert order == list("abc" + "abc" + "bca" + "cab")
    assert result.rounds == 3 and result.turns["a"] == [[1.0]] * 3


def test_a_block_keeps_its_runs_after_the_discarded_ones() -> None:
    runs: list[int] = []
    turn = block_turn(lambda: runs.append(1), block=5, discard=2)
    assert len(turn()) == 3 and len(runs) == 5


def test_rounds_go_past_the_minimum_only_within_the_budget_and_the_maximum() -> None:
    turns = {"a": lambda: [1.0], "b": lambda: [2.0]}
    assert interleaved(turns, min_rounds=2, max_rounds=50, budget_s=0.0).rounds == 2
    assert interleaved(turns, min_rounds=2, max_rounds=7, budget_s=60.0).rounds == 7
    assert interleaved({}, min_rounds=3).rounds == 0


def test_paired_speedup_compares_turns_of_the_same_round() -> None:
    times = iter([4.0, 2.0, 8.0, 4.0, 40.0, 20.0])  # the machine slows down: the ratio holds
    turns = {"fp32": lambda: [next(times)], "int8": lambda: [next(times)]}
    result = interleaved(turns, min_rounds=3)
    # rotation: round 2 runs int8 first, so it takes the third value
    assert result.turns["fp32"] == [[4.0], [4.0], [40.0]]
    assert result.turns["int8"] == [[2.0], [8.0], [20.0]]
    assert result.paired_speedup("fp32", "int8") == pytest.approx(2.0)


def test_latency_figures() -> None:
    figures = Latency.of([float(v) for v in range(1, 101)])
    assert figures.runs == 100 and figures.median_ms == pytest.approx(50.5)
    assert figures.p10_ms < figures.p90_ms < figures.p99_ms <= 100
