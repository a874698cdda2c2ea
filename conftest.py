"""Shared fixtures: tiny models built from ONNX text or torch, and the real models from zoo/."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from calibench.server.settings import ServerSettings
from zoo.mobilenet_v2 import build_mobilenet_v2

MODELS = Path("build/test-models")

# A developer's shell may hold the workbench's CALIBENCH_* settings (a token, a database URL):
# the tests set up their servers themselves, so none of those may leak into them.
for _field in ServerSettings.model_fields:
    os.environ.pop(f"CALIBENCH_{_field.upper()}", None)


def _tiny_cnn() -> onnx.ModelProto:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
            self.c2 = nn.Sequential(
                nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU()
            )
            self.c3 = nn.Sequential(nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16))
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(16, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.c1(x)
            y = y + self.c3(self.c2(y))
            y = torch.nn.functional.adaptive_avg_pool2d(self.pool(y), 1).flatten(1)
            return self.fc(y)

    net = Net().eval()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = MODELS / "tiny_cnn.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Constant folding off keeps the BatchNormalization nodes, so folding is exercised too.
    torch.onnx.export(
        net,
        (torch.randn(1, 3, 32, 32),),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
        dynamo=False,
        do_constant_folding=False,
    )
    return onnx.load(str(path))


@pytest.fixture(scope="session")
def tiny_cnn_path() -> Path:
    path = MODELS / "tiny_cnn.onnx"
    if not path.exists():
        _tiny_cnn()
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(path, input=rng.normal(size=(48, 3, 32, 32)).astype(np.float32))
    return path


@pytest.fixture(scope="session")
def mobilenet_path() -> Path:
    return build_mobilenet_v2(MODELS / "mobilenet_v2.onnx")
