from __future__ import annotations

import os
from pathlib import Path

from calibench.targets.assets import Input, prepare


def test_a_folder_is_one_tar_with_the_same_hash_every_time(tmp_path: Path) -> None:
    data = tmp_path / "images"
    (data / "cat").mkdir(parents=True)
    (data / "cat" / "1.png").write_bytes(b"png")
    (data / "calibench-dataset.json").write_text("{}")
    one, two = tmp_path / "a", tmp_path / "b"
    one.mkdir()
    two.mkdir()
    first = prepare(Input(data), one)
    os.utime(data / "cat" / "1.png", (0, 0))  # a touched file: not another dataset
    second = prepare(Input(data), two)
    assert first.folder and first.assets[0].sha256 == second.assets[0].sha256


def test_a_model_travels_with_its_external_data(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])],
        [weight],
    )
    model = tmp_path / "m.onnx"
    onnx.save(
        helper.make_model(graph),
        str(model),
        save_as_external_data=True,
        location="m.weights",
        size_threshold=0,
    )
    prepared = prepare(Input(model), tmp_path)
    assert [a.local.name for a in prepared.assets] == ["m.onnx", "m.weights"]
    assert not prepared.folder
