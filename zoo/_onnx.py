"""Shared ONNX export and verification helpers for the zoo builders.

Every builder exports with the legacy TorchScript exporter (``dynamo=False``, opset 17) because
it yields plain, stable graphs (BatchNorm folded into Conv in eval mode) that look like the models
users bring to calibench. Files are written atomically so an interrupted build never leaves a
truncated ``.onnx`` behind that the "skip if exists" cache would then trust.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from calibench._files import replacing

OPSET = 17


def export_onnx(
    model: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    out_path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> Path:
    """Export ``model`` (already in eval mode) to ``out_path`` atomically; return the path."""
    with replacing(out_path, suffix=".tmp") as tmp_path, warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but is what we want here.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            example_inputs,
            str(tmp_path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
        )
    return out_path


def ort_session(path: Path) -> ort.InferenceSession:
    """CPU onnxruntime session: the reference runtime calibench compares against."""
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def assert_matches_torch(
    model: torch.nn.Module,
    onnx_path: Path,
    feeds: Mapping[str, np.ndarray],
    atol: float = 1e-4,
) -> float:
    """Run ``model`` and the exported file on the same inputs; raise if they differ > ``atol``.

    ``feeds`` must be ordered like ``model.forward``'s positional arguments. Returns the max
    absolute difference so callers can log it.
    """
    with torch.no_grad():
        expected = model(*(torch.from_numpy(v) for v in feeds.values())).numpy()
    (actual,) = ort_session(onnx_path).run(None, dict(feeds))
    max_diff = float(np.max(np.abs(actual - expected)))
    if actual.shape != expected.shape or max_diff > atol:
        raise AssertionError(
            f"{onnx_path.name}: ONNX export differs from torch "
            f"(shape {actual.shape} vs {expected.shape}, max |diff| {max_diff:.3g} > {atol})"
        )
    return max_diff


def export_image_classifier(model: torch.nn.Module, out_path: Path, size: int = 224) -> Path:
    """Export an ImageNet classifier (input "input" [batch,3,size,size], output "logits"
    [batch,classes]) and check it against torch; an unverified file is never left behind for a
    cache to pick up."""
    export_onnx(
        model,
        (torch.zeros(1, 3, size, size),),
        out_path,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    sample = np.random.default_rng(0).standard_normal((2, 3, size, size), dtype=np.float32)
    try:
        assert_matches_torch(model, out_path, {"input": sample}, atol=1e-4)
    except AssertionError:
        out_path.unlink()
        raise
    return out_path
