"""The benchmark's models and data, built from the zoo and cached under ``build/bench/``.

MobileNetV2: calibration = natural-photo crops with seed 0, evaluation = crops with seed 1
(checked to share no crop with the calibration set); quality is top-1 *agreement* with the FP32
model, since the photos carry no ImageNet labels. Fashion CNN: calibration = a seeded random
choice from the 60k training images, evaluation = the labelled 10k test set (true accuracy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibench._files import replacing

CALIBRATION_SEED = 0
EVALUATION_SEED = 1
FOLDER_SEED = 2


@dataclass(frozen=True)
class Prepared:
    name: str
    label: str
    model: Path
    input_name: str
    calibration: Path
    """.npz with one array per input, already preprocessed."""
    eval_inputs: np.ndarray
    eval_labels: np.ndarray | None
    """True labels, or None when quality is agreement with the FP32 model."""
    quality: str
    """"agreement" or "accuracy"."""
    eval_batch: int
    description: str


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    with replacing(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]


def _cached(path: Path, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not path.exists():
        save_npz(path, **make())
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def prepare_mobilenet_v2(root: Path, n_calibration: int, n_eval: int) -> Prepared:
    from zoo.mobilenet_v2 import build_mobilenet_v2
    from zoo.photos import imagenet_preprocess, natural_crops

    folder = root / "mobilenet_v2"
    model = build_mobilenet_v2(folder / "mobilenet_v2.onnx")
    calibration = folder / f"calibration-{n_calibration}-seed{CALIBRATION_SEED}.npz"
    calib_crops = natural_crops(n_calibration, size=224, seed=CALIBRATION_SEED)
    if not calibration.exists():
        save_npz(calibration, input=imagenet_preprocess(calib_crops))

    def make_eval() -> dict[str, np.ndarray]:
        crops = natural_crops(n_eval, size=224, seed=EVALUATION_SEED)
        seen = {c.tobytes() for c in calib_crops}
        overlap = sum(c.tobytes() in seen for c in crops)
        if overlap:
            raise RuntimeError(f"{overlap} evaluation crops are also calibration crops")
        return {"input": imagenet_preprocess(crops)}

    evaluation = _cached(folder / f"eval-{n_eval}-seed{EVALUATION_SEED}.npz", make_eval)
    return Prepared(
        name="mobilenet_v2",
        label="MobileNetV2 (ImageNet, torchvision weights)",
        model=model,
        input_name="input",
        calibration=calibration,
        eval_inputs=evaluation["input"],
        eval_labels=None,
        quality="agreement",
        eval_batch=50,
        description=(
            f"calibration: {n_calibration} natural-photo crops (seed {CALIBRATION_SEED}); "
            f"quality: top-1 agreement with FP32 on {n_eval} other crops "
            f"(seed {EVALUATION_SEED}, no crop shared; same 10 source photos)"
        ),
    )


def prepare_fashion(root: Path, n_calibration: int, n_eval: int) -> Prepared:
    from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input

    folder = root / "fashion"
    model = build_fashion_cnn(folder / "fashion_cnn.onnx")
    calibration = folder / f"calibration-{n_calibration}-seed{CALIBRATION_SEED}.npz"
    if not calibration.exists():
        images, _ = load_fashion_mnist("train")
        rng = np.random.default_rng(CALIBRATION_SEED)
        chosen = np.sort(rng.choice(len(images), size=n_calibration, replace=False))
        save_npz(calibration, input=to_model_input(images[chosen]))
    images, labels = load_fashion_mnist("test")
    n_eval = min(n_eval, len(images))
    return Prepared(
        name="fashion",
        label="Fashion-MNIST residual CNN (trained by zoo)",
        model=model,
        input_name="input",
        calibration=calibration,
        eval_inputs=to_model_input(images[:n_eval]),
        eval_labels=labels[:n_eval],
        quality="accuracy",
        eval_batch=1000 if n_eval % 1000 == 0 else n_eval,
        description=(
            f"calibration: {n_calibration} training images (seeded random choice); "
            f"quality: top-1 accuracy on the first {n_eval} of the 10k test images"
        ),
    )


def image_folder(root: Path, n: int) -> Path:
    """``n`` natural-photo crops (224x224, seed 2) as .jpg/.png files, for the memory check."""
    from zoo.photos import write_image_folder

    folder = root / "mobilenet_v2" / f"folder-{n}-seed{FOLDER_SEED}"
    done = folder / ".complete"
    if not done.exists():
        write_image_folder(folder, n, size=224, seed=FOLDER_SEED)
        done.touch()
    return folder


PREPARERS: dict[str, Callable[[Path, int, int], Prepared]] = {
    "mobilenet_v2": prepare_mobilenet_v2,
    "fashion": prepare_fashion,
}
