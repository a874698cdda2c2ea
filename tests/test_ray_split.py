"""One calibration split over a real local Ray cluster (tests/ray_cluster.py: two nodes on
127.0.0.1, token authentication on): the same INT8 model as the local run, byte for byte, and
the same model again when a worker process is killed in the middle of the evaluations.

Each Ray client runs in a process of its own, started with the cluster's variables (Ray reads
its token settings when it is imported): the CLI itself, or ``tests/_ray_split_run.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import calibench
from calibench.data.importer import import_dataset
from calibench.runtime.session import make_session
from tests._ray_split_run import stats_inputs, untimed
from tests.ray_cluster import RayCluster
from zoo.photos import imagenet_preprocess, natural_crops


def _client(cluster: RayCluster | None, *argv: str, timeout: float = 900) -> Any:
    env = {**os.environ, **(cluster.env if cluster else {})}
    return subprocess.run(
        [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def crops(mobilenet_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Calibration crops, and validation crops labelled with FP32's own top-1 (so FP32 scores
    100 and the Default model misses a 2-point drop: AccuracyAware has work to do)."""
    root = tmp_path_factory.mktemp("ray-split")
    x = imagenet_preprocess(natural_crops(96, seed=7))
    session = make_session(mobilenet_path)
    labels = np.concatenate(
        [session.run(None, {"input": x[i : i + 32]})[0].argmax(1) for i in range(0, len(x), 32)]
    )
    np.savez(root / "val.npz", input=x, labels=labels)
    np.savez(root / "cal.npz", input=imagenet_preprocess(natural_crops(32, seed=0)))
    return {
        "calibration": root / "cal.npz",
        "validation": Path(import_dataset(root / "val.npz", root / "datasets", name="val").path),
        "root": root,
    }


@pytest.fixture(scope="module")
def local_run(mobilenet_path: Path, crops: dict[str, Path]) -> dict[str, Any]:
    """The local run, placed by rule and ranked without speed measurements, as the Ray runs
    (:func:`tests._ray_split_run.untimed`): timings differ between any two runs, local or not."""
    with untimed():
        result = calibench.calibrate(
            mobilenet_path,
            crops["calibration"],
            method="accuracy-aware",
            placement="rule",
            max_drop=2.0,
            validation=crops["validation"],
        )
    figures = result.report.accuracy_aware
    assert figures is not None
    assert figures["reverted"] and figures["evaluations"]["ranking"] > 0  # a real search ran
    return {"model": result.model.SerializeToString(), "figures": figures}


def _same(local: dict[str, Any], model: Path, figures: dict[str, Any]) -> None:
    assert model.read_bytes() == local["model"]
    for key in ("fp32", "default", "final", "reverted", "evaluations", "met", "iterations"):
        assert figures[key] == local["figures"][key], key


def test_an_address_where_no_cluster_answers_is_refused_in_words(
    fashion_cnn: Path, tmp_path: Path
) -> None:
    npz = tmp_path / "cal.npz"
    np.savez(npz, input=np.zeros((2, 1, 28, 28), np.float32))
    done = _client(
        None, "-m", "calibench.cli", "calibrate", str(fashion_cnn), "-d", str(npz),
        "-o", str(tmp_path / "int8.onnx"), "--ray", "127.0.0.1:9", "-q",
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert "no Ray cluster answers at 127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "int8.onnx").exists()


def test_accuracy_aware_on_ray_returns_the_local_model_byte_for_byte(
    ray_cluster: RayCluster, mobilenet_path: Path, crops: dict[str, Path], local_run: Any
) -> None:
    out = crops["root"] / "ray.onnx"
    done = _client(
        ray_cluster, "-m", "tests._ray_split_run", "aa", str(mobilenet_path),
        str(crops["calibration"]), str(crops["validation"]), str(out), "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(Path(f"{out}.json").read_text())["accuracy_aware"]
    assert figures["backend"] == "ray (3 workers)"
    assert figures["timings"]["workers_busy_s"] > 0
    _same(local_run, out, figures)


def test_a_worker_killed_mid_evaluation_is_replaced_and_the_answer_is_unchanged(
    ray_cluster: RayCluster, mobilenet_path: Path, crops: dict[str, Path], local_run: Any
) -> None:
    out = crops["root"] / "ray-killed.onnx"
    done = _client(
        ray_cluster, "-m", "tests._ray_split_run", "aa", str(mobilenet_path),
        str(crops["calibration"]), str(crops["validation"]), str(out), "2",
        "--kill", str(ray_cluster.root),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(Path(f"{out}.json").read_text())
    killed = report["killed"]
    assert killed, "the ranking never ran, so no worker was killed"
    assert not Path(f"/proc/{killed[0]}/comm").exists()  # it is gone; another took its shard
    _same(local_run, out, report["accuracy_aware"])


def test_statistics_shards_merge_into_the_local_ranges(
    ray_cluster: RayCluster, fashion_cnn: Path, tmp_path: Path
) -> None:
    done = _client(ray_cluster, "-m", "tests._ray_split_run", "stats", str(fashion_cnn),
                   str(tmp_path / "ray"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for estimator in ("minmax", "percentile", "mse"):
        config = calibench.CalibrationConfig(
            range_estimator=estimator, batch_size=4, placement=calibench.Placement.RULE
        )
        local = calibench.calibrate(fashion_cnn, stats_inputs(), config=config)
        remote = (tmp_path / f"ray-{estimator}.onnx").read_bytes()
        assert remote == local.model.SerializeToString(), estimator


def test_calibrate_ray_on_the_command_line_writes_the_local_model(
    ray_cluster: RayCluster, fashion_cnn: Path, tmp_path: Path
) -> None:
    np.savez(tmp_path / "cal.npz", input=np.stack([s["input"] for s in stats_inputs()]))
    written = {}
    for where in ("local", "ray"):
        out = tmp_path / f"{where}.onnx"
        extra = ("--ray", "auto", "--ray-workers", "2") if where == "ray" else ()
        done = _client(
            ray_cluster, "-m", "calibench.cli", "calibrate", str(fashion_cnn),
            "-d", str(tmp_path / "cal.npz"), "--range-estimator", "percentile",
            "--batch-size", "4", "--placement", "rule", "-o", str(out), "-q", *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        written[where] = out.read_bytes()
    assert written["ray"] == written["local"]
