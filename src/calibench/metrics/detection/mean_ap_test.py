import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from calibench.data.annotations import Detections, SampleInfo
from calibench.data.preprocess import Preprocess
from calibench.errors import ConfigError
from calibench.metrics.base import Metric
from calibench.metrics.detection.mean_ap import DetectionMAP

CLASSES = ["cat", "dog"]


def _metric(**options: object) -> DetectionMAP:
    return DetectionMAP("ssd", CLASSES, normalized=False, **options)


def _outputs(
    boxes: Sequence[Sequence[float]], scores: Sequence[float], labels: Sequence[int]
) -> dict[str, np.ndarray]:
    return {
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "scores": np.asarray(scores, np.float32),
        "classes": np.asarray(labels, np.float32),
    }


def _truth(boxes: Sequence[Sequence[float]], labels: Sequence[int]) -> Detections:
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64))


INFO = SampleInfo(index=0, height=200, width=300)
TWO = [[10, 10, 60, 80], [100, 50, 200, 150]]


def test_perfect_predictions_score_100(capsys: pytest.CaptureFixture[str]) -> None:
    metric = _metric()
    assert isinstance(metric, Metric)
    assert metric.update(_outputs(TWO, [0.9, 0.8], [0, 1]), _truth(TWO, [0, 1]), INFO) is None
    result = metric.result()
    assert list(result) == ["mAP@0.5", "mAP@[.5:.95]"]
    assert result == pytest.approx({"mAP@0.5": 100.0, "mAP@[.5:.95]": 100.0})
    assert capsys.readouterr().out == ""  # pycocotools' printing is silenced


def test_one_of_two_objects_missed() -> None:
    metric = _metric()
    metric.update(_outputs(TWO[:1], [0.9], [0]), _truth(TWO, [0, 0]), INFO)
    # Precision 1 up to recall 0.5, nothing beyond: 51 of COCO's 101 recall points.
    assert metric.result() == pytest.approx(
        {"mAP@0.5": 100 * 51 / 101, "mAP@[.5:.95]": 100 * 51 / 101}
    )


def test_wrong_class_scores_0() -> None:
    metric = _metric()
    metric.update(_outputs(TWO[:1], [0.9], [1]), _truth(TWO[:1], [0]), INFO)
    assert metric.result() == {"mAP@0.5": 0.0, "mAP@[.5:.95]": 0.0}


def test_no_annotation_is_an_image_without_objects() -> None:
    metric = _metric()
    metric.update(_outputs(TWO[:1], [0.9], [0]), _truth(TWO[:1], [0]), INFO)
    metric.update(_outputs(TWO[:1], [0.95], [0]), None, SampleInfo(1, height=200, width=300))
    # The false positive ranks first: precision 1/2 at recall 1, so AP is 0.5 everywhere.
    assert metric.result()["mAP@0.5"] == pytest.approx(50.0)
    metric.reset()
    assert metric.result() == {"mAP@0.5": 0.0, "mAP@[.5:.95]": 0.0}


def test_predictions_are_mapped_back_through_the_preprocessing() -> None:
    # Original 100 x 200 (h x w) resized to 50 x 50: x halves... x / 4, y / 2.
    info = SampleInfo(index=0, height=100, width=200, preprocess=Preprocess(resize=(50, 50)))
    metric = _metric()
    metric.update(_outputs([[5, 5, 25, 30]], [0.9], [1]), _truth([[20, 10, 100, 60]], [1]), info)
    assert metric.result()["mAP@[.5:.95]"] == pytest.approx(100.0)


def test_loose_box_counts_at_iou_05_but_not_above() -> None:
    metric = _metric()
    # IoU of [0, 0, 100, 100] with [0, 0, 100, 160] is 100 / 160 = 0.625: a hit at 0.50, 0.55,
    # 0.60, a miss at 0.65 ... 0.95, so mAP@[.5:.95] is 3 / 10 of 100.
    metric.update(_outputs([[0, 0, 100, 160]], [0.9], [0]), _truth([[0, 0, 100, 100]], [0]), INFO)
    assert metric.result() == pytest.approx({"mAP@0.5": 100.0, "mAP@[.5:.95]": 30.0})


def test_matches_pycocotools_run_from_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    metric = _metric(iou_threshold=1.0, max_detections=100)
    images: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    for image_id in range(1, 9):
        n = int(rng.integers(1, 5))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(10, 80, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        labels = rng.integers(0, 2, n)
        # Jittered copies (some with the wrong class), plus random false positives.
        predicted = (boxes + rng.normal(0, 6, boxes.shape)).astype(np.float32)
        predicted_labels = np.where(rng.uniform(size=n) < 0.2, 1 - labels, labels)
        false = rng.uniform(0, 250, (2, 2))
        predicted = np.concatenate([predicted, np.concatenate([false, false + 30], 1)])
        predicted = predicted.astype(np.float32)
        predicted_labels = np.concatenate([predicted_labels, [0, 1]])
        scores = rng.uniform(0.05, 1.0, n + 2).astype(np.float32)
        info = SampleInfo(index=image_id, height=300, width=300)
        metric.update(
            _outputs(predicted.tolist(), scores.tolist(), predicted_labels.tolist()),
            Detections(boxes, labels),
            info,
        )
        images.append({"id": image_id, "height": 300, "width": 300})
        for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            truth.append(
                {
                    "id": len(truth) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        clipped = np.clip(predicted, 0, 300)
        for box, label, score in zip(
            clipped.tolist(), predicted_labels.tolist(), scores.tolist(), strict=True
        ):
            found.append(
                {
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": score,
                }
            )
    gt_file, res_file = tmp_path / "gt.json", tmp_path / "res.json"
    categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    gt_file.write_text(
        json.dumps({"images": images, "annotations": truth, "categories": categories})
    )
    res_file.write_text(json.dumps(found))
    gt = COCO(str(gt_file))
    evaluation = COCOeval(gt, gt.loadRes(str(res_file)), iouType="bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    result = metric.result()
    assert 5 < result["mAP@[.5:.95]"] < result["mAP@0.5"] < 95  # a non-trivial case
    assert result["mAP@0.5"] == pytest.approx(100 * evaluation.stats[1], abs=1e-6)
    assert result["mAP@[.5:.95]"] == pytest.approx(100 * evaluation.stats[0], abs=1e-6)


def test_misuse_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mAP needs box annotations"):
        _metric().update(_outputs(TWO, [0.9, 0.8], [0, 1]), 3, INFO)
    with pytest.raises(ConfigError, match="the annotations give class 5, but the dataset has 2"):
        _metric().update(_outputs(TWO, [0.9, 0.8], [0, 1]), _truth(TWO, [0, 5]), INFO)
    with pytest.raises(ConfigError, match="the decoder gives class 2"):
        _metric().update(_outputs(TWO, [0.9, 0.8], [0, 2]), _truth(TWO, [0, 1]), INFO)
    with pytest.raises(ConfigError, match="needs the dataset's class names"):
        DetectionMAP("yolox", [])
