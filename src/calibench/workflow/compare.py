"""An INT8 model beside its FP32 parent, measured: figures from both inferences, both models
timed again side by side, and per-layer time and error measured on a few samples of the same
dataset.

Accuracy comes from the inferences (over a whole dataset, at the user's settings); what needs
both models side by side is measured here: per-layer time from ORT's profiler
(``runtime.profiling``), per-layer SQNR (``report.layer_error``), and the runtime precision of
each layer of the INT8 model (``report.layers``). The FP32 side is profiled as calibench
prepared it for quantization (BatchNormalization folded, as ORT folds it anyway), so that both
models name their layers alike. The result is a :class:`~calibench.report.comparison.Comparison`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from calibench.data.open import open_for_model
from calibench.data.preprocess import Preprocess
from calibench.model.load import load_model
from calibench.passes.prepare import prepare_fp32
from calibench.report.comparison import Comparison, LayerComparison
from calibench.report.layer_error import DEFAULT_SAMPLES, layer_errors
from calibench.report.layers import layer_table
from calibench.runtime.backend import Runtime
from calibench.runtime.conditions import MeasuredOn
from calibench.runtime.inputs import BatchReader, input_specs
from calibench.runtime.profiling import BUCKETS, LayerTimes, profile_layers
from calibench.workflow.infer import InferenceReport
from calibench.workflow.performance import PerfResult, PerfSettings, measure_interleaved


def run_compare(
    fp32_path: Path,
    int8_path: Path,
    fp32: InferenceReport,
    int8: InferenceReport,
    dataset: Any,
    preprocess: Preprocess | dict[str, Any] | None = None,
    samples: int = 8,
) -> Comparison:
    proto = load_model(fp32_path)
    specs = input_specs(proto)
    data, _ = open_for_model(dataset, specs, preprocess, fp32_path.name)
    reader = BatchReader(data, specs, batch_size=1)
    chosen: list[dict[str, np.ndarray]] = []
    for _, feeds in reader.batches(list(range(min(len(data), samples * 4)))):
        chosen.append({k: v[0] for k, v in feeds.items()})
        if len(chosen) == samples:
            break
    accuracy = None
    if fp32.accuracy and int8.accuracy:
        accuracy = {
            "fp32": fp32.accuracy["figures"],
            "int8": int8.accuracy["figures"],
            "metric": fp32.accuracy["metric"],
        }
    # Cached inferences keep their accuracy; both models are timed again here, in alternating
    # windows, so the two timings come from the same machine state, at the INT8 model's settings.
    settings = int8.performance["settings"]
    runtime = Runtime.parse(settings.get("runtime"))
    timed = measure_interleaved(
        {"fp32": fp32_path, "int8": int8_path},
        {k: v[None] for k, v in chosen[0].items()},
        PerfSettings(
            batch=settings["batch"],
            streams=settings["streams"],
            threads=settings["threads"],
            seconds=2 * settings["seconds"],
            runtime=runtime,
        ),
    )
    perf = {name: _perf(result) for name, result in timed.items()}
    return compare_models(
        fp32_path, int8_path, chosen, accuracy=accuracy, perf=perf, runtime=runtime
    )


def compare_models(
    fp32_path: str | os.PathLike[str],
    int8_path: str | os.PathLike[str],
    samples: Sequence[Mapping[str, np.ndarray]],
    *,
    accuracy: dict[str, Any] | None = None,
    perf: dict[str, Any] | None = None,
    batch: int = 1,
    threads: int = 1,
    error_samples: int = DEFAULT_SAMPLES,
    profile_runs: int = 20,
    profile_warmup: int = 5,
    runtime: Runtime = Runtime.ONNXRUNTIME,
) -> Comparison:
    """Compare ``int8_path`` with ``fp32_path``; ``samples`` are ``{input: array}`` dicts (the
    first feeds the profiler, the first ``error_samples`` the SQNR). ``accuracy`` is
    ``{"fp32": {...}, "int8": {...}, "metric": "top1"}`` and ``perf`` ``{"fp32": {...},
    "int8": {...}}`` with latency/throughput figures, both measured elsewhere.

    On OpenVINO (``runtime``) the layer times and each layer's runtime precision come from
    OpenVINO's runtime graph (``runtime.openvino_layers``); the SQNR is ONNX Runtime's exact
    Q/DQ arithmetic either way."""
    if not samples:
        raise ValueError("compare_models needs at least one sample")
    fp32 = prepare_fp32(load_model(fp32_path))[0]
    int8 = load_model(int8_path)
    rows, _ = layer_table(int8)
    first = samples[0]
    timing = {"batch": batch, "threads": threads, "runs": profile_runs, "warmup": profile_warmup}
    notes = []
    if runtime is Runtime.OPENVINO:
        fp32_time, int8_time, rows = _profile_openvino(fp32_path, int8_path, first, rows, timing)
        notes.append(
            "layer times and runtime precisions: OpenVINO's runtime graph (CPU plugin, f32 "
            "precision hint); SQNR: ONNX Runtime's exact Q/DQ arithmetic"
        )
    else:
        fp32_time = profile_layers(fp32, first, **timing)
        int8_time = profile_layers(int8, first, **timing)
    errors = layer_errors(fp32, int8, samples, max_samples=error_samples, threads=threads)
    sqnr = {e.name: e.sqnr_db for e in errors.layers}

    layers = [
        LayerComparison(
            name=row.name,
            op_type=row.op_type,
            precision=row.precision,
            kernel=row.kernel,
            fp32_ms=fp32_time.layers_ms.get(row.name),
            int8_ms=int8_time.layers_ms.get(row.name),
            sqnr_db=sqnr.get(row.name),
        )
        for row in rows
    ]
    # Layers timed in the FP32 model that the INT8 model does not have under that name.
    known = {r.name for r in layers} | set(BUCKETS)
    op_types = {n.name: n.op_type for n in fp32.graph.node}
    for name, ms in fp32_time.layers_ms.items():
        if name not in known:
            layers.append(LayerComparison(name, op_types.get(name, "?"), "-", "-", ms, None, None))
    if errors.skipped:
        notes.append(
            f"no FP32 tensor to compare with for {len(errors.skipped)} quantized layer(s): "
            + ", ".join(errors.skipped[:5])
            + (" …" if len(errors.skipped) > 5 else "")
        )
    return Comparison(
        fp32_model=Path(fp32_path).name,
        int8_model=Path(int8_path).name,
        layers=layers,
        fp32_time=fp32_time,
        int8_time=int8_time,
        sizes={"fp32": size_on_disk(fp32_path), "int8": size_on_disk(int8_path)},
        output_sqnr=errors.outputs,
        error_samples=errors.samples,
        accuracy=accuracy,
        perf=perf,
        notes=notes,
        runtime=runtime.value,
        profile_measured_on=MeasuredOn(runtime, batch, threads).to_dict(),
    )


def _profile_openvino(
    fp32_path: str | os.PathLike[str],
    int8_path: str | os.PathLike[str],
    sample: Mapping[str, np.ndarray],
    rows: list[Any],
    timing: dict[str, int],
) -> tuple[LayerTimes, LayerTimes, list[Any]]:
    """Both models profiled on OpenVINO; the INT8 model's rows with OpenVINO's precisions."""
    from calibench.runtime.openvino_layers import profile_openvino, with_openvino_precisions

    feeds = {k: np.repeat(np.asarray(v)[None], timing["batch"], axis=0) for k, v in sample.items()}
    options = {"threads": timing["threads"], "runs": timing["runs"], "warmup": timing["warmup"]}
    fp32 = profile_openvino(fp32_path, feeds, **options)
    int8 = profile_openvino(int8_path, feeds, **options)
    return fp32.times, int8.times, with_openvino_precisions(rows, int8.layers)


def size_on_disk(path: str | os.PathLike[str]) -> int:
    """The model file plus the external data files it names."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    locations = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
    extra = sum((path.parent / loc).stat().st_size for loc in locations)
    return path.stat().st_size + extra


def _perf(result: PerfResult) -> dict[str, Any]:
    perf = result.to_dict()
    settings = perf.pop("settings")
    perf.update(batch=settings["batch"], streams=settings["streams"])
    return perf
