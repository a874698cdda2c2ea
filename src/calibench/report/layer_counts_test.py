"""Layer counts by kind, and the layers a revert takes along, on real layer tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import calibench
from calibench.report.layer_counts import count_layers, fell_back, plural, revert_words
from calibench.report.layers import LayerRow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("counts") / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(path, input=rng.normal(size=(8, 3, 32, 32)).astype(np.float32))
    return path


def test_counts_keep_weighted_folded_and_other_layers_apart(
    tiny_cnn_path: Path, data: Path
) -> None:
    rows = calibench.calibrate(tiny_cnn_path, data, subset=8, placement="rule").report.layers
    counts = count_layers(rows)
    # tiny CNN: 3 Conv + 1 Gemm, each activation folded into its Conv; Add, pools, Flatten.
    assert (counts.weighted_int8, counts.weighted) == (4, 4)
    assert counts.weighted_types == ("Conv", "Gemm")
    assert counts.folded == sum(1 for r in rows if r.kernel == "(folded)") >= 2
    assert counts.int8 == sum(1 for r in rows if r.precision == "INT8")  # the INT8 badges
    assert counts.total == len(rows) == counts.weighted + counts.folded + counts.other
    words = counts.words()
    assert words.startswith("4 of 4 Conv/Gemm in INT8; ")
    assert f"{counts.folded} activations folded into them" in words
    assert f"{counts.other_int8} of {counts.other} other layers in INT8" in words
    # The same counts from the rows as the database keeps them (dicts).
    assert count_layers([r.to_dict() for r in rows]) == counts


def test_a_revert_names_every_layer_that_fell_back_with_it(tiny_cnn_path: Path, data: Path) -> None:
    # --keep-fp32 goes through the same revert as AccuracyAware's.
    kept = "/c1/c1.0/Conv"
    # By rule: measured placement could keep more layers FP32 for speed, not for the revert.
    report = calibench.calibrate(
        tiny_cnn_path, data, subset=8, keep_fp32=[kept], placement="rule"
    ).report
    rows = report.layers
    found = {f.name: f.reason for f in fell_back(rows, [kept])}
    fp32 = {r.name for r in rows if r.precision != "INT8"}
    assert kept not in found and set(found) == fp32 - {kept}
    assert "/c2/c2.0/Conv" in found and "/Add" in found  # they read its output
    assert "/c1/c1.2/Clip" in found  # it followed the Conv
    counts = count_layers(rows)
    assert counts.weighted_int8 == 2  # c1 reverted, c2 fell back with it
    text = revert_words(rows, [kept])
    assert text.startswith(f"1 layer reverted to FP32; {len(found)} more fell back with it: ")
    assert "/c2/c2.0/Conv (reads the output of /c1/c1.0/Conv" in text
    # The CLI's report says it under the AccuracyAware table, as the web page does.
    report.accuracy_aware = {
        "metric": "top1",
        "allowed_drop": 1.0,
        "iterations": [],
        "met": True,
        "fp32": 90.0,
        "default": 88.0,
        "final": 89.5,
        "drop": 0.5,
        "reverted": {kept: 0.8},
        "evaluations": {"full": 2, "ranking": 3},
        "seconds": 1.0,
    }
    assert f"1 layer reverted to FP32; {len(found)} more fell back with it" in str(report)


def test_nothing_reverted_and_plurals() -> None:
    row = LayerRow("/a/Conv", "Conv", "INT8", "QLinearConv", "U8", "U8")
    assert revert_words([row], []) == "0 layers reverted to FP32"
    assert fell_back([row], []) == []
    assert plural(1, "layer") == "1 layer" and plural(2, "activation") == "2 activations"
    assert count_layers([row]).words() == "1 of 1 Conv in INT8"
    assert count_layers([]).words() == "0 of 0 Conv/Gemm/MatMul in INT8"
