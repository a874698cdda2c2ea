"""The cases of :mod:`bench.accuracy_aware`: model, calibration and validation data, maximum
drop, and the timing budget."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import (
    ROOT,
)
from bench.data import save_npz
from bench.quality import predict_ort

SUBSET = 300
"""Calibration samples, and NNCF's ``subset_size`` (which also sizes its ranking subset)."""
NNCF_TIMEOUT_S = 1200.0
CALIBENCH_TIMEOUT_S = 1200.0
EPSILON_PTS = 1e-6
"""Added to the maximum drop of both tools (in points; 1e-8 as a fraction for NNCF), so that
a drop exactly at the limit is not rejected by floating-point rounding (1 - 0.98 > 0.02)."""
FASHION_MAX_DROP = 0.1
MOBILENET_MAX_DROP = 2.0
FASHION_SEEDS = range(10)
TIMING_ATTEMPTS = 2
MODEL_KEYS = ("calibench-default", "calibench-aa", "nncf-full", "nncf-aa")
"""The INT8 models of a case, written as WORK/<key>.onnx."""


@dataclass(frozen=True)
class TimingSettings:
    block: int
    discard: int
    budget_s: float
    min_rounds: int
    max_rounds: int


FULL_TIMING = TimingSettings(block=10, discard=3, budget_s=20.0, min_rounds=10, max_rounds=400)
QUICK_TIMING = TimingSettings(block=5, discard=2, budget_s=2.0, min_rounds=3, max_rounds=50)


@dataclass
class Case:
    name: str
    label: str
    model: Path
    calibration: Path
    """.npz: ``input`` (already preprocessed), ``SUBSET`` samples."""
    validation: Path
    """.npz: ``input`` and ``labels``."""
    dataset: Path
    """The validation .npz imported as a calibench dataset."""
    max_drop: float
    """Points of top-1 (NNCF gets max_drop / 100)."""
    eval_batch: int
    quality: str
    description: str
    notes: list[str] = field(default_factory=list)
    selection: list[dict[str, Any]] = field(default_factory=list)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def accuracy(model: Path, inputs: np.ndarray, labels: np.ndarray, batch: int) -> float:
    """The one accuracy function used for every model: ORT CPU, same data, same batches."""
    logits = predict_ort(model, inputs, "input", batch)
    return 100.0 * float(np.mean(logits.argmax(axis=1) == labels))


# --- cases ------------------------------------------------------------------------------------


def _import(npz: Path, root: Path) -> Path:
    from calibench.data.importer import import_dataset

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return Path(import_dataset(npz, root, name="val").path)


def prepare_mobilenet(build: Path) -> Case:
    from zoo.mobilenet_v2 import build_mobilenet_v2
    from zoo.photos import imagenet_preprocess, natural_crops

    folder = build / "mobilenet_v2"
    model = build_mobilenet_v2(ROOT / "build" / "test-models" / "mobilenet_v2.onnx")
    cal_crops = natural_crops(SUBSET, size=224, seed=0)
    val_crops = natural_crops(SUBSET, size=224, seed=7)
    seen = {c.tobytes() for c in cal_crops}
    overlap = sum(c.tobytes() in seen for c in val_crops)
    if overlap:
        raise RuntimeError(f"{overlap} validation crops are also calibration crops")
    calibration = folder / "calibration.npz"
    save_npz(calibration, input=imagenet_preprocess(cal_crops))
    inputs = imagenet_preprocess(val_crops)
    labels = predict_ort(model, inputs, "input", 50).argmax(axis=1).astype(np.int64)
    validation = folder / "validation.npz"
    save_npz(validation, input=inputs, labels=labels)
    return Case(
        name="mobilenet_v2",
        label="MobileNetV2 (ImageNet, torchvision weights)",
        model=model,
        calibration=calibration,
        validation=validation,
        dataset=_import(validation, folder / "datasets"),
        max_drop=MOBILENET_MAX_DROP,
        eval_batch=50,
        quality="top-1 agreement with FP32",
        description=(
            f"calibration: {SUBSET} natural-photo crops (seed 0); validation: {SUBSET} other "
            "crops (seed 7, none shared with calibration), each labelled with the FP32 model's "
            "own top-1 (accuracy = top-1 agreement with FP32; FP32 = 100 % by construction)"
        ),
    )


def prepare_fashion(build: Path) -> tuple[Case, list[np.ndarray]]:
    """The case, and the candidate validation index sets (chosen later, see ``choose``)."""
    from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input

    folder = build / "fashion"
    model = build_fashion_cnn(ROOT / "build" / "test-models" / "fashion_cnn.onnx")
    images, _ = load_fashion_mnist("train")
    chosen = np.sort(np.random.default_rng(0).choice(len(images), size=SUBSET, replace=False))
    calibration = folder / "calibration.npz"
    save_npz(calibration, input=to_model_input(images[chosen]))
    _, labels = load_fashion_mnist("test")
    candidates = [np.sort(np.concatenate([np.flatnonzero(labels == c)[:100] for c in range(10)]))]
    candidates += [
        np.sort(np.random.default_rng(s).choice(len(labels), size=1000, replace=False))
        for s in FASHION_SEEDS
    ]
    case = Case(
        name="fashion",
        label="Fashion-MNIST residual CNN (trained by zoo)",
        model=model,
        calibration=calibration,
        validation=folder / "validation.npz",
        dataset=folder / "datasets" / "val",
        max_drop=FASHION_MAX_DROP,
        eval_batch=250,
        quality="top-1 accuracy (true labels)",
        description="",
    )
    return case, candidates


def choose_fashion_validation(case: Case, candidates: list[np.ndarray], default: Path) -> None:
    """The first candidate validation set on which calibench's Default misses the drop."""
    from zoo.fashion import load_fashion_mnist, to_model_input

    images, labels = load_fashion_mnist("test")
    names = ["first 100 test images of each class"] + [
        f"1000 test images, seeded choice (seed {s})" for s in FASHION_SEEDS
    ]
    picked = None
    for name, indices in zip(names, candidates, strict=True):
        x, y = to_model_input(images[indices]), labels[indices]
        fp32 = accuracy(case.model, x, y, case.eval_batch)
        int8 = accuracy(default, x, y, case.eval_batch)
        case.selection.append({"set": name, "fp32": fp32, "default": int8, "drop": fp32 - int8})
        if picked is None and fp32 - int8 > case.max_drop + EPSILON_PTS:
            picked = (name, x, y)
    if picked is None:
        case.max_drop = 0.0
        first = candidates[0]
        picked = (names[0], to_model_input(images[first]), labels[first])
        case.notes.append("Default met 0.1 on every candidate set: max drop 0 used for both.")
    name, x, y = picked
    save_npz(case.validation, input=x, labels=y.astype(np.int64))
    case.dataset = _import(case.validation, case.dataset.parent)
    case.description = (
        f"calibration: {SUBSET} training images (seeded choice, seed 0); validation: {name} "
        "(true labels; one image = 0.1 points)"
    )
