"""Property tests: random settings are either valid (and round-trip) or a ConfigError."""

import math
from typing import Any

import pytest

from calibench.config import CalibrationConfig, Subset
from calibench.errors import ConfigError

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")
SETTINGS = hypothesis.settings(max_examples=50, deadline=None, database=None)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({}),
)
subset_text = st.one_of(
    st.text(max_size=8),
    st.from_regex(r"\A-?[0-9]{0,4}(\.[0-9]*)?%?\Z"),
    st.sampled_from(["nan%", "inf%", "-inf", "1e400%", "nan", "0x10", " 12 "]),
)


@SETTINGS
@hypothesis.given(text=st.one_of(subset_text, anything), seed=st.integers(0, 2**32))
def test_subset_parse_gives_a_subset_or_a_config_error(text: Any, seed: int) -> None:
    try:
        subset = Subset.parse(text, seed=seed)
    except ConfigError:
        return
    assert isinstance(subset, Subset)
    assert Subset(**_plain(subset)) == subset


@SETTINGS
@hypothesis.given(
    percent=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), anything),
    count=st.one_of(st.none(), st.integers(-5, 10**12), anything),
    seed=st.one_of(st.integers(0, 2**32), anything),
    n=st.integers(1, 10**9),
)
def test_subset_fields_are_checked_and_size_stays_in_range(
    percent: Any, count: Any, seed: Any, n: int
) -> None:
    try:
        subset = Subset(percent=percent, count=count, seed=seed)
    except ConfigError:
        return
    assert 1 <= subset.size(n) <= n


VALID = {
    "method": st.sampled_from(["default", "accuracy-aware"]),
    "preset": st.sampled_from(["performance", "mixed"]),
    "range_estimator": st.sampled_from(["minmax", "percentile", "mse"]),
    "batch_size": st.integers(1, 64),
    "max_drop": st.floats(0, 99.9),
    "drop_type": st.sampled_from(["absolute", "relative"]),
    "isa": st.sampled_from(["auto", "avx2", "vnni", "AVX512"]),
    "keep_fp32": st.lists(st.text("abc.*", min_size=1, max_size=6), max_size=3).map(tuple),
    "bias_correction": st.booleans(),
    "metric": st.one_of(st.none(), st.sampled_from(["top1", "map:yolox"])),
    "subset": st.builds(Subset.parse, st.sampled_from(["10%", "300", "100%", "1"])),
    "validation_subset": st.one_of(st.none(), st.builds(Subset, st.floats(0.1, 100))),
}


@SETTINGS
@hypothesis.given(name=st.sampled_from(sorted(VALID)), value=anything, data=st.data())
def test_one_odd_field_gives_a_config_error_or_a_valid_config(
    name: str, value: Any, data: Any
) -> None:
    fields = {"method": "accuracy-aware", "max_drop": 1.0} if data.draw(st.booleans()) else {}
    fields[name] = value
    _valid_or_config_error(fields)


@SETTINGS
@hypothesis.given(data=st.data())
def test_valid_configs_round_trip_through_dicts(data: Any) -> None:
    names = data.draw(st.sets(st.sampled_from(sorted(VALID))))
    _valid_or_config_error({n: data.draw(VALID[n], label=n) for n in names}, must=True)


def _valid_or_config_error(fields: dict[str, Any], must: bool = False) -> None:
    try:
        config = CalibrationConfig(**fields)
    except ConfigError:
        if must and (fields.get("method") != "accuracy-aware" or "max_drop" in fields):
            raise
        return
    assert isinstance(config.batch_size, int) and config.batch_size >= 1
    assert config.max_drop is None or math.isfinite(config.max_drop)
    assert all(isinstance(p, str) and p.strip() for p in config.keep_fp32)
    assert CalibrationConfig.from_dict(config.to_dict()) == config


def _plain(subset: Subset) -> dict[str, Any]:
    return {"percent": subset.percent, "count": subset.count, "seed": subset.seed}
