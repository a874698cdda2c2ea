"""Read an ONNX model (external data included), check it, and bring it to opset 13 or later.

Per-channel QuantizeLinear/DequantizeLinear need opset 13; older models are converted first.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import version_converter

from calibench._files import replacing
from calibench.errors import ModelError

MIN_OPSET = 13
DERIVED_KEY = "calibench.derived_from"


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return 1


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load and validate ``path``; raise :class:`ModelError` with a readable reason."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
        missing = sorted(
            {loc for loc in _external_locations(model) if not (path.parent / loc).is_file()}
        )
        if missing:
            raise ModelError(
                f"{path}: its external data file {', '.join(missing)} is missing "
                f"(it must lie beside the model, in {path.parent})"
            )
        onnx.load_external_data_for_model(model, str(path.parent))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"{path} is not a readable ONNX model (corrupt or truncated file: {_first_line(exc)})"
        ) from exc
    if not model.graph.node:
        raise ModelError(f"{path} holds no graph (is it an ONNX model, or a truncated file?)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelError(f"{path} fails the ONNX checker: {_first_line(exc)}") from exc
    return with_min_opset(model, str(path))


def with_min_opset(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """``model`` at opset :data:`MIN_OPSET` at least (per-channel INT8 needs it): the same
    model when it already is, else a converted copy; loaded files and models handed over in
    memory go through the same upgrade."""
    opset = default_opset(model)
    if opset >= MIN_OPSET:
        return model
    try:
        converted = version_converter.convert_version(model, MIN_OPSET)
        onnx.checker.check_model(converted)
    except Exception as exc:
        raise ModelError(
            f"{name} uses opset {opset} and could not be converted to opset {MIN_OPSET}, "
            f"which per-channel INT8 needs: {_first_line(exc)}"
        ) from exc
    return converted


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` atomically; weights go to a side file when the model passes 2 GB."""
    path = Path(path)
    with replacing(path) as tmp:
        if model.ByteSize() > 1_800_000_000:
            onnx.save_model(
                model,
                str(tmp),
                save_as_external_data=True,
                location=path.name + ".data",
                all_tensors_to_one_file=True,
            )
        else:
            onnx.save_model(model, str(tmp))
    return path


def _external_locations(model: onnx.ModelProto) -> list[str]:
    locations = []
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            locations += [e.value for e in tensor.external_data if e.key == "location"]
    return locations


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
