"""The one number format of speed-ups and drops, everywhere they are shown."""

from __future__ import annotations

import math

import pytest

from calibench.report.comparison import drop_words, speed_words


@pytest.mark.parametrize(
    ("ratio", "words"),
    [
        (1.2149, "1.21× faster"),
        (2.0, "2.00× faster"),
        (1 / 1.05, "1.05× slower"),  # never "0.95× faster"
        (0.99, "1.01× slower"),
        (1.004, "same speed"),
        (0.996, "same speed"),
        (None, "not measured"),
        (0.0, "not measured"),
        (math.inf, "not measured"),
    ],
)
def test_speed_words(ratio: float | None, words: str) -> None:
    assert speed_words(ratio) == words


@pytest.mark.parametrize(
    ("drop", "words"),
    [
        (2.9, "drop 2.90 pt"),
        (0.004, "no drop"),
        (-0.4, "gain 0.40 pt"),
        (None, "not measured"),
        (math.nan, "not measured"),
    ],
)
def test_drop_words(drop: float | None, words: str) -> None:
    assert drop_words(drop) == words


def test_the_title_says_which_model_is_which() -> None:
    from calibench.report.comparison import Comparison
    from calibench.runtime.profiling import LayerTimes

    def titled(int8: str, fp32: str) -> str:
        times = LayerTimes({}, 0.0, 0.0, 1, 1, 1)
        return Comparison(fp32, int8, [], times, times, {}, {}, 0).title

    assert titled("q.onnx", "m.onnx") == "q.onnx (INT8) against m.onnx (FP32)"
    assert titled("Fashion CNN INT8 (Default, …)", "Fashion CNN") == (
        "Fashion CNN INT8 (Default, …) against Fashion CNN (FP32)"
    )
