"""Interleaved latency: FP32 and INT8 models timed alternately in one process.

``python -m bench.timing <spec.json> <out.json>`` where the spec names the runtime
(``ort`` or ``openvino``), the batch size, the thread count, the models (label -> path, FP32
first), the input npz and the round budget. One process per (runtime, batch, threads).

Each round runs every model for a block of ``block`` consecutive runs, in an order rotated from
round to round, so slow drifts of the machine (frequency, noisy neighbours) hit all models alike.
The first ``discard`` runs of each block are dropped: right after a switch a model runs on caches
the previous model has evicted (measured here: the first MobileNetV2 run after a switch is
10-30% slower, the third is warm), which is not how a deployed model runs. Medians of the kept
runs are reported.

ORT settings (the same for every model): one *global* intra-op thread pool of ``threads``
threads shared by all sessions (``set_global_thread_pool_sizes`` + ``use_per_session_threads =
False``), spinning at its default, sequential execution, ``ORT_ENABLE_ALL``, CPU provider.
Per-session pools are not usable for interleaving: each session's idle workers keep spinning
after its run and steal the cores from the next session's run (measured: MobileNetV2 batch 8 on
2 threads went from 25 ms alone to 54 ms interleaved). OpenVINO: CPU plugin,
``INFERENCE_NUM_THREADS`` = threads, one stream, latency hint, ``INFERENCE_PRECISION_HINT`` = f32
(this CPU has AMX-BF16, where OpenVINO would otherwise run FP32 layers in bf16), static input
shape of the batch size.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibench.runtime import latency
from calibench.runtime.latency import Runner
from calibench.runtime.pooled import pooled_session


def ort_runner(path: Path, feeds: dict[str, np.ndarray], threads: int) -> Runner:
    session = pooled_session(path, threads)  # the process's one global pool, as placement's
    return lambda: session.run(None, feeds)


def openvino_compile(path: Path, shapes: dict[str, Sequence[int]], threads: int) -> Any:
    """Compile an ONNX file for OpenVINO's CPU plugin with static ``shapes``."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({name: list(shape) for name, shape in shapes.items()})
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    return core.compile_model(model, "CPU", config)


def openvino_runner(path: Path, feeds: dict[str, np.ndarray], threads: int) -> Runner:
    compiled = openvino_compile(path, {k: v.shape for k, v in feeds.items()}, threads)
    request = compiled.create_infer_request()
    return lambda: request.infer(feeds)


RUNNERS: dict[str, Callable[[Path, dict[str, np.ndarray], int], Runner]] = {
    "ort": ort_runner,
    "openvino": openvino_runner,
}


def interleaved(
    runners: dict[str, Runner],
    block: int,
    discard: int,
    budget_s: float,
    min_rounds: int,
    max_rounds: int,
) -> dict[str, Any]:
    """Time ``runners`` in rotating blocks; the round count fills ``budget_s`` within bounds."""
    timed = latency.interleaved(
        {name: latency.block_turn(run, block, discard) for name, run in runners.items()},
        min_rounds=min_rounds,
        max_rounds=max_rounds,
        budget_s=budget_s,
        warmup=1,
    )
    result: dict[str, Any] = {
        "rounds": timed.rounds,
        "block": block,
        "discard": discard,
        "seconds": round(timed.seconds, 2),
    }
    for name in runners:
        figures = timed.latency(name)
        result[name] = {
            "median_ms": figures.median_ms,
            "p10_ms": figures.p10_ms,
            "p90_ms": figures.p90_ms,
            "runs": figures.runs,
        }
    names = list(runners)
    for name in names[1:]:
        result[name]["paired_speedup"] = timed.paired_speedup(names[0], name)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        raise SystemExit("usage: python -m bench.timing <spec.json> <out.json>")
    spec = json.loads(Path(args[0]).read_text())
    with np.load(spec["inputs"], allow_pickle=False) as data:
        feeds = {k: np.ascontiguousarray(data[k][: spec["batch"]]) for k in data.files}
    make = RUNNERS[spec["runtime"]]
    runners: dict[str, Runner] = {}
    errors: dict[str, str] = {}
    for label, path in spec["models"].items():  # the first model is the FP32 reference
        try:
            runners[label] = make(Path(path), feeds, spec["threads"])
            runners[label]()
        except Exception as exc:  # a peer's model the runtime rejects is a result, not a crash
            errors[label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    result = interleaved(
        runners,
        spec["block"],
        spec["discard"],
        spec["budget_s"],
        spec["min_rounds"],
        spec["max_rounds"],
    )
    result["errors"] = errors
    Path(args[1]).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
