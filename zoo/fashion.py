"""Fashion-MNIST data and a small trained residual CNN, for end-to-end accuracy checks.

A network we train ourselves gives calibench a model whose *accuracy* (not just output error)
can be measured after INT8 quantisation on a real labelled test set, in seconds on a CPU. The
data comes from Debian's ``dataset-fashion-mnist`` package, so nothing is downloaded at run time.

Preprocessing contract: the ONNX model takes ``input`` float32 [batch, 1, 28, 28] = pixels / 255
(range [0, 1]) and applies the dataset mean/std normalisation *inside* the graph, so callers only
scale by 1/255.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoo._onnx import assert_matches_torch, export_onnx, ort_session

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
DIR_ENV = "ZOO_FASHION_MNIST_DIR"
INSTALL_HINT = "apt-get update && apt-get install -y dataset-fashion-mnist"
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_PREFIX = {"train": "train", "test": "t10k"}

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel statistics on the [0, 1] scale
SEED = 0
EPOCHS = 4
BATCH_SIZE = 128


def data_dir() -> Path:
    """Where the IDX files live: ``$ZOO_FASHION_MNIST_DIR`` or Debian's install location."""
    return Path(os.environ.get(DIR_ENV, DEFAULT_DIR))


def _read_idx(stem: str) -> np.ndarray:
    """Read one IDX file (``stem`` or ``stem.gz``) into a uint8 array of its declared shape."""
    base = data_dir() / stem
    for path in (base.with_name(base.name + ".gz"), base):
        if path.is_file():
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            break
    else:
        raise FileNotFoundError(
            f"Fashion-MNIST file {base}(.gz) not found; install it with `{INSTALL_HINT}` "
            f"or point ${DIR_ENV} at a folder holding the IDX files"
        )
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path} is not a uint8 IDX file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [N,28,28], labels int64 [N]) for ``split`` "train" (60k) or "test"
    (10k), in the dataset's file order."""
    if split not in _PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images = _read_idx(f"{_PREFIX[split]}-images-idx3-ubyte")
    labels = _read_idx(f"{_PREFIX[split]}-labels-idx1-ubyte").astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f"inconsistent Fashion-MNIST {split}: {images.shape} / {labels.shape}")
    return images, labels


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 [N,28,28] -> the model's float32 [N,1,28,28] input (pixels / 255)."""
    return (images.astype(np.float32) / 255.0)[:, None, :, :]


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class ResidualBlock(nn.Module):
    """Two 3x3 Conv+BN with an identity skip: gives the graph the Add calibench must handle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn_relu(channels, channels),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.body(x))


class FashionCNN(nn.Module):
    """Small residual CNN (~120k params); input is pixels/255, normalised in the graph."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(1, 24),  # 28x28
            _conv_bn_relu(24, 32, stride=2),  # 14x14, strided conv
            ResidualBlock(32),
            nn.MaxPool2d(2),  # 7x7
            _conv_bn_relu(32, 64),
            ResidualBlock(64),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)  # exported as GlobalAveragePool
        self.head = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - MEAN) / STD  # constants in the graph: Sub, Div
        x = self.pool(self.features(x))
        return self.head(torch.flatten(x, 1))


def train_fashion_cnn(
    seed: int = SEED, epochs: int = EPOCHS, log: bool = True
) -> tuple[FashionCNN, float]:
    """Train on the 60k training images; return (model in eval mode, training seconds).

    Fixed seed, fixed epoch count (not a time budget) and deterministic algorithms make the
    result reproducible on a given machine; SGD + one-cycle reaches 92.1% test top-1 in 4
    epochs (~115 s on 2 CPU cores). Horizontal flips are the only augmentation: they are
    label-preserving for clothing and cost nothing.
    """
    images, labels = load_fashion_mnist("train")
    x_all = torch.from_numpy(to_model_input(images))
    y_all = torch.from_numpy(labels)
    previous_determinism = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = FashionCNN()
        steps_per_epoch = -(-len(x_all) // BATCH_SIZE)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=0.2, epochs=epochs, steps_per_epoch=steps_per_epoch
        )
        start = time.perf_counter()
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(len(x_all), generator=generator)
            total_loss = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
                x, y = x_all[idx], y_all[idx]
                flip = torch.rand(len(idx), generator=generator) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += loss.detach().item()
            if log:
                print(
                    f"  fashion_cnn epoch {epoch + 1}/{epochs}: "
                    f"loss {total_loss / steps_per_epoch:.4f} "
                    f"({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
        seconds = time.perf_counter() - start
    finally:
        torch.use_deterministic_algorithms(previous_determinism)
    return model.eval(), seconds


def onnx_test_accuracy(onnx_path: Path, batch_size: int = 1000) -> float:
    """Top-1 accuracy of an exported model on the 10k test set, run with onnxruntime."""
    images, labels = load_fashion_mnist("test")
    x = to_model_input(images)
    session = ort_session(onnx_path)
    correct = 0
    for start in range(0, len(x), batch_size):
        (logits,) = session.run(None, {"input": x[start : start + batch_size]})
        correct += int(np.sum(logits.argmax(axis=1) == labels[start : start + batch_size]))
    return correct / len(x)


def sidecar_path(out_path: Path) -> Path:
    """``<out>.json``, e.g. ``fashion_cnn.onnx.json``, holding accuracy and provenance."""
    return out_path.with_name(out_path.name + ".json")


def build_fashion_cnn(out_path: Path, seed: int = SEED, epochs: int = EPOCHS) -> Path:
    """Train, export (input "input" [batch,1,28,28] = pixels/255, output "logits" [batch,10])
    and write the JSON sidecar. An existing ``out_path`` is reused as a cache (its sidecar is
    regenerated, without training time, if missing).
    """
    out_path = Path(out_path)
    sidecar = sidecar_path(out_path)
    if out_path.exists():
        if not sidecar.exists():
            _write_sidecar(sidecar, onnx_test_accuracy(out_path), None, seed, epochs)
        return out_path
    model, seconds = train_fashion_cnn(seed=seed, epochs=epochs)
    export_onnx(
        model,
        (torch.zeros(1, 1, 28, 28),),
        out_path,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    try:
        sample = to_model_input(load_fashion_mnist("test")[0][:64])
        assert_matches_torch(model, out_path, {"input": sample}, atol=1e-4)
    except AssertionError:
        out_path.unlink()
        raise
    _write_sidecar(sidecar, onnx_test_accuracy(out_path), seconds, seed, epochs)
    return out_path


def _write_sidecar(
    path: Path, accuracy: float, train_seconds: float | None, seed: int, epochs: int
) -> None:
    info = {
        "test_top1": accuracy,
        "test_samples": 10000,
        "measured_with": "onnxruntime CPUExecutionProvider",
        "train_seconds": None if train_seconds is None else round(train_seconds, 1),
        "seed": seed,
        "epochs": epochs,
        "torch_threads": torch.get_num_threads(),
        "input": "float32 [batch,1,28,28] = uint8 pixels / 255; mean/std applied inside",
    }
    path.write_text(json.dumps(info, indent=2) + "\n")
