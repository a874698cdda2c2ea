from pathlib import Path

import pytest

from calibench.data.annotations import Task
from calibench.errors import ConfigError
from calibench.metrics.classification import TopK
from calibench.metrics.custom import CallableMetric
from calibench.metrics.detection.decoders import YOLOXDecoder
from calibench.metrics.detection.mean_ap import DetectionMAP
from calibench.metrics.registry import (
    BUILTIN_SPECS,
    CHOICES,
    NAMES,
    SPEC_HELP,
    WORDS,
    builtin_spec,
    check_spec,
    metric_for,
)


def test_defaults_follow_the_task() -> None:
    assert isinstance(metric_for(Task.CLASSIFICATION, ["a", "b"], None), TopK)
    assert isinstance(metric_for(Task.TENSORS, ["0", "1"], None, output="logits"), TopK)
    detection = metric_for(Task.DETECTION, ["text"], None, decoder="yolox", input_size=None)
    assert isinstance(detection, DetectionMAP)


def test_map_spec_names_the_decoder_and_passes_its_options() -> None:
    metric = metric_for(Task.DETECTION, ["text"], "map:yolox", score_threshold=0.25)
    assert isinstance(metric, DetectionMAP) and isinstance(metric.decoder, YOLOXDecoder)
    assert metric.decoder.score_threshold == 0.25
    assert metric.name == "mAP@0.5"


def test_custom_spec_loads_the_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "registry_user_metric.py").write_text(
        "def score(outputs, annotation):\n    return 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    metric = metric_for(Task.DETECTION, [], "registry_user_metric:score")
    assert isinstance(metric, CallableMetric) and metric.name == "score"


@pytest.mark.parametrize(
    ("task", "spec", "options", "message"),
    [
        (Task.NOT_ANNOTATED, None, {}, "needs an annotated dataset"),
        (Task.NOT_ANNOTATED, "map:yolox", {}, "needs an annotated dataset"),
        (Task.DETECTION, None, {}, "needs the model's output decoder: map:yolov5"),
        (Task.DETECTION, "map:retina", {}, "unknown detection decoder 'retina'"),
        (Task.DETECTION, "map:ssd", {"stride": 8}, "has no option 'stride'"),
        (Task.DETECTION, "topk", {}, "needs class labels"),
        (Task.CLASSIFICATION, "map:yolov8", {}, "needs a detection dataset"),
        (Task.CLASSIFICATION, "topk", {"decoder": "ssd"}, "has no option 'decoder'"),
        (Task.CLASSIFICATION, "f1", {}, "unknown metric 'f1'"),
        (Task.CLASSIFICATION, "mymod:fn", {"k": 3}, "takes no options"),
        (Task.TENSORS, None, {}, "labels are not class indices .*--metric package.module"),
        (Task.TENSORS, "top1", {}, "labels are texts, numbers or arrays"),
    ],
)
def test_bad_choices_are_config_errors(
    task: Task, spec: str | None, options: dict[str, object], message: str
) -> None:
    classes = [] if task is Task.TENSORS else ["a"]
    with pytest.raises(ConfigError, match=message):
        metric_for(task, classes, spec, **options)


def test_builtin_specs_resolve_aliases_and_case_for_the_workbench() -> None:
    assert builtin_spec(" Top1 ") == builtin_spec("accuracy") == builtin_spec("topk") == "topk"
    assert builtin_spec("MAP:YOLOX") == "map:yolox" and "map:yolox" in BUILTIN_SPECS
    assert builtin_spec("map:retina") is None and builtin_spec("mymod:fn") is None
    assert "map:yolov5|yolox|yolov8|ssd" in SPEC_HELP
    assert isinstance(metric_for(Task.CLASSIFICATION, ["a"], "top1"), TopK)


def test_one_list_of_names_for_parser_help_workbench_and_messages() -> None:
    """Every name the help or the workbench offers is accepted, every figure name top-k reports
    can be typed back, and what is refused is refused with the same list."""
    offered = [c.spec for c in CHOICES] + [a for c in CHOICES for a in c.aliases]
    for name in offered:
        assert check_spec(name) in BUILTIN_SPECS
        assert name.split(":")[0] in SPEC_HELP and name in NAMES
    assert set(WORDS) == set(BUILTIN_SPECS)
    figures = TopK().result()
    assert all(check_spec(figure) == "topk" for figure in figures)
    assert check_spec(" TOP1 ") == "topk" and check_spec("map:YOLOX") == "map:yolox"
    assert check_spec("mymod.scores:cer") == "mymod.scores:cer"
    assert check_spec("./ocr_metric.py:score") == "./ocr_metric.py:score"
    for bad, message in [
        ("top3", "unknown metric 'top3'; choose topk \\(top1, top5, accuracy\\), map:yolov5"),
        ("map", "needs the model's output decoder"),
        ("map:retina", "unknown metric 'map:retina'"),
        ("topk:5", "unknown metric 'topk:5'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_spec(bad)
