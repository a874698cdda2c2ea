"""A client of the test Ray cluster in a process of its own (Ray reads its token settings when
it is imported, so each client starts with the cluster's variables in its environment).

``python -m tests._ray_split_run aa MODEL CAL VAL OUT WORKERS [--kill CLUSTER_ROOT]``: the
AccuracyAware run on Ray, writing OUT (the model) and OUT.json (its report); with ``--kill``,
one ShardWorker process of that cluster is killed with SIGKILL while the ranking runs. Speed
measurements (measured placement, AccuracyAware's revert costs) differ between any two runs,
local or not, so this run and the local one it is compared with place by rule and rank
without them (:func:`untimed`).
``… stats MODEL OUT``: the Default method on random inputs with each range estimator, the models
written to OUT-<estimator>.onnx.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import calibench
from tests.ray_cluster import RayCluster, _name


def stats_inputs() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"input": rng.random((1, 28, 28), dtype=np.float32)} for _ in range(40)]


@contextmanager
def untimed() -> Iterator[None]:
    """AccuracyAware without speed measurements: its revert costs are timings, which differ
    between any two runs; without them the search depends on the data alone."""
    import calibench.calibration.accuracy_aware.method as method

    measure = method.revert_speed
    method.revert_speed = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        yield
    finally:
        method.revert_speed = measure


def kill_one_worker(root: Path) -> int:
    cluster = RayCluster(root)
    workers = [p for p in cluster.processes() if _name(p).startswith("ray::ShardW")]
    if not workers:
        raise RuntimeError("no ShardWorker process found on the cluster")
    os.kill(workers[0], signal.SIGKILL)
    return workers[0]


def main(argv: list[str]) -> int:
    if argv[0] == "stats":
        model, out = argv[1], argv[2]
        for estimator in ("minmax", "percentile", "mse"):
            config = calibench.CalibrationConfig(
                range_estimator=estimator, batch_size=4, placement=calibench.Placement.RULE
            )
            result = calibench.calibrate(
                model, stats_inputs(), config=config, executor=calibench.RayShards(workers=3)
            )
            result.save(f"{out}-{estimator}.onnx")
        return 0
    model, cal, val, out, workers = argv[1:6]
    killed: list[int] = []
    root = Path(argv[7]) if argv[6:7] == ["--kill"] else None

    def progress(stage: str, done: int, total: int) -> None:
        if root is not None and stage == "ranking layers" and done == 2 and not killed:
            killed.append(kill_one_worker(root))

    with untimed():
        result = calibench.calibrate(
            model,
            cal,
            method="accuracy-aware",
            placement="rule",
            max_drop=2.0,
            validation=val,
            executor=calibench.RayShards(workers=int(workers)),
            progress=progress,
        )
    result.save(out)
    report = {"accuracy_aware": result.report.accuracy_aware, "killed": killed}
    Path(f"{out}.json").write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
