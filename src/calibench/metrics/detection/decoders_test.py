import numpy as np
import pytest

from calibench.data.annotations import Detections
from calibench.errors import ConfigError
from calibench.metrics.detection.decoders import (
    DECODERS,
    SSDDecoder,
    YOLOv5Decoder,
    YOLOv8Decoder,
    YOLOXDecoder,
    decoder_for,
)
from calibench.metrics.detection.nms import nms


def _scores(found: Detections) -> np.ndarray:
    assert found.scores is not None
    return found.scores


def _yolov5_rows() -> np.ndarray:
    """Five anchors, two classes: cx, cy, w, h, objectness, class 0, class 1."""
    return np.array(
        [
            [50, 50, 20, 20, 0.9, 0.8, 0.1],  # A: class 0, score 0.72
            [52, 50, 20, 20, 0.8, 0.5, 0.1],  # B: class 0, 0.40, IoU 0.82 with A: suppressed
            [50, 50, 20, 20, 0.9, 0.1, 0.6],  # C: A's box but class 1, 0.54: kept
            [10, 10, 4, 4, 0.05, 0.01, 0.0],  # D: 0.0005, under the score threshold
            [150, 100, 40, 20, 0.5, 0.6, 0.2],  # E: class 0, 0.30, far away
        ],
        np.float32,
    )


def test_registry_names_every_layout() -> None:
    assert {
        "yolov5": YOLOv5Decoder,
        "yolox": YOLOXDecoder,
        "yolov8": YOLOv8Decoder,
        "ssd": SSDDecoder,
    } == DECODERS
    assert isinstance(decoder_for("yolov8", iou_threshold=0.5), YOLOv8Decoder)
    with pytest.raises(ConfigError, match="choose yolov5, yolox, yolov8, ssd"):
        decoder_for("detr")
    with pytest.raises(ConfigError, match="score threshold"):
        decoder_for("yolov5", score_threshold=1.5)


def test_yolov5_scores_thresholds_and_suppresses_per_class() -> None:
    found = YOLOv5Decoder().decode({"output0": _yolov5_rows()})
    np.testing.assert_allclose(
        found.boxes, [[40, 40, 60, 60], [40, 40, 60, 60], [130, 90, 170, 110]]
    )
    np.testing.assert_allclose(_scores(found), [0.72, 0.54, 0.30], rtol=1e-6)
    assert found.labels.tolist() == [0, 1, 0]
    assert found.boxes.dtype == np.float32 and found.labels.dtype == np.int64


def test_yolov5_keeps_at_most_max_detections_and_accepts_a_batch_axis() -> None:
    found = YOLOv5Decoder(max_detections=2).decode({"out": _yolov5_rows()[None]})
    np.testing.assert_allclose(_scores(found), [0.72, 0.54], rtol=1e-6)
    loose = YOLOv5Decoder(iou_threshold=0.9).decode({"out": _yolov5_rows()})
    assert len(_scores(loose)) == 4  # B's IoU with A (0.82) is now allowed


def test_yolov8_reads_the_transposed_layout_without_objectness() -> None:
    rows = _yolov5_rows()
    classes = rows[:, 5:] * rows[:, 4:5]  # the same scores as YOLOv5's obj × cls
    raw = np.concatenate([rows[:, :4], classes], axis=1).T  # [4 + C, anchors]
    found = YOLOv8Decoder(output="output0").decode({"other": np.zeros(3), "output0": raw})
    np.testing.assert_allclose(
        found.boxes, [[40, 40, 60, 60], [40, 40, 60, 60], [130, 90, 170, 110]]
    )
    np.testing.assert_allclose(_scores(found), [0.72, 0.54, 0.30], rtol=1e-6)
    assert found.labels.tolist() == [0, 1, 0]


