"""OpenVINO's CPU plugin as a runtime: the same ONNX files, compiled at the inference settings.

OpenVINO is optional (``pip install calibench[openvino]``); this module imports it only when a
model is compiled, and says how to install it when it is missing.

Settings, and why:

- ``INFERENCE_PRECISION_HINT = f32``: without it the plugin runs FP32 layers in bf16 on CPUs
  with AMX or AVX512-BF16, which changes both the speed and the numbers of the "FP32" model.
  INT8 layers (those behind a quantizer in the ONNX file) still run in u8/i8.
- ``NUM_STREAMS`` = the parallel streams and ``INFERENCE_NUM_THREADS`` = threads per stream ×
  streams (OpenVINO counts the threads of the whole compiled model, calibench per stream).
- Static input shapes when they are given (the batch of the measurement): the plugin compiles
  shape-specialised kernels, as a deployed model would have. Without them the model keeps its
  own shapes, dynamic ones included (accuracy passes with a short last batch).
- ``PERF_COUNT`` only when asked: per-node times cost a little on every run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from calibench.errors import ConfigError
from calibench.runtime.backend import CompiledModel, Request, Runtime

INSTALL_HINT = "pip install calibench[openvino]"


class OpenVinoMissingError(ConfigError):
    """``--runtime openvino`` on an installation without OpenVINO."""


def import_openvino() -> Any:
    """The ``openvino`` module, or a message that says how to get it."""
    try:
        import openvino
    except ImportError as error:
        raise OpenVinoMissingError(
            f"the OpenVINO runtime is not installed ({error}): {INSTALL_HINT}, "
            "or run on ONNX Runtime (--runtime onnxruntime)"
        ) from None
    return openvino


def compile_openvino(
    model: onnx.ModelProto | str | os.PathLike[str],
    *,
    threads: int | None = None,
    streams: int = 1,
    shapes: Mapping[str, Sequence[int]] | None = None,
    perf_count: bool = False,
) -> Any:
    """An ``openvino.CompiledModel`` for the CPU plugin (see the module's docstring)."""
    ov = import_openvino()
    core = ov.Core()
    try:
        if isinstance(model, onnx.ModelProto):
            read = core.read_model(model.SerializeToString())
        else:
            read = core.read_model(str(model))
        if shapes:
            read.reshape({name: list(shape) for name, shape in shapes.items()})
        per_stream = threads or max(1, (os.cpu_count() or 1) // streams)
        config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT",
            "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": per_stream * streams,
            "PERF_COUNT": perf_count,
        }
        return core.compile_model(read, "CPU", config)
    except RuntimeError as error:  # OpenVINO reports every failure as a RuntimeError
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"OpenVINO cannot compile this model: {first}") from None


class OpenVinoModel(CompiledModel):
    runtime = Runtime.OPENVINO

    def __init__(
        self,
        model: onnx.ModelProto | Path,
        *,
        threads: int | None,
        streams: int = 1,
        shapes: Mapping[str, Sequence[int]] | None = None,
        perf_count: bool = False,
    ) -> None:
        self.compiled = compile_openvino(
            model, threads=threads, streams=streams, shapes=shapes, perf_count=perf_count
        )
        self._outputs = list(self.compiled.outputs)

    def request(self) -> Request:
        request = self.compiled.create_infer_request()
        outputs = self._outputs

        def run(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            result = request.infer(dict(feeds))
            return [np.asarray(result[port]) for port in outputs]

        return run

    @property
    def output_names(self) -> list[str]:
        return [port.get_any_name() for port in self._outputs]
