from collections.abc import Callable, Sequence

import pytest

from calibench.calibration.accuracy_aware.ranking import (
    GROUP_FROM,
    MAX_REFINED,
    blocks_of,
    order_by_gain,
    revert_gains,
    to_refine,
)
from calibench.calibration.accuracy_aware.validator import Group


def test_near_equal_gains_put_the_layer_cheaper_in_fp32_first() -> None:
    gains = {"slow": 10.0, "fast": 9.8, "minor": 2.0, "tiny": 1.99}
    fp32_ms = {"slow": 5.0, "fast": 0.5, "minor": 1.0, "tiny": 0.1}
    assert order_by_gain(list(gains), gains, fp32_ms) == ["fast", "slow", "tiny", "minor"]


def test_a_clearly_larger_gain_comes_first_whatever_its_time() -> None:
    gains = {"slow": 10.0, "fast": 5.0}
    assert order_by_gain(["fast", "slow"], gains, {"slow": 9.0, "fast": 0.1}) == ["slow", "fast"]


class _Additive:
    """An evaluation where each layer's revert lowers the noise by its own harm, whatever else
    is reverted: what the ranking's blocks assume."""

    def __init__(self, harm: dict[str, float]) -> None:
        self.harm, self.ranked, self.runs = harm, 0, 0

    def noise_each(
        self,
        build: object,
        reverted: list[str],
        costs: dict[str, float],
        candidates: Sequence[Group],
        subset: object,
        progress: Callable[[int, int], None],
    ) -> dict[Group, float]:
        self.runs += len(candidates)
        for done, _ in enumerate(candidates, start=1):
            progress(done, len(candidates))
        total = sum(self.harm.values())
        return {g: total - sum(self.harm[n] for n in g) for g in candidates}


def test_a_large_model_is_ranked_by_blocks_and_finds_its_harmful_layers() -> None:
    names = [f"conv{i}" for i in range(275)]
    harm = dict.fromkeys(names, 0.01) | {"conv7": 5.0, "conv150": 3.0, "conv151": 2.5}
    evaluation = _Additive(harm)
    seen: list[tuple[int, int]] = []
    gains = revert_gains(
        evaluation,  # type: ignore[arg-type]
        lambda *_: None,  # type: ignore[arg-type]
        [],
        {},
        names,
        None,  # type: ignore[arg-type]
        sum(harm.values()),
        lambda d, t: seen.append((d, t)),
    )
    top = sorted(gains, key=lambda n: -gains[n])[:3]
    assert top == ["conv7", "conv150", "conv151"]
    assert gains["conv7"] == pytest.approx(5.0)
    assert evaluation.runs == evaluation.ranked <= 17 + MAX_REFINED * 17 < len(names) / 3
    assert all(d <= t for d, t in seen) and seen[-1][0] == seen[-1][1] == evaluation.runs


def test_a_small_model_is_ranked_one_layer_at_a_time() -> None:
    names = [f"conv{i}" for i in range(GROUP_FROM)]
    evaluation = _Additive(dict.fromkeys(names, 1.0))
    revert_gains(evaluation, None, [], {}, names, None, 96.0, lambda d, t: None)  # type: ignore[arg-type]
    assert evaluation.runs == GROUP_FROM


def test_blocks_are_neighbours_and_refined_by_their_share_of_the_gain() -> None:
    blocks = blocks_of([str(i) for i in range(10)])
    assert blocks == [("0", "1", "2", "3"), ("4", "5", "6", "7"), ("8", "9")]
    gains = {blocks[0]: 1.0, blocks[1]: 9.0, blocks[2]: -3.0}
    assert to_refine(gains) == [blocks[1]]  # 9 of 10 is past 80 %
    assert to_refine({b: 1.0 for b in blocks}) == list(blocks)
    assert to_refine({b: -1.0 for b in blocks}) == []
