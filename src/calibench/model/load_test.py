from pathlib import Path

import onnx
import pytest

from calibench.errors import ModelError
from calibench.model.load import default_opset, load_model, with_min_opset


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _relu(opset: int) -> onnx.ModelProto:
    return onnx.parser.parse_model(
        f'<ir_version: 7, opset_import: ["" : {opset}]> g (float[N,4] x) => (float[N,4] y) '
        "{ y = Relu(x) }"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "nope.onnx")


def test_truncated_file_is_reported_not_raised(tiny_cnn_path: Path, tmp_path: Path) -> None:
    data = tiny_cnn_path.read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="corrupt or truncated|holds no graph|checker"):
        load_model(broken)


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"this is not a model at all")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        load_model(path)


def test_old_opset_is_converted_to_13(tmp_path: Path) -> None:
    model = load_model(_save(_relu(11), tmp_path / "old.onnx"))
    assert default_opset(model) == 13


def test_a_model_in_memory_gets_the_same_upgrade() -> None:
    old = _relu(11)
    assert default_opset(with_min_opset(old, "in memory")) == 13
    assert default_opset(old) == 11  # the caller's model is left as it was
    current = _relu(13)
    assert with_min_opset(current, "in memory") is current


def test_external_data_is_loaded(tiny_cnn_path: Path, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_cnn_path))
    path = tmp_path / "external.onnx"
    onnx.save_model(
        model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    loaded = load_model(path)
    assert all(not t.external_data for t in loaded.graph.initializer)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ModelError, match="external data"):
        load_model(path)
