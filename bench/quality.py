"""Predictions for the quality columns, and which kernels each runtime really runs.

ORT kernels come from calibench's own reading of ORT's optimised graph
(:func:`calibench.runtime.kernels.runtime_nodes`), applied alike to every model; OpenVINO's
from the compiled model's runtime graph (``layerType`` / ``runtimePrecision`` per node).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bench.timing import openvino_compile

EVAL_THREADS = 2
FLOAT_COMPUTE_ORT = frozenset(
    {"Conv", "FusedConv", "NchwcConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"}
)
COMPUTE_OPENVINO = frozenset({"Convolution", "FullyConnected", "MatMul", "Deconvolution"})


def predict_ort(path: Path, inputs: np.ndarray, input_name: str, batch: int) -> np.ndarray:
    """Logits of every sample, run with ONNX Runtime (CPU, ``EVAL_THREADS`` threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = EVAL_THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = []
    for start in range(0, len(inputs), batch):
        (logits,) = session.run(None, {input_name: inputs[start : start + batch]})
        out.append(np.asarray(logits, dtype=np.float32))
    return np.concatenate(out)


def predict_openvino(path: Path, inputs: np.ndarray, input_name: str, batch: int) -> np.ndarray:
    """Logits of every sample, run with OpenVINO (CPU, f32 precision hint)."""
    if len(inputs) % batch:
        raise ValueError(f"{len(inputs)} samples do not split into batches of {batch}")
    compiled = openvino_compile(path, {input_name: (batch, *inputs.shape[1:])}, EVAL_THREADS)
    request = compiled.create_infer_request()
    out = []
    for start in range(0, len(inputs), batch):
        result = request.infer({input_name: inputs[start : start + batch]})
        out.append(np.asarray(next(iter(result.values())), dtype=np.float32))
    return np.concatenate(out)


def softmax_top1(logits: np.ndarray) -> np.ndarray:
    """The top-1 probability of each row."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp.max(axis=1) / exp.sum(axis=1))


def detection_quality(outputs: np.ndarray, truth: tuple[np.ndarray, ...]) -> dict[str, Any]:
    """COCO mAP of a single-class YOLOX detector's raw outputs [N, anchors, 6] against the true
    ``x1, y1, x2, y2`` boxes of each image, by calibench's own metric (pycocotools inside)."""
    from calibench.data.annotations import Detections, SampleInfo
    from calibench.metrics.detection.mean_ap import DetectionMAP

    metric = DetectionMAP("yolox", ["character"])
    height, width = 416, 416
    for index, (output, boxes) in enumerate(zip(outputs, truth, strict=True)):
        labels = np.zeros(len(boxes), np.int64)
        metric.update(
            {"output": output},
            Detections(boxes, labels),
            SampleInfo(index, height=height, width=width),
        )
    figures = metric.result()
    return {
        "samples": len(outputs),
        "objects": int(sum(len(b) for b in truth)),
        "map50": round(float(figures["mAP@0.5"]), 2),
        "map": round(float(figures["mAP@[.5:.95]"]), 2),
    }


def ort_kernels(path: Path) -> dict[str, Any]:
    from calibench.runtime.kernels import INTEGER_KERNELS, kernel_counts, runtime_nodes

    counts = kernel_counts(runtime_nodes(onnx.load(str(path))))
    return {
        "counts": counts,
        "int8": sum(n for k, n in counts.get("INT8", {}).items() if k in INTEGER_KERNELS),
        "float_conv_gemm": sum(
            n for k, n in counts.get("FP32", {}).items() if k in FLOAT_COMPUTE_ORT
        ),
        "qdq": sum(counts.get("CONVERT", {}).values()),
    }


def openvino_kernels(path: Path, input_name: str, shape: tuple[int, ...]) -> dict[str, Any]:
    compiled = openvino_compile(path, {input_name: shape}, 1)
    counts: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        precision = info["runtimePrecision"].astype(str)
        if kind in COMPUTE_OPENVINO:
            counts[f"{kind}:{precision}"] += 1
    return {
        "counts": dict(sorted(counts.items())),
        "int8": sum(n for k, n in counts.items() if k.endswith((":i8", ":u8"))),
        "float_conv_gemm": sum(n for k, n in counts.items() if k.endswith(":f32")),
        "qdq": 0,
    }
