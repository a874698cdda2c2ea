"""Detection accuracy: decoders for common detector heads, box geometry, and COCO mAP."""

from calibench.metrics.detection.decoders import (
    DECODERS,
    Decoder,
    SSDDecoder,
    YOLOv5Decoder,
    YOLOv8Decoder,
    YOLOXDecoder,
    decoder_for,
    register_decoder,
)
from calibench.metrics.detection.geometry import model_input_size, to_model_input, to_original
from calibench.metrics.detection.mean_ap import DetectionMAP

__all__ = [
    "DECODERS",
    "Decoder",
    "DetectionMAP",
    "SSDDecoder",
    "YOLOXDecoder",
    "YOLOv5Decoder",
    "YOLOv8Decoder",
    "decoder_for",
    "model_input_size",
    "register_decoder",
    "to_model_input",
    "to_original",
]
