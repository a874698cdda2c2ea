"""The AccuracyAware method on a real model: the guarantee, the reverts, the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import calibench
import calibench.calibration.accuracy_aware.method as aa_method
from calibench.data.importer import import_dataset
from calibench.errors import ConfigError
from calibench.runtime.session import make_session
from zoo.photos import imagenet_preprocess, natural_crops


def _top1(model: object, x: np.ndarray) -> np.ndarray:
    session = make_session(model)  # type: ignore[arg-type]
    return np.concatenate(
        [session.run(None, {"input": x[i : i + 50]})[0] for i in range(0, len(x), 50)]
    ).argmax(1)


@pytest.fixture(scope="module")
def labelled_crops(mobilenet_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Natural-photo crops labelled with FP32's own top-1: accuracy = agreement with FP32."""
    root = tmp_path_factory.mktemp("aa")
    x = imagenet_preprocess(natural_crops(240, seed=7))
    np.savez(root / "val.npz", input=x, labels=_top1(mobilenet_path, x))
    return import_dataset(root / "val.npz", root / "datasets", name="val").path


def test_guarantee_holds_with_a_drop_the_default_method_misses(
    mobilenet_path: Path, labelled_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The accuracy guarantee alone: placed by rule and ranked without revert timings, so that
    # no timing (the speed-aware stop is tested with fake timers) decides what this test sees.
    monkeypatch.setattr(aa_method, "revert_speed", lambda *args, **kwargs: None)
    calibration = [{"input": s} for s in imagenet_preprocess(natural_crops(64, seed=0))]
    result = calibench.calibrate(
        mobilenet_path,
        calibration,
        method="accuracy-aware",
        max_drop=2.0,
        validation=labelled_crops,
        placement="rule",
    )
    figures = result.report.accuracy_aware
    assert figures is not None
    assert figures["fp32"] == 100.0 and figures["default"] < 98.0  # Default misses the target
    assert figures["met"] and figures["reverted"]
    # The guarantee, measured again here on the saved model, independently of the method.
    path = result.save(tmp_path / "aa.onnx")
    data = np.load(labelled_crops / next(p.name for p in labelled_crops.glob("*.npz")))
    accuracy = 100 * float((_top1(path, data["input"]) == data["labels"]).mean())
    assert accuracy >= 100.0 - 2.0
    assert accuracy == pytest.approx(figures["final"])
    # Reverted layers run in FP32 in ONNX Runtime and say why.
    rows = {row.name: row for row in result.report.layers}
    for name in figures["reverted"]:
        assert rows[name].precision == "FP32"
        assert (rows[name].reason or "").startswith("reverted: cost")
    assert figures["evaluations"]["full"] >= 3 and figures["evaluations"]["ranking"] > 0


def test_refusals(mobilenet_path: Path, labelled_crops: Path, tmp_path: Path) -> None:
    crops = [{"input": s} for s in imagenet_preprocess(natural_crops(4, seed=0))]
    with pytest.raises(ConfigError, match="needs an annotated dataset"):
        calibench.calibrate(mobilenet_path, crops, method="accuracy-aware", max_drop=1.0)
    for drop, message in (
        (-0.5, "must be 0 or more"),
        (250, "accepts any model"),
        (None, "needs a maximum accuracy drop"),
    ):
        with pytest.raises(ConfigError, match=message):
            calibench.calibrate(
                mobilenet_path,
                crops,
                method="accuracy-aware",
                max_drop=drop,
                validation=labelled_crops,
            )
