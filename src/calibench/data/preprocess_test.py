"""Preprocessing settings are validated when they are made: finite numbers, sane sizes."""

import math
from typing import Any

import numpy as np
import pytest

from calibench.data.preprocess import MAX_SIDE, Preprocess
from calibench.errors import ConfigError


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"mean": (math.nan, 0.0, 0.0)}, "mean"),
        ({"mean": (0.0, math.inf, 0.0)}, "mean"),
        ({"std": (1.0, -math.inf, 1.0)}, "std"),
        ({"std": (math.nan,)}, "std"),
        ({"std": (1.0, 0.0, 1.0)}, "std"),
        ({"scale": math.nan}, "scale"),
        ({"scale": math.inf}, "scale"),
    ],
)
def test_non_finite_numbers_and_zero_std_are_refused(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        Preprocess(**options)


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"resize": 0}, "resize"),
        ({"resize": -5}, "resize"),
        ({"resize": 100_000}, "resize"),
        ({"resize": (224, 0)}, "resize"),
        ({"resize": (MAX_SIDE + 1, 224)}, "resize"),
        ({"resize": (224, 224, 3)}, "resize"),
        ({"resize": "big"}, "resize"),
        ({"resize": True}, "resize"),
        ({"crop": (0, 224)}, "crop"),
        ({"crop": (-1, -1)}, "crop"),
        ({"crop": (224, 100_000)}, "crop"),
        ({"crop": 224.5}, "crop"),
    ],
)
def test_resize_and_crop_out_of_bounds_are_refused(options: dict[str, Any], option: str) -> None:
    with pytest.raises(ConfigError, match=option):
        Preprocess(**options)


def test_sizes_within_bounds_are_kept() -> None:
    assert Preprocess(resize=MAX_SIDE).resize == MAX_SIDE
    from_json: dict[str, Any] = {"resize": [1, MAX_SIDE], "crop": [1, 1]}
    assert Preprocess(**from_json).resize == (1, MAX_SIDE)
    assert Preprocess(scale=3e38, mean=(1e30,), std=(-2.0,)).std == (-2.0,)
    loose: dict[str, Any] = {"mean": np.array([0.5, 0.5, 0.5]), "std": 0.5}  # API callers
    assert Preprocess(**loose).std == (0.5,)
    with pytest.raises(ConfigError, match="scale"):
        Preprocess(scale=10**400)


def test_random_settings_are_valid_or_a_config_error() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10))
    side = st.integers(-(10**6), 10**6)
    size = st.one_of(st.none(), side, st.tuples(side, side), st.lists(side, max_size=3))

    @hypothesis.settings(max_examples=50, deadline=None, database=None)
    @hypothesis.given(
        resize=size,
        crop=st.one_of(st.none(), st.tuples(side, side)),
        scale=numbers,
        mean=st.lists(numbers, min_size=1, max_size=3),
        std=st.lists(numbers, min_size=1, max_size=3),
        color=st.sampled_from(["RGB", "BGR", "GRAY", "rgb"]),
    )
    def check(resize: Any, crop: Any, scale: Any, mean: Any, std: Any, color: str) -> None:
        try:
            made = Preprocess(
                resize=resize, crop=crop, scale=scale, mean=mean, std=std, color=color
            )
        except ConfigError:
            return
        values = (made.scale, *made.mean, *made.std)
        assert all(math.isfinite(v) for v in values) and 0 not in made.std
        for sizes in (made.resize, made.crop):
            if sizes is not None:
                each = (sizes,) if isinstance(sizes, int) else sizes
                assert all(1 <= s <= MAX_SIDE for s in each)
        assert Preprocess(**made.to_dict()) == made

    check()
