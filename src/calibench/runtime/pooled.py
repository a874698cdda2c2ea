"""Whole runs of ONNX Runtime models, interleaved, in a child process whose sessions share one
global thread pool: how placement and AccuracyAware compare whole models on several threads.

In one process every session has its own intra-op pool, whose idle threads spin on after its
run and take the cores the next session's run needs: timed in turns at batch 8 on 2 threads,
the same MobileNetV2 INT8 model read 0.86-1.10x itself. Turning spinning off steadies that,
but it is not how a model is deployed (ONNX Runtime spins by default) and it is unfair to the
kernels that use every thread: without spinning, the Fashion-MNIST CNN with two layers kept
FP32 timed 1.17x faster than the rule model at batch 8, 2 threads, and ran 19 % slower as
deployed. A global pool shared by all sessions keeps spinning and removes the contention, but
it must be set before a process's first session: hence the fresh process.

``python -m calibench.runtime.pooled SPEC OUT``: SPEC (JSON) names the models (label → ONNX
file), the inputs (``.npz``), the threads and the budget; OUT gets the turns measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from calibench.runtime.latency import Interleaved, block_turn, interleaved

START_S = 120.0
"""Seconds the child may take beyond its budget: imports and the sessions' creation."""
_POOL: list[int] = []
"""The thread count of this process's global pool, once set."""


def interleaved_pooled(
    models: Mapping[str, onnx.ModelProto],
    feeds: Mapping[str, np.ndarray],
    threads: int,
    budget_s: float,
) -> Interleaved:
    """:func:`~calibench.runtime.latency.interleaved` turns of 5 runs (the first dropped) of
    each model on ``feeds``, in a child process with one global pool of ``threads`` threads."""
    with tempfile.TemporaryDirectory(prefix="calibench-pooled-") as tmp:
        root = Path(tmp)
        paths = {}
        for index, (name, model) in enumerate(models.items()):
            paths[name] = str(root / f"m{index}.onnx")
            Path(paths[name]).write_bytes(model.SerializeToString())
        np.savez(root / "feeds.npz", **dict(feeds))  # type: ignore[arg-type]
        spec = {"models": paths, "feeds": str(root / "feeds.npz"), "threads": threads}
        (root / "spec.json").write_text(json.dumps({**spec, "budget_s": budget_s}))
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(root / "spec.json"), str(root / "out.json")],
            capture_output=True,
            text=True,
            timeout=budget_s + START_S,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"the timing process failed: {last}")
        out = json.loads((root / "out.json").read_text())
    return Interleaved(out["turns"], out["walls"], out["rounds"], out["seconds"])


def pooled_session(path: Path, threads: int) -> Any:
    """A session on the process's global pool of ``threads`` threads (set by the first call)."""
    import onnxruntime as ort
    from onnxruntime.capi import _pybind_state

    if not _POOL:  # must come before the process's first session
        _pybind_state.set_global_thread_pool_sizes(threads, 1)
        _POOL.append(threads)
    if _POOL[0] != threads:
        raise ValueError("one process times one thread count")
    options = ort.SessionOptions()
    options.use_per_session_threads = False
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv: Sequence[str] | None = None) -> None:
    spec_path, out_path = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(spec_path).read_text())
    with np.load(spec["feeds"]) as data:
        feeds = {name: data[name] for name in data.files}
    turns = {}
    for name, path in spec["models"].items():
        session = pooled_session(Path(path), int(spec["threads"]))
        turns[name] = block_turn(
            lambda s=session: s.run(None, feeds),  # type: ignore[misc]
            block=5,
            discard=1,
        )
    result = interleaved(turns, min_rounds=7, max_rounds=400, budget_s=spec["budget_s"], warmup=2)
    out = {
        "turns": result.turns,
        "walls": result.walls,
        "rounds": result.rounds,
        "seconds": result.seconds,
    }
    Path(out_path).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
