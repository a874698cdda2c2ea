"""AccuracyAware on a Ray cluster beside the local run: ``python -m bench.scale``.

Writes ``bench/SCALE.md`` and ``bench/scale.json``. MobileNetV2 (torchvision weights), 300
calibration crops and ``--validation`` (default 3000) other natural-photo crops labelled with
FP32's own top-1 (accuracy = top-1 agreement with FP32), maximum drop 2 points. One run in
this process (``executor="local"``), then one per worker count on a real local Ray cluster
(``tests/ray_cluster.py``: one node on 127.0.0.1, token authentication on, ``--cpus`` logical
CPUs). For each: wall time, evaluations, the timings the evaluation backend records (where the
time went), and a digest of the INT8 model, which must be the same for every run.

Speed measurements (measured placement, AccuracyAware's revert costs) differ between any two
runs, local or not; every run here places by rule and ranks without them
(:func:`tests._ray_split_run.untimed`), so the runs differ only in where the evaluations ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import ROOT, loadavg, log, machine_info, versions
from bench.data import save_npz
from bench.quality import predict_ort
from bench.scale_report import write_markdown

BUILD = ROOT / "build" / "bench" / "scale"
MAX_DROP = 2.0
CALIBRATION = 300


def prepare(validation: int) -> tuple[Path, Path, Path]:
    """The model, the calibration crops (.npz) and the imported, labelled validation set."""
    from calibench.data.importer import import_dataset
    from zoo.mobilenet_v2 import build_mobilenet_v2
    from zoo.photos import imagenet_preprocess, natural_crops

    model = build_mobilenet_v2(ROOT / "build" / "test-models" / "mobilenet_v2.onnx")
    folder = BUILD / f"val{validation}"
    dataset = folder / "datasets" / "val"
    calibration = BUILD / "calibration.npz"
    if not calibration.exists():
        save_npz(calibration, input=imagenet_preprocess(natural_crops(CALIBRATION, seed=0)))
    if not dataset.exists():
        inputs = imagenet_preprocess(natural_crops(validation, seed=7))
        labels = predict_ort(model, inputs, "input", 50).argmax(axis=1).astype(np.int64)
        npz = folder / "validation.npz"
        save_npz(npz, input=inputs, labels=labels)
        del inputs
        shutil.rmtree(folder / "datasets", ignore_errors=True)
        import_dataset(npz, folder / "datasets", name="val")
        npz.unlink()
    return model, calibration, dataset


def run_one(
    model: Path, calibration: Path, dataset: Path, executor: Any, subset: int | None
) -> dict[str, Any]:
    import calibench
    from calibench.config import CalibrationConfig, Method, Placement, Subset

    config = CalibrationConfig(
        method=Method.ACCURACY_AWARE,
        max_drop=MAX_DROP,
        placement=Placement.RULE,
        validation_subset=Subset.parse(str(subset)) if subset else None,
    )
    load = loadavg()
    start = time.perf_counter()
    result = calibench.calibrate(
        model, calibration, config=config, validation=dataset, executor=executor
    )
    wall = time.perf_counter() - start
    figures = result.report.accuracy_aware
    assert figures is not None
    return {
        "backend": figures["backend"],
        "wall_s": round(wall, 1),
        "stage_s": {k: round(v, 1) for k, v in result.report.stage_seconds.items()},
        "evaluations": figures["evaluations"],
        "timings": figures["timings"],
        "fp32": figures["fp32"],
        "default": figures["default"],
        "final": figures["final"],
        "reverted": sorted(figures["reverted"]),
        "model_sha256": hashlib.sha256(result.model.SerializeToString()).hexdigest(),
        "loadavg_before": load,
        "loadavg_after": loadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--validation", type=int, default=3000, help="validation crops")
    parser.add_argument(
        "--validation-subset", type=int, help="evaluate on this many of them (spread evenly)"
    )
    parser.add_argument("--workers", default="1,2,4", help="Ray worker counts to run")
    parser.add_argument("--cpus", type=int, default=4, help="logical CPUs of the Ray node")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    import os

    import calibench
    from calibench.config import Subset
    from tests._ray_split_run import untimed
    from tests.ray_cluster import running_ray_cluster

    log(f"preparing MobileNetV2 and {args.validation} validation crops")
    model, calibration, dataset = prepare(args.validation)
    runs = []
    with untimed():
        log("local run")
        runs.append(run_one(model, calibration, dataset, "local", args.validation_subset))
        log(f"local: {runs[-1]['wall_s']} s")
        with running_ray_cluster(cpus=args.cpus, worker_nodes=0) as cluster:
            os.environ.update(cluster.env)  # before Ray is imported: it reads them then
            log("warm-up: the worker processes start (and import ONNX Runtime) untimed")
            warm = calibench.CalibrationConfig(subset=Subset.parse("16"), batch_size=4)
            calibench.calibrate(
                model,
                calibration,
                config=warm,
                executor=calibench.RayShards(cluster.address, workers=args.cpus),
            )
            for workers in [int(w) for w in args.workers.split(",")]:
                log(f"Ray, {workers} workers")
                executor = calibench.RayShards(cluster.address, workers=workers)
                runs.append(run_one(model, calibration, dataset, executor, args.validation_subset))
                log(f"ray {workers}: {runs[-1]['wall_s']} s")
            import ray

            ray.shutdown()
    data = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {  # a snapshot of the tree (not a git checkout) names its commit itself
            **versions(),
            **(
                {"calibench_git": os.environ["BENCH_COMMIT"]}
                if "BENCH_COMMIT" in os.environ
                else {}
            ),
        },
        "validation": args.validation_subset or args.validation,
        "validation_set": args.validation,
        "calibration": CALIBRATION,
        "max_drop": MAX_DROP,
        "ray_node_cpus": args.cpus,
        "runs": runs,
        "identical": len({r["model_sha256"] for r in runs}) == 1,
    }
    (args.out / "scale.json").write_text(json.dumps(data, indent=2) + "\n")
    write_markdown(data, args.out / "SCALE.md")
    log(f"wrote {args.out / 'SCALE.md'}; identical models: {data['identical']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
