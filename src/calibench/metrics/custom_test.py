from pathlib import Path

import numpy as np
import pytest

from calibench.data.annotations import SampleInfo
from calibench.errors import ConfigError
from calibench.metrics.base import Metric
from calibench.metrics.custom import CallableMetric, MetricError, load_metric

INFO = SampleInfo(index=4)


def _absolute_error(outputs: dict[str, np.ndarray], annotation: object) -> float:
    return float(abs(outputs["y"].item() - float(annotation)))  # type: ignore[arg-type]


def test_callable_metric_averages_per_sample_scores() -> None:
    metric = CallableMetric(_absolute_error, name="mae")
    assert isinstance(metric, Metric)
    assert metric.update({"y": np.array([3.0])}, 1, INFO) == 2.0
    assert metric.update({"y": np.array([1.0])}, 1, INFO) == 0.0
    assert metric.update({"y": np.array([5.0])}, 1, INFO) == 4.0
    assert metric.result() == {"mae": 2.0}
    metric.reset()
    assert metric.result() == {"mae": 0.0}


def test_a_non_number_score_is_refused() -> None:
    metric = CallableMetric(lambda outputs, annotation: "good")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="returned str for sample 4"):
        metric.update({}, None, INFO)


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "usermetrics_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scores.py").write_text(
        "THRESHOLD = 0.5\n"
        "class Holder:\n"
        "    @staticmethod\n"
        "    def nested(outputs, annotation):\n"
        "        return 7\n"
        "def positive(outputs, annotation):\n"
        "    return 100.0 if outputs['y'].item() > THRESHOLD else 0.0\n"
    )
    (package / "broken.py").write_text("import not_a_module_anywhere_xyz\n")
    (package / "fragile.py").write_text(
        "def first_char(outputs, text):\n    return float(text[0] == 'a')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def test_load_metric_imports_a_module_function(user_module: Path) -> None:
    metric = load_metric("usermetrics_pkg.scores:positive")
    assert metric.name == "positive"
    metric.update({"y": np.array(0.9)}, None, INFO)
    metric.update({"y": np.array(0.1)}, None, INFO)
    assert metric.result() == {"positive": 50.0}
    assert load_metric("usermetrics_pkg.scores:Holder.nested").update({}, None, INFO) == 7.0


def test_load_metric_from_a_file_path(user_module: Path) -> None:
    metric = load_metric(f"{user_module / 'scores.py'}:positive", name="pos")
    assert metric.update({"y": np.array(1.0)}, None, INFO) == 100.0
    assert metric.result() == {"pos": 100.0}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("usermetrics_pkg.scores", "given as 'package.module:function'"),
        ("no_such_module_xyz:fn", "module 'no_such_module_xyz' not found"),
        ("usermetrics_pkg.missing:fn", "module 'usermetrics_pkg.missing' not found"),
        ("usermetrics_pkg.broken:fn", "failed to import: .*not_a_module_anywhere_xyz"),
        ("usermetrics_pkg.scores:absent", "has no attribute 'absent'"),
        ("usermetrics_pkg.scores:THRESHOLD", "is a float, not a function"),
        ("/no/such/file.py:fn", "file '/no/such/file.py' not found"),
    ],
)
def test_load_metric_errors(user_module: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_metric(spec)
    assert "\n" not in str(caught.value)


def test_a_function_that_raises_is_the_metrics_own_error(user_module: Path) -> None:
    """Named by function and sample, a ConfigError (exit 5), its cause kept for --debug."""
    metric = load_metric("usermetrics_pkg.fragile:first_char")
    assert metric.update({"y": np.zeros((20, 5))}, "abc", INFO) == 1.0
    with pytest.raises(MetricError) as caught:
        metric.update({"y": np.zeros((20, 5))}, "", SampleInfo(index=7))
    message = str(caught.value)
    assert message.startswith(
        "custom metric usermetrics_pkg.fragile:first_char failed on sample 7: IndexError: "
    )
    assert "its outputs: y [20, 5]; its annotation: text ''" in message and "\n" not in message
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 5
    assert isinstance(caught.value.__cause__, IndexError)
    from_file = load_metric(f"{user_module / 'fragile.py'}:first_char")
    with pytest.raises(MetricError, match=r"^custom metric fragile.py:first_char failed on sample"):
        from_file.update({}, np.zeros((3, 2)), INFO)
