"""Calibration memory follows the budget, not the model's activation sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calibench.errors import ConfigError
from calibench.runtime.memory import parse_size


def _wide_cnn(path: Path, size: int = 384, channels: int = 48) -> Path:
    """Three 3×3 Convs at full resolution: ~28 MB per activation per sample."""
    rng = np.random.default_rng(0)
    nodes, inits, previous, width = [], [], "input", 3
    for k in range(3):
        w = rng.normal(0, 0.1, (channels, width, 3, 3)).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, f"w{k}"),
            numpy_helper.from_array(np.zeros(channels, np.float32), f"b{k}"),
        ]
        nodes += [
            helper.make_node(
                "Conv", [previous, f"w{k}", f"b{k}"], [f"c{k}"], pads=[1] * 4, name=f"conv{k}"
            ),
            helper.make_node("Relu", [f"c{k}"], [f"r{k}"], name=f"relu{k}"),
        ]
        previous, width = f"r{k}", channels
    nodes.append(helper.make_node("GlobalAveragePool", [previous], ["output"], name="pool"))
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, 1, 1])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _peak_of_child(args: list[str]) -> tuple[int, int, dict[str, Any]]:
    """Run the CLI in a fresh process: its exit code, peak resident memory in bytes (what the
    kernel recorded for it) and its JSON report."""
    code = (
        "import json, resource, subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'calibench.cli', *sys.argv[1:]],"
        " capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "print(json.dumps({'code': done.returncode, 'peak': peak, 'out': done.stdout,"
        " 'err': done.stderr}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    result = json.loads(done.stdout)
    assert result["code"] == 0, result["err"]
    return result["code"], result["peak"], json.loads(result["out"])


def test_calibration_stays_under_the_memory_limit(tmp_path: Path) -> None:
    model = _wide_cnn(tmp_path / "wide.onnx", size=512, channels=64)  # 64 MB per activation
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "cal.npz", input=rng.uniform(0, 1, (8, 3, 512, 512)).astype(np.float32))
    limit = 800 << 20
    args = [
        "calibrate",
        str(model),
        "-d",
        str(tmp_path / "cal.npz"),
        "--batch-size",
        "8",
        "-o",
        str(tmp_path / "int8.onnx"),
        "-q",
        "--isa",
        "vnni",
        "--json",
    ]
    code, peak, report = _peak_of_child([*args, "--memory-limit", "800M"])
    assert code == 0
    # The limit bounds the whole process: Python, ONNX Runtime and the data included.
    assert peak < limit * 1.1, peak / 2**20
    assert report["memory"]["limit_mb"] == 800
    assert all(mb < 800 * 1.1 for mb in report["memory"]["peak_mb"].values()), report["memory"]
    # The same calibration sized for the default budget (a quarter of the machine) holds more.
    code, unlimited, _ = _peak_of_child(args)
    assert code == 0 and unlimited > limit * 1.1, unlimited / 2**20


def test_memory_sizes_are_read_in_words() -> None:
    assert parse_size("4G") == 4 << 30 and parse_size("512M") == 512 << 20
    assert parse_size("2048") == 2048 << 20  # MiB when no unit is given
    with pytest.raises(ConfigError, match="not a memory size"):
        parse_size("lots")
    with pytest.raises(ConfigError, match="too small"):
        parse_size("10M")


def test_accuracy_aware_validation_past_the_budget_spills_to_disk_with_the_same_figures(
    tiny_cnn_path: Path, tmp_path: Path
) -> None:
    from calibench.calibration.accuracy_aware.validator import Validator
    from calibench.cli import main
    from calibench.cli.datasets import resolve_dataset
    from calibench.data.open import open_for_model
    from calibench.metrics.registry import metric_for
    from calibench.model.load import load_model
    from calibench.runtime.inputs import input_specs
    from calibench.runtime.session import make_session

    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 3, 32, 32)).astype(np.float32)
    model = load_model(tiny_cnn_path)
    labels = make_session(model).run(None, {"input": x})[0].argmax(1)
    np.savez(tmp_path / "val.npz", input=x, labels=labels)
    assert (
        main(
            [
                "dataset",
                "import",
                str(tmp_path / "val.npz"),
                "--name",
                "val",
                "--workspace",
                str(tmp_path / "ws"),
            ]
        )
        == 0
    )
    data, _ = open_for_model(resolve_dataset("val", tmp_path / "ws"), input_specs(model), None, "m")
    metric = metric_for(data.task, data.classes, None)  # type: ignore[attr-defined]
    held = Validator(model, data, metric, list(range(40)), 8, 1, memory_limit=None)
    spilled = Validator(model, data, metric, list(range(40)), 8, 1, memory_limit=4_000)
    assert spilled.batches.arrays.spilled and spilled.reference.spilled
    assert not held.batches.arrays.spilled
    assert spilled.accuracy() == held.accuracy() == 100.0
    assert np.allclose(
        spilled.divergence_per_sample(spilled.outputs(model)),
        held.divergence_per_sample(held.outputs(model)),
    )