def test_yolox_decodes_grid_and_stride() -> None:
    # 64 x 64 input: 8 x 8 cells of stride 8, 4 x 4 of 16, 2 x 2 of 32 = 84 anchors.
    raw = np.zeros((84, 6), np.float32)
    raw[2 * 8 + 3] = [0.5, 0.5, np.log(2), np.log(1), 0.9, 0.5]  # stride 8, cell x 3, y 2
    raw[64 + 1 * 4 + 2] = [0.0, 0.25, 0.0, np.log(2), 0.8, 1.0]  # stride 16, cell x 2, y 1
    raw[80 + 3] = [0.5, 0.5, 0.0, 0.0, 0.7, 0.5]  # stride 32, cell x 1, y 1
    found = YOLOXDecoder().decode({"output": raw}, input_size=(64, 64))
    # Centres: (3.5, 2.5) * 8 = (28, 20); (2, 1.25) * 16 = (32, 20); (1.5, 1.5) * 32 = (48, 48).
    np.testing.assert_allclose(
        found.boxes,
        [[24, 4, 40, 36], [20, 16, 36, 24], [32, 32, 64, 64]],  # sorted by score 0.8, 0.45, 0.35
        atol=1e-4,
    )
    np.testing.assert_allclose(_scores(found), [0.8, 0.45, 0.35], rtol=1e-6)


def test_yolox_works_out_a_square_input_from_the_anchor_count() -> None:
    # ddddocr's common_det.onnx: 416 x 416 input, output [1, 3549, 6], one class.
    raw = np.zeros((1, 3549, 6), np.float32)
    raw[0, 52 * 52 + 26 * 26 + 12 * 13 + 12] = [0.5, 0.5, np.log(0.5), 0.0, 0.95, 1.0]
    found = YOLOXDecoder().decode({"output": raw})
    # Last stride-32 cell (12, 12): centre 12.5 * 32 = 400; w 16, h 32.
    np.testing.assert_allclose(found.boxes, [[392, 384, 408, 416]], atol=1e-4)
    np.testing.assert_allclose(_scores(found), [0.95])
    with pytest.raises(ConfigError, match="3549 anchors, but a 320x320 input"):
        YOLOXDecoder(input_size=(320, 320)).decode({"output": raw})


def test_ssd_normalised_yxyx_boxes_with_background_offset() -> None:
    outputs = {
        "detection_boxes": np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 0.1, 0.1]]], np.float32),
        "detection_scores": np.array([[0.9, 0.8]], np.float32),
        "detection_classes": np.array([[2.0, 0.0]], np.float32),  # 0: background
    }
    decoder = SSDDecoder(
        boxes_output="detection_boxes",
        scores_output="detection_scores",
        classes_output="detection_classes",
        box_format="yxyx",
        label_offset=1,
    )
    found = decoder.decode(outputs, input_size=(100, 200))
    np.testing.assert_allclose(found.boxes, [[40, 10, 120, 50]], atol=1e-4)
    assert found.labels.tolist() == [1] and _scores(found).tolist() == pytest.approx([0.9])
    with pytest.raises(ConfigError, match="need the model input size"):
        decoder.decode(outputs)


def test_ssd_pixel_boxes_and_per_class_scores() -> None:
    outputs = {
        "boxes": np.array([[10, 10, 50, 50], [12, 10, 52, 50], [100, 0, 140, 30]], np.float32),
        "scores": np.array([[0.1, 0.7], [0.6, 0.2], [0.05, 0.0]], np.float32),
    }
    found = SSDDecoder(score_threshold=0.1).decode(outputs)
    # The first two overlap but differ in class, so NMS keeps both; the third is under 0.1.
    np.testing.assert_allclose(found.boxes, [[10, 10, 50, 50], [12, 10, 52, 50]])
    assert found.labels.tolist() == [1, 0]
    with pytest.raises(ConfigError, match="outputs are boxes, scores"):
        SSDDecoder(scores_output="detection_scores").decode(outputs)


def test_wrong_layout_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="yolov5 decoder expects an output of shape"):
        YOLOv5Decoder().decode({"out": np.zeros((10, 4), np.float32)})
    with pytest.raises(ConfigError, match="yolov8 decoder expects"):
        YOLOv8Decoder().decode({"out": np.zeros((3, 10), np.float32)})


def test_nms_suppresses_only_above_the_iou_threshold() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float64)  # IoU 50 / 150 = 1/3
    scores, labels = np.array([0.5, 0.9]), np.array([0, 0])
    assert nms(boxes, scores, labels, 0.3, 10).tolist() == [1]
    assert nms(boxes, scores, labels, 0.34, 10).tolist() == [1, 0]
    assert nms(boxes, scores, np.array([0, 1]), 0.3, 10).tolist() == [1, 0]
