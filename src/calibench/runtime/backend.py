"""The runtimes calibench measures a model on, behind one narrow interface.

The same FP32 and INT8 ONNX files run on ONNX Runtime (always installed) and on OpenVINO (the
optional extra ``calibench[openvino]``, imported only when it is asked for). Everything that
times or evaluates a model (``workflow.performance``, ``workflow.evaluate``) goes through
``runtime.compile.compile_model``, so adding a runtime means one class, not an if/elif in every
caller.

A :class:`CompiledModel` is made once for the inference settings (threads per stream, parallel
streams, and for OpenVINO the static input shapes); each stream then takes its own
:meth:`~CompiledModel.request` (OpenVINO's infer requests are not shared between threads;
ONNX Runtime's session is, so its requests are the session itself).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path

import numpy as np
import onnx

from calibench.errors import ConfigError

Request = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]
"""Runs the model once on ``{input name: array}``; its outputs in the model's order."""


class Runtime(str, Enum):
    """A runtime the workflow can run a model on."""

    ONNXRUNTIME = "onnxruntime"
    """ONNX Runtime's CPU provider: QDQ groups fused into its integer kernels."""
    OPENVINO = "openvino"
    """OpenVINO's CPU plugin: FakeQuantize fused by its low-precision transformations."""

    @property
    def label(self) -> str:
        return {Runtime.ONNXRUNTIME: "ONNX Runtime", Runtime.OPENVINO: "OpenVINO"}[self]

    @classmethod
    def parse(cls, value: str | Runtime | None) -> Runtime:
        """``None`` is ONNX Runtime: what every result made before runtimes had ran on."""
        if value is None:
            return cls.ONNXRUNTIME
        if isinstance(value, Runtime):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            choices = ", ".join(r.value for r in cls)
            raise ConfigError(f"unknown runtime {value!r}; choose one of: {choices}") from None


RUNTIME_CHOICES = [r.value for r in Runtime]
"""What ``--runtime`` accepts."""


class CompiledModel(ABC):
    """A model made ready to run at fixed settings on one runtime."""

    runtime: Runtime

    @abstractmethod
    def request(self) -> Request:
        """A runner for one stream (thread) of requests."""

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One run on a fresh request (for code that runs once, not in a loop)."""
        return self.request()(feeds)

    @property
    @abstractmethod
    def output_names(self) -> list[str]:
        """The model's outputs, in the order a request returns them."""


class OnnxRuntimeModel(CompiledModel):
    runtime = Runtime.ONNXRUNTIME

    def __init__(self, model: onnx.ModelProto | Path, threads: int | None) -> None:
        from calibench.runtime.session import make_session

        self.session = make_session(model, threads=threads)
        self._names = [o.name for o in self.session.get_outputs()]

    def request(self) -> Request:
        session, names = self.session, self._names
        return lambda feeds: session.run(names, dict(feeds))

    @property
    def output_names(self) -> list[str]:
        return list(self._names)
