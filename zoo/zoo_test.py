"""Fast checks that the zoo's models and data are what the calibench tests assume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from zoo import fashion, nlp, photos
from zoo.__main__ import main
from zoo._onnx import export_onnx, ort_session
from zoo.mobilenet_v2 import build_mobilenet_v2

IMAGENET_CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_all_source_photos_load_offline() -> None:
    names = [name for name, _ in photos.source_images()]
    assert len(names) == 10
    assert {"astronaut", "chelsea", "china", "flower"} <= set(names)


def test_natural_crops_are_deterministic_and_varied() -> None:
    crops = photos.natural_crops(12, size=64, seed=3)
    assert crops.shape == (12, 64, 64, 3)
    assert crops.dtype == np.uint8
    np.testing.assert_array_equal(crops, photos.natural_crops(12, size=64, seed=3))
    np.testing.assert_array_equal(crops[:5], photos.natural_crops(5, size=64, seed=3))
    assert not np.array_equal(crops, photos.natural_crops(12, size=64, seed=4))
    assert len({crop.tobytes() for crop in crops}) == 12


def test_imagenet_preprocess_layout_and_values() -> None:
    crops = np.full((2, 4, 4, 3), 255, dtype=np.uint8)
    x = photos.imagenet_preprocess(crops)
    assert x.shape == (2, 3, 4, 4)
    assert x.dtype == np.float32
    expected = (1.0 - photos.IMAGENET_MEAN) / photos.IMAGENET_STD
    np.testing.assert_allclose(x[0, :, 0, 0], expected, rtol=1e-6)


def test_write_image_folder_mixes_formats_and_subfolders(tmp_path: Path) -> None:
    paths = photos.write_image_folder(tmp_path, 8, size=48, seed=1)
    assert len(paths) == 8
    assert {p.suffix for p in paths} == {".jpg", ".png"}
    assert len({p.parent for p in paths}) == 2
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (48, 48)
            assert image.mode == "RGB"


def test_mobilenet_v2_is_pretrained_and_exported(tmp_path: Path) -> None:
    path = build_mobilenet_v2(tmp_path / "mnv2.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [o.name for o in graph.output] == ["logits"]
    chelsea = dict(photos.source_images())["chelsea"]
    side = min(chelsea.shape[:2])
    top, left = (chelsea.shape[0] - side) // 2, (chelsea.shape[1] - side) // 2
    square = Image.fromarray(chelsea[top : top + side, left : left + side]).resize((224, 224))
    x = photos.imagenet_preprocess(np.asarray(square)[None])
    (logits,) = ort_session(path).run(None, {"input": x})
    assert logits.shape == (1, 1000)
    assert int(logits.argmax()) in IMAGENET_CAT_CLASSES
    mtime = path.stat().st_mtime_ns
    assert build_mobilenet_v2(path) == path and path.stat().st_mtime_ns == mtime  # cached


def test_tiny_transformer_export_has_nlp_signature(tmp_path: Path) -> None:
    path = nlp.build_tiny_transformer(tmp_path / "tiny.onnx")
    graph = onnx.load(str(path)).graph
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [
        ("input_ids", onnx.TensorProto.INT64),
        ("attention_mask", onnx.TensorProto.INT64),
    ]
    assert {"Gather", "MatMul", "Softmax"} <= _op_types(path)
    session = ort_session(path)
    for batch, seq in ((1, 4), (5, 17)):
        ids = np.ones((batch, seq), dtype=np.int64)
        (logits,) = session.run(None, {"input_ids": ids, "attention_mask": ids})
        assert logits.shape == (batch, nlp.NUM_LABELS)


def test_fashion_mnist_loads_both_splits() -> None:
    train_x, train_y = fashion.load_fashion_mnist("train")
    test_x, test_y = fashion.load_fashion_mnist("test")
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert train_x.dtype == np.uint8 and test_y.dtype == np.int64
    assert set(np.unique(train_y)) == set(range(10)) and len(train_y) == 60000


def test_fashion_missing_data_names_apt_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fashion.DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        fashion.load_fashion_mnist("test")


def test_fashion_cnn_graph_shape(tmp_path: Path) -> None:
    """Untrained export only: training takes ~2 minutes and belongs to ``python -m zoo build``."""
    torch.manual_seed(0)
    path = export_onnx(
        fashion.FashionCNN().eval(),
        (torch.zeros(1, 1, 28, 28),),
        tmp_path / "fashion.onnx",
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    assert {"Conv", "Relu", "Add", "MaxPool", "GlobalAveragePool", "Gemm"} <= _op_types(path)
    assert 0.0 <= fashion.onnx_test_accuracy(path) <= 1.0


def test_cli_fashion_npz_and_images(tmp_path: Path) -> None:
    main(["fashion-npz", str(tmp_path / "f.npz"), "--split", "test", "--n", "5"])
    with np.load(tmp_path / "f.npz") as data:
        assert data["input"].shape == (5, 1, 28, 28) and data["input"].dtype == np.float32
        assert float(data["input"].max()) <= 1.0
        assert data["labels"].dtype == np.int64
    main(["images", str(tmp_path / "imgs"), "--n", "3", "--size", "32"])
    assert len(list((tmp_path / "imgs").rglob("img_*"))) == 3
