"""COCO mean average precision, computed by pycocotools so figures match published ones.

Re-implementing COCO's matching and 101-point interpolation is where mAP figures quietly drift
apart between tools; building pycocotools' ``COCO`` objects in memory from the accumulated boxes
keeps calibench's numbers comparable with every paper and model zoo.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from calibench.data.annotations import Annotation, Detections, SampleInfo
from calibench.errors import ConfigError
from calibench.metrics.detection.decoders import Decoder, decoder_for
from calibench.metrics.detection.geometry import model_input_size, to_original


class DetectionMAP:
    """COCO mAP@0.5 (primary) and mAP@[.5:.95] of a detector, in percent points.

    ``decoder`` is a :class:`Decoder` or a decoder name (``"yolox"``) with ``decoder_options``.
    Annotations are :class:`Detections` in original-image pixels; ``None`` counts as an image
    with no objects. Predictions are decoded in model-input pixels and mapped back to the
    original image through the sample's :class:`SampleInfo`. There is no per-sample score.
    """

    name = "mAP@0.5"

    def __init__(
        self, decoder: Decoder | str, classes: Sequence[str], **decoder_options: Any
    ) -> None:
        if isinstance(decoder, str):
            decoder = decoder_for(decoder, **decoder_options)
        elif decoder_options:
            raise ConfigError("decoder options go with a decoder name, not a decoder object")
        if not classes:
            raise ConfigError("mAP needs the dataset's class names")
        self.decoder = decoder
        self.classes = list(classes)
        self.reset()

    def reset(self) -> None:
        self._images: list[dict[str, Any]] = []
        self._truth: list[dict[str, Any]] = []
        self._predictions: list[dict[str, Any]] = []

    def update(
        self, outputs: dict[str, np.ndarray], annotation: Annotation, info: SampleInfo
    ) -> float | None:
        if annotation is None:
            annotation = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
        if not isinstance(annotation, Detections):
            raise ConfigError(
                f"mAP needs box annotations; sample {info.index} has a {type(annotation).__name__}"
            )
        image_id = len(self._images) + 1
        self._images.append({"id": image_id, "height": info.height, "width": info.width})
        self._truth.extend(self._records(image_id, annotation.boxes, annotation.labels, None))
        found = self.decoder.decode(outputs, model_input_size(info))
        self._check_labels(found.labels, "the decoder gives")
        boxes = to_original(found.boxes, info)
        self._predictions.extend(self._records(image_id, boxes, found.labels, found.scores))
        return None

    def result(self) -> dict[str, float]:
        """``mAP@0.5`` and ``mAP@[.5:.95]``; 0 when there is nothing to find."""
        if not self._truth:
            return {self.name: 0.0, "mAP@[.5:.95]": 0.0}
        stats = coco_stats(self._images, self._truth, self._predictions, len(self.classes))
        return {self.name: 100.0 * stats[1], "mAP@[.5:.95]": 100.0 * stats[0]}

    def _records(
        self,
        image_id: int,
        boxes: np.ndarray,
        labels: np.ndarray,
        scores: np.ndarray | None,
    ) -> list[dict[str, Any]]:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(labels).reshape(-1)
        if scores is None:
            self._check_labels(labels, "the annotations give")
        records = []
        for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            w, h = max(x2 - x1, 0.0), max(y2 - y1, 0.0)
            record: dict[str, Any] = {
                "image_id": image_id,
                "category_id": int(labels[i]) + 1,
                "bbox": [x1, y1, w, h],
            }
            if scores is None:
                record.update(area=w * h, iscrowd=0)
            else:
                record["score"] = float(scores[i])
            records.append(record)
        return records

    def _check_labels(self, labels: np.ndarray, source: str) -> None:
        if labels.size and not 0 <= int(labels.min()) <= int(labels.max()) < len(self.classes):
            raise ConfigError(
                f"{source} class {int(labels.max())}, but the dataset has "
                f"{len(self.classes)} classes; check the decoder and its label_offset"
            )


def coco_stats(
    images: list[dict[str, Any]],
    truth: list[dict[str, Any]],
    predictions: list[dict[str, Any]],
    num_classes: int,
) -> np.ndarray:
    """pycocotools' 12 bbox summary figures (fractions; ``stats[0]`` is AP@[.5:.95],
    ``stats[1]`` AP@0.5) for COCO-style records, with its printing silenced."""
    if not predictions:
        return np.zeros(12)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": [dict(image) for image in images],
            "annotations": [dict(t, id=i + 1) for i, t in enumerate(truth)],
            "categories": [{"id": c + 1, "name": str(c + 1)} for c in range(num_classes)],
        }
        gt.createIndex()
        found = gt.loadRes([dict(p) for p in predictions])
        evaluation = COCOeval(gt, found, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.maximum(np.asarray(evaluation.stats, dtype=np.float64), 0.0)
