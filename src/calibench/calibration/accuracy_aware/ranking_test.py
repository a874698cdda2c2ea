from calibench.calibration.accuracy_aware.ranking import order_by_gain


def test_near_equal_gains_put_the_layer_cheaper_in_fp32_first() -> None:
    gains = {"slow": 10.0, "fast": 9.8, "minor": 2.0, "tiny": 1.99}
    fp32_ms = {"slow": 5.0, "fast": 0.5, "minor": 1.0, "tiny": 0.1}
    assert order_by_gain(list(gains), gains, fp32_ms) == ["fast", "slow", "tiny", "minor"]


def test_a_clearly_larger_gain_comes_first_whatever_its_time() -> None:
    gains = {"slow": 10.0, "fast": 5.0}
    assert order_by_gain(["fast", "slow"], gains, {"slow": 9.0, "fast": 0.1}) == ["slow", "fast"]
