from collections.abc import Mapping

import onnx
import onnx_ir as ir
import pytest

from calibench.calibration.accuracy_aware.speed import (
    KEEP_FP32,
    RevertSpeed,
    reverted_plan,
    verdict_for,
)
from calibench.calibration.measured_placement import SpeedModel
from calibench.passes.placement import plan_quantization
from calibench.runtime.latency import Interleaved
from calibench.runtime.timer import CONVERT

HEADER = '<ir_version: 8, opset_import: ["" : 17]>'
CHAIN = """
g (float[N,1,8,8] x) => (float[N,4,8,8] y)
<float[4,1,1,1] w1 = {1,1,1,1}, float[4,4,1,1] w2 = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
{
  a = Conv(x, w1)
  y = Conv(a, w2)
}"""


def _speed() -> RevertSpeed:
    plan = plan_quantization(ir.from_proto(onnx.parser.parse_model(HEADER + CHAIN)))
    first, second = (d.name for d in plan.layers.values())
    speed = SpeedModel(
        fp32={first: 1.0, second: 4.0},  # 5 ms in FP32
        int8={first: 1.5, second: 1.0, f"{CONVERT}x::QuantizeLinear": 0.5},  # 3 ms in INT8
        batch=1,
        threads=1,
    )
    return RevertSpeed(speed, plan, timer=None)  # type: ignore[arg-type]


def test_reverts_are_costed_from_the_measured_layer_times() -> None:
    speed = _speed()
    first, second = speed.base.layers
    assert speed.revert_costs(speed.base) == {first: -0.5, second: 3.0}
    assert speed.estimate_ms(speed.base) == 3.0
    # the second Conv back in FP32: 3 - 1 + 4 = 6 ms, slower than FP32's 5
    assert speed.estimate_ms(reverted_plan(speed.base, [second])) == 6.0
    assert speed.too_slow(reverted_plan(speed.base, [second]))
    # the first takes its reader with it (and the input's QuantizeLinear goes): all FP32, 5 ms
    assert speed.estimate_ms(reverted_plan(speed.base, [first])) == 5.0
    assert speed.too_slow(reverted_plan(speed.base, [first]))
    assert not speed.too_slow(speed.base)


def test_the_verdict_says_keep_fp32_only_when_that_is_the_truth() -> None:
    assert verdict_for(1.3, met=True, stopped_for_speed=False) is None
    assert verdict_for(None, met=False, stopped_for_speed=False) is None  # drop missed, fast
    assert verdict_for(1.1, met=False, stopped_for_speed=True) == KEEP_FP32
    slower = verdict_for(0.87, met=True, stopped_for_speed=False)
    assert slower is not None and slower.startswith(KEEP_FP32) and "0.87×" in slower


class WholeRuns:
    """Times whole runs only: the INT8 model at ``speedup`` × FP32's speed."""

    batch, threads = 1, 1

    def __init__(self, speedup: float) -> None:
        self.speedup, self.calls = speedup, 0

    def interleaved(self, models: Mapping[str, onnx.ModelProto], budget_s: float) -> Interleaved:
        self.calls += 1
        turns = {"fp32": [[2.0]] * 7, "int8": [[2.0 / self.speedup]] * 7}
        return Interleaved(turns, {"fp32": 0.0, "int8": 0.0}, 7, 0.0)


def test_a_candidate_is_built_once_and_a_slower_verdict_is_timed_twice() -> None:
    base = _speed()
    built: list[str] = []

    def candidate() -> onnx.ModelProto:
        built.append("model")
        return onnx.ModelProto()

    slow = RevertSpeed(base.speed, base.base, WholeRuns(0.87))  # type: ignore[arg-type]
    assert slow.measured_slower(onnx.ModelProto(), candidate, frozenset({"a"}))
    assert slow.measured_slower(onnx.ModelProto(), candidate, frozenset({"a"}))
    assert built == ["model"] and slow.timer.calls == 2  # type: ignore[attr-defined]
    fast = RevertSpeed(base.speed, base.base, WholeRuns(1.2))  # type: ignore[arg-type]
    assert not fast.measured_slower(onnx.ModelProto(), candidate, frozenset({"a"}))
    assert fast.timer.calls == 1  # type: ignore[attr-defined]


def test_the_estimate_is_anchored_on_the_default_model_timed_whole() -> None:
    base = _speed()  # per-layer times: INT8 3 ms against FP32 5 ms, an estimated 1.67×
    first, second = base.base.layers
    fast = RevertSpeed(base.speed, base.base, WholeRuns(2.5))  # type: ignore[arg-type]
    assert fast.anchor(onnx.ModelProto(), onnx.ModelProto(), base.base) == pytest.approx(2.5)
    assert fast.estimated_speedup(base.base) == pytest.approx(2.5)
    # every layer back in FP32 is FP32's speed, whatever the anchor
    assert fast.estimated_speedup(reverted_plan(base.base, [first])) == pytest.approx(1.0)
    assert fast.too_slow(reverted_plan(base.base, [second]))  # 6 ms by its kernels
    slow = RevertSpeed(base.speed, base.base, WholeRuns(0.9))  # type: ignore[arg-type]
    assert slow.anchor(onnx.ModelProto(), onnx.ModelProto(), base.base) == pytest.approx(0.9)
    assert slow.timer.calls == 2  # type: ignore[attr-defined]  # "slower" is timed twice
    assert slow.measured_slower(onnx.ModelProto(), onnx.ModelProto, frozenset())  # remembered
    assert slow.too_slow(base.base)


def test_kernel_sums_that_miss_the_measured_gain_do_not_stop_a_faster_model() -> None:
    base = _speed()
    first, second = base.base.layers
    profiled = SpeedModel(  # INT8's kernels sum to 5.5 ms against FP32's 5: "slower"
        fp32={first: 1.0, second: 4.0},
        int8={first: 3.0, second: 1.0, f"{CONVERT}x::QuantizeLinear": 1.5},
        batch=1,
        threads=1,
    )
    speed = RevertSpeed(profiled, base.base, WholeRuns(1.17))  # type: ignore[arg-type]
    assert speed.too_slow(base.base)  # unanchored, as before
    speed.anchor(onnx.ModelProto(), onnx.ModelProto(), base.base)
    assert not speed.too_slow(base.base)  # timed whole, 1.17× faster
    assert speed.too_slow(reverted_plan(base.base, [second]))  # gives back its whole gain
