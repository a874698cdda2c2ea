"""One entry point that makes a model ready to run on a runtime (``runtime.backend``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx

from calibench.runtime.backend import CompiledModel, OnnxRuntimeModel, Runtime


def compile_model(
    runtime: Runtime | str,
    model: onnx.ModelProto | str | os.PathLike[str],
    *,
    threads: int | None = None,
    streams: int = 1,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> CompiledModel:
    """``model`` ready to run on ``runtime`` with ``threads`` threads per stream and ``streams``
    parallel streams. ``shapes`` fixes the input shapes (OpenVINO compiles faster kernels for
    static shapes; ONNX Runtime ignores it)."""
    chosen = Runtime.parse(runtime) if not isinstance(runtime, Runtime) else runtime
    source = model if isinstance(model, onnx.ModelProto) else Path(model)
    if chosen is Runtime.OPENVINO:
        from calibench.runtime.openvino import OpenVinoModel

        return OpenVinoModel(source, threads=threads, streams=streams, shapes=shapes)
    return OnnxRuntimeModel(source, threads)
