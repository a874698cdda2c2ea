import pytest

from calibench.errors import WorkbenchError
from calibench.server.web import forms


def test_a_whole_number_left_empty_takes_its_default_or_must_be_chosen() -> None:
    assert forms.whole("batch size", 1)("") == 1
    assert forms.whole("batch size", 1)(" 8 ") == 8
    with pytest.raises(WorkbenchError, match="^choose a model$"):
        forms.whole("model")("  ")
    with pytest.raises(WorkbenchError, match="model must be a whole number, not '1.5'"):
        forms.whole("model")("1.5")
    assert forms.optional_whole("batch size")("") is None


def test_numbers_must_be_finite_and_zero_is_a_value() -> None:
    assert forms.number("Subset Size", 100.0)("") == 100.0
    assert forms.number("Subset Size", 100.0)("0") == 0.0
    for text in ("nan", "inf", "-Infinity"):
        with pytest.raises(WorkbenchError, match="must be a finite number"):
            forms.number("Maximum Accuracy Drop")(text)
    assert forms.numbers("the mean")("0.5, 1,2") == [0.5, 1.0, 2.0]
    with pytest.raises(WorkbenchError, match="numbers separated by commas"):
        forms.numbers("the mean")("1,,2")


def test_the_pixel_scale_reads_fractions() -> None:
    assert forms.scale("1/255") == pytest.approx(1 / 255)
    assert forms.scale("") is None
    with pytest.raises(WorkbenchError, match="like 1/255"):
        forms.scale("1/0")
    with pytest.raises(WorkbenchError, match="above 0"):
        forms.scale("-1")


def test_keep_fp32_patterns_keep_a_comma_inside_a_repetition() -> None:
    assert forms.patterns("Conv, conv_{1,3}, ") == ["Conv", "conv_{1,3}"]
    assert forms.patterns(None) == []
    with pytest.raises(WorkbenchError, match="at most 64 patterns"):
        forms.patterns(",".join(["x"] * 65))
