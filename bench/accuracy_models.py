"""The models, data, quantizers and evaluation of :mod:`bench.accuracy`."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import ROOT

WORK = ROOT / "build" / "accuracy"
DATE = "2026-11-30"
CALIBRATION_SAMPLES = 300
QEMU = "qemu-x86_64"
QEMU_CPU = "Haswell"
QEMU_LABEL = (
    "Haswell (AVX2, no VNNI), emulated by qemu-user 7.2, ORT's real AVX2 kernels — accuracy "
    "only; speed not measurable under emulation"
)
QEMU_BATCH = 10
QEMU_PARALLEL = 2
"""qemu processes run at once (each single-threaded)."""
VALGRIND = "valgrind"
VALGRIND_PARALLEL = 2
"""callgrind processes run at once; instruction counts do not depend on it."""
INSTRUCTION_RUNS = {"mobilenet_v2": 6, "fashion": 11, "efficientnet_lite0": 6}
"""Inferences in the long callgrind run (the short one does 1); per inference = difference/(n-1)."""
INSTRUCTION_QUANTIZERS = ["calibench-vnni", "calibench-avx2", "ort", "ort-reduce-range"]
"""Quantizers whose models are counted (NNCF left out: its runs are the slowest, time-boxed)."""


@dataclass(frozen=True)
class Settings:
    eval_samples: dict[str, int]
    qemu_samples: dict[str, int]
    budget_s: float
    min_rounds: int
    max_rounds: int
    block: int
    discard: int


FULL = Settings(
    eval_samples={"mobilenet_v2": 500, "fashion": 10000, "efficientnet_lite0": 500},
    qemu_samples={"mobilenet_v2": 100, "fashion": 1000, "efficientnet_lite0": 80},
    budget_s=10.0, min_rounds=5, max_rounds=300, block=10, discard=3,
)  # fmt: skip
QUICK = Settings(
    eval_samples={"mobilenet_v2": 50, "fashion": 500, "efficientnet_lite0": 50},
    qemu_samples={"mobilenet_v2": 5, "fashion": 50, "efficientnet_lite0": 5},
    budget_s=1.0, min_rounds=2, max_rounds=20, block=4, discard=1,
)  # fmt: skip

QUANTIZERS: dict[str, str] = {
    "calibench-vnni": "calibench isa=vnni (plain u8s8)",
    "calibench-avx2": "calibench isa=avx2 (overflow-safe)",
    "ort": "ORT quantize_static, reduce_range=False",
    "ort-reduce-range": "ORT quantize_static, reduce_range=True",
    "nncf": "NNCF quantize (performance)",
}


# --- models and data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    model: Path
    input_name: str
    calibration: Path
    eval_inputs: np.ndarray
    eval_labels: np.ndarray | None
    quality: str
    batch: int
    description: str


def _from_prepared(prep: Any) -> Case:
    return Case(prep.name, prep.label, prep.model, prep.input_name, prep.calibration,
                prep.eval_inputs, prep.eval_labels, prep.quality, prep.eval_batch,
                prep.description)  # fmt: skip


def prepare_efficientnet(root: Path, n_calibration: int, n_eval: int) -> Case:
    from bench.data import prepare_efficientnet_lite0

    return _from_prepared(prepare_efficientnet_lite0(root, n_calibration, n_eval))


def prepare(name: str, n_eval: int) -> Case:
    from bench.data import prepare_fashion, prepare_mobilenet_v2

    if name == "mobilenet_v2":
        return _from_prepared(prepare_mobilenet_v2(WORK, CALIBRATION_SAMPLES, n_eval))
    if name == "fashion":
        return _from_prepared(prepare_fashion(WORK, CALIBRATION_SAMPLES, n_eval))
    if name == "efficientnet_lite0":
        return prepare_efficientnet(WORK, CALIBRATION_SAMPLES, n_eval)
    raise SystemExit(f"unknown model {name!r}")


# --- quantizers ------------------------------------------------------------------------------


def _calibench(isa: str, case: Case, out: Path) -> dict[str, Any]:
    import calibench
    from calibench.config import CalibrationConfig, Subset

    config = CalibrationConfig(
        isa=isa, preset="performance", subset=Subset(percent=None, count=CALIBRATION_SAMPLES)
    )
    result = calibench.calibrate(str(case.model), str(case.calibration), config=config)
    result.save(out)
    report = result.report.to_dict()
    overflow = report.get("overflow") or []
    schemes: dict[str, int] = {}
    for layer in overflow:
        key = str(layer.get("scheme", "?"))
        schemes[key] = schemes.get(key, 0) + 1
    return {
        "subset": report.get("subset_size"),
        "isa": report.get("isa", {}).get("target"),
        "overflow": overflow,
        "schemes": schemes,
        "kernel_check": report.get("kernel_check"),
    }


def _ort(reduce_range: bool, case: Case, out: Path) -> dict[str, Any]:
    """As :func:`bench.peers._ort_static`, plus ``reduce_range``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from bench.peers import ORT_CALIBRATION_BATCH, load_arrays

    arrays = load_arrays(case.calibration)
    n = min(CALIBRATION_SAMPLES, len(next(iter(arrays.values()))))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[dict[str, np.ndarray]] = iter(
                [
                    {k: v[i : i + ORT_CALIBRATION_BATCH] for k, v in arrays.items()}
                    for i in range(0, n, ORT_CALIBRATION_BATCH)
                ]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory(prefix="bench-acc-ort-") as tmp:
        prepared = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(case.model), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return {"subset": n, "reduce_range": reduce_range}


def _nncf(case: Case, out: Path) -> dict[str, Any]:
    import onnx

    from bench.peers import _nncf as nncf_peer
    from bench.peers import _preload_nncf

    _preload_nncf()
    nncf_peer("performance")(onnx.load(str(case.model)), case.calibration, out,
                             CALIBRATION_SAMPLES, None)  # fmt: skip
    return {"subset": CALIBRATION_SAMPLES}


def quantize(key: str, case: Case, out: Path) -> dict[str, Any]:
    start = time.perf_counter()
    if key == "calibench-vnni":
        info = _calibench("vnni", case, out)
    elif key == "calibench-avx2":
        info = _calibench("avx2", case, out)
    elif key == "ort":
        info = _ort(False, case, out)
    elif key == "ort-reduce-range":
        info = _ort(True, case, out)
    elif key == "nncf":
        info = _nncf(case, out)
    else:
        raise KeyError(key)
    info["seconds"] = round(time.perf_counter() - start, 1)
    return info


# --- evaluation ------------------------------------------------------------------------------


def predict(path: Path, inputs: np.ndarray, input_name: str, batch: int, optimize: bool,
            threads: int = 2) -> np.ndarray:  # fmt: skip
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = []
    for start in range(0, len(inputs), batch):
        (logits,) = session.run(None, {input_name: inputs[start : start + batch]})
        out.append(np.asarray(logits, dtype=np.float32).reshape(len(logits), -1))
    return np.concatenate(out)


def score(logits: np.ndarray, reference: np.ndarray) -> float:
    """Top-1 match in percent; ``reference`` = labels or FP32 top-1 classes."""
    return float((logits.argmax(1) == reference[: len(logits)]).mean() * 100)
