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


def test_a_cluster_failure_becomes_one_line_that_says_what_to_do() -> None:
    import ray

    from calibench.calibration.distributed.evaluation import cluster_errors
    from calibench.errors import TargetError

    missing = "Traceback ...\nModuleNotFoundError: No module named 'calibench'"
    with (
        pytest.raises(TargetError, match="install calibench .* on every node"),
        cluster_errors("an evaluation"),
    ):
        raise ray.exceptions.RayError(missing)
    with (
        pytest.raises(TargetError, match="failed during the ranking: RayError: node died"),
        cluster_errors("the ranking"),
    ):
        raise ray.exceptions.RayError("node died")
