import numpy as np
import pytest

pytest.importorskip("ray")

from calibench.calibration.distributed.evaluation import shards


def test_shards_are_consecutive_runs_that_cover_every_batch_once() -> None:
    batches: list[tuple[list[int], dict[str, np.ndarray]]] = [([i], {}) for i in range(10)]
    got = list(shards(iter(batches), expected=10, count=4))
    assert [len(s) for s in got] == [3, 3, 3, 1]
    assert [b for s in got for b in s] == batches
    assert list(shards(iter(batches[:2]), expected=2, count=4)) == [[batches[0]], [batches[1]]]
