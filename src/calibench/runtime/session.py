"""ONNX Runtime sessions made the same way everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import onnxruntime as ort


def make_session(
    model: onnx.ModelProto | str | Path,
    threads: int | None = None,
    optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    optimized_path: Path | None = None,
    profile_prefix: str | None = None,
    lean: bool = False,
) -> ort.InferenceSession:
    """A CPU session. ``lean`` trades a little speed for memory: no arena, no preplanned
    buffers, so what a calibration pass holds is what it needs right now."""
    options = ort.SessionOptions()
    if lean:
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = optimization
    options.log_severity_level = 3
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
