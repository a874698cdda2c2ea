import pytest

from calibench.config import CalibrationConfig, Placement, Preset, Subset
from calibench.errors import ConfigError


@pytest.mark.parametrize(
    ("n", "percent", "expected"),
    [(1000, 10, 100), (7, 10, 1), (301, 10, 31), (5, 100, 5), (3, 0.1, 1)],
)
def test_subset_counts_like_dl_workbench(n: int, percent: float, expected: int) -> None:
    assert Subset(percent=percent).size(n) == expected


def test_subset_parses_percent_count_and_fraction() -> None:
    assert Subset.parse("10%").percent == 10
    assert Subset.parse("300").count == 300
    assert Subset.parse(0.25).percent == 25
    assert Subset.parse(300).size(100) == 100


@pytest.mark.parametrize("bad", ["0%", "150%", "-3", "ten"])
def test_subset_rejects_nonsense_with_a_message(bad: str) -> None:
    with pytest.raises(ConfigError, match="subset"):
        Subset.parse(bad)


def test_config_round_trips_and_validates() -> None:
    config = CalibrationConfig(preset="mixed", subset=Subset(percent=None, count=5))  # type: ignore[arg-type]
    assert config.preset is Preset.MIXED
    assert CalibrationConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        CalibrationConfig(preset="fast")  # type: ignore[arg-type]


def test_placement_settings_are_validated_and_round_trip() -> None:
    config = CalibrationConfig(placement="rule", placement_batch=8, placement_threads=2)  # type: ignore[arg-type]
    assert config.placement is Placement.RULE
    assert CalibrationConfig.from_dict(config.to_dict()) == config
    assert CalibrationConfig().placement is Placement.MEASURED
    with pytest.raises(ConfigError, match="unknown placement 'fast'; choose one of: measured"):
        CalibrationConfig(placement="fast")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="placement budget must be a positive number"):
        CalibrationConfig(placement_budget_s=0)
    with pytest.raises(ConfigError, match="placement batch must be 1 or more"):
        CalibrationConfig(placement_batch=0)
