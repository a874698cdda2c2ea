import numpy as np
import pytest

from calibench.data.annotations import Detections, SampleInfo
from calibench.errors import ConfigError
from calibench.metrics.base import Metric
from calibench.metrics.classification import TopK

INFO = SampleInfo(index=0)


def test_top1_and_top5_on_hand_made_logits() -> None:
    metric = TopK()
    assert isinstance(metric, Metric) and metric.name == "top1"
    logits = np.array([0.1, 3.0, 2.0, 0.5, 0.4, 0.3, 0.2, -1.0], np.float32)
    # Ranks by score: 1, 2, 3, 4, 5, 6, 0, 7.
    assert metric.update({"logits": logits}, 1, INFO) == 100.0  # top-1 right
    assert metric.update({"logits": logits[None]}, 2, INFO) == 0.0  # [1, C], second best
    assert metric.update({"logits": logits}, 5, INFO) == 0.0  # fifth best: in the top 5
    assert metric.update({"logits": logits}, 0, INFO) == 0.0  # seventh: outside
    assert metric.result() == {"top1": 25.0, "top5": 75.0}
    metric.reset()
    assert metric.result() == {"top1": 0.0, "top5": 0.0}


def test_ties_do_not_count_for_the_annotation() -> None:
    metric = TopK(k=(1, 2))
    constant = np.zeros(4, np.float32)  # a collapsed model: every class ties
    assert metric.update({"y": constant}, 0, INFO) == 100.0  # argmax picks class 0
    assert metric.update({"y": constant}, 3, INFO) == 0.0
    assert metric.update({"y": constant}, 1, INFO) == 0.0  # second in tie order: top-2 only
    assert metric.result() == pytest.approx({"top1": 100 / 3, "top2": 200 / 3})


def test_named_output_is_read_among_several() -> None:
    metric = TopK(output="probs")
    outputs = {"features": np.array([9.0, 0.0]), "probs": np.array([0.2, 0.8])}
    assert metric.update(outputs, 1, INFO) == 100.0


@pytest.mark.parametrize(
    ("metric", "outputs", "annotation", "message"),
    [
        (TopK(), {"y": np.zeros(3)}, None, "needs a class index"),
        (TopK(), {"y": np.zeros(3)}, Detections(np.zeros((0, 4)), np.zeros(0)), "class index"),
        (TopK(), {"y": np.zeros((2, 3))}, 0, "shape [C] or [1, C]"),
        (TopK(), {"y": np.zeros(3)}, 3, "scores 3 classes"),
        (TopK(output="z"), {"y": np.zeros(3)}, 0, "outputs are y"),
    ],
)
def test_misuse_is_a_config_error(
    metric: TopK, outputs: dict[str, np.ndarray], annotation: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        metric.update(outputs, annotation, INFO)  # type: ignore[arg-type]


def test_k_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="k of 1 or more"):
        TopK(k=(0, 5))
