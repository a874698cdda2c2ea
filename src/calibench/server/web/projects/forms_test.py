import pytest

from calibench.errors import WorkbenchError
from calibench.server.web.projects.forms import NewProject, NewProjectForm, Optimize, OptimizeForm


def test_the_optimize_form_becomes_the_arguments_of_optimize() -> None:
    form = OptimizeForm(
        dataset_id="3", subset="0", keep_fp32="Conv, Gemm", batch="", target=" edge-1 "
    )
    parsed = Optimize.of(form)
    assert dict(parsed) == {
        "dataset_id": 3,
        "subset_percent": 0.0,  # a value: the calibration settings refuse it, in their words
        "method": "default",
        "max_drop": None,
        "preset": "performance",
        "batch": None,
        "streams": None,
        "runtime": None,  # the parent project's
        "drop_type": "absolute",
        "keep_fp32": ["Conv", "Gemm"],
        "placement": "measured",
        "placement_budget_s": 30.0,
        "target": "edge-1",
    }
    assert form.shown()["keep_fp32"] == "Conv, Gemm" and form.shown()["batch"] == ""


def test_a_form_refusal_comes_through_pydantic_in_the_forms_words() -> None:
    with pytest.raises(WorkbenchError, match="^Subset Size must be a finite number, not 'inf'$"):
        Optimize.of(OptimizeForm(dataset_id="3", subset="inf"))
    with pytest.raises(WorkbenchError, match="^choose a calibration dataset$"):
        Optimize.of(OptimizeForm())


def test_the_new_project_form_reads_preprocessing_first() -> None:
    form = NewProjectForm(scale="1/255", mean="0.5,0.5,0.5", color=" RGB ")
    with pytest.raises(WorkbenchError, match="^choose a model$"):
        NewProject.of(form, None, "2")
    with pytest.raises(WorkbenchError, match="the pixel scale"):
        NewProject.of(NewProjectForm(scale="x"), None, None)  # before the missing model
    parsed = NewProject.of(form, "1", "2")
    assert parsed.preprocess == {"scale": pytest.approx(1 / 255), "mean": [0.5] * 3, "color": "RGB"}
    assert (parsed.model_id, parsed.dataset_id, parsed.batch, parsed.streams) == (1, 2, 1, 1)
    assert NewProject.of(NewProjectForm(), "1", "2").preprocess is None


def test_the_optimize_form_travels_through_the_import_and_back() -> None:
    typed = OptimizeForm(
        dataset_id="1",
        subset="50",
        method="accuracy-aware",
        max_drop="0.5",
        drop_type="relative",
        preset="mixed",
        keep_fp32="/conv1/Conv, Gemm",
        batch="2",
        streams="3",
        placement="rule",
        placement_budget="12",
        action="import",
    )
    query = typed.query()
    assert "dataset_id" not in query and "action" not in query and "csrf" not in query
    from urllib.parse import parse_qsl

    back = OptimizeForm.from_query(dict(parse_qsl(query)), {"dataset_id": "7", "subset": "100"})
    assert back.shown() == {**typed.shown(), "dataset_id": "7"}


def test_a_shown_form_always_has_a_method_and_a_preset_checked() -> None:
    assert OptimizeForm(method="accuracy-aware").shown(accuracy_aware=False)["method"] == "default"
    assert OptimizeForm(method="accuracy-aware").shown()["method"] == "accuracy-aware"
    odd = OptimizeForm(method="bogus", preset="").shown()
    assert (odd["method"], odd["preset"]) == ("default", "performance")


def test_the_placement_and_its_timing_budget() -> None:
    measured = Optimize.of(OptimizeForm(dataset_id="1", placement_budget=" 45.5 "))
    assert (measured.placement, measured.placement_budget_s) == ("measured", 45.5)
    assert Optimize.of(OptimizeForm(dataset_id="1", placement_budget="")).placement_budget_s == 30
    # By rule nothing is timed: its hidden budget is not read, whatever it holds.
    rule = Optimize.of(OptimizeForm(dataset_id="1", placement="rule", placement_budget="abc"))
    assert (rule.placement, rule.placement_budget_s) == ("rule", 30.0)
    # An unknown placement travels on: the calibration settings refuse it, in their words.
    assert Optimize.of(OptimizeForm(dataset_id="1", placement="fast")).placement == "fast"
    assert OptimizeForm(placement="fast").shown()["placement"] == "measured"
    assert OptimizeForm(placement="rule").shown()["placement"] == "rule"


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("abc", "^Timing budget must be a number, not 'abc'$"),
        ("nan", "^Timing budget must be a finite number, not 'nan'$"),
        ("0", "^Timing budget must be above 0 seconds, not '0'$"),
        ("-5", "^Timing budget must be above 0 seconds, not '-5'$"),
        ("1e9", r"^Timing budget must be at most 3600 seconds \(an hour\), not '1e9'; the "),
    ],
)
def test_a_bad_timing_budget_is_refused_in_the_forms_words(typed: str, words: str) -> None:
    with pytest.raises(WorkbenchError, match=words):
        Optimize.of(OptimizeForm(dataset_id="1", placement_budget=typed))
