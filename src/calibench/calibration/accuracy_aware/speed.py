"""What AccuracyAware's reverts cost in time, from the measurements speed-aware placement makes.

AccuracyAware exists to return *the fastest* model within the drop, so every revert is a trade
of accuracy against milliseconds. The per-layer times are those of placement
(:class:`~calibench.calibration.measured_placement.SpeedModel`: the FP32 and the INT8 model
profiled in turns at the project's batch size and threads); with ``--placement rule`` they are
measured here the same way. With them the method

* orders layers that cost the same accuracy by what their revert costs in time;
* stops when any further revert would leave the model no faster than FP32 (it then says
  :data:`KEEP_FP32`), instead of reverting a hundred layers into a slower model: a candidate
  the per-layer estimate finds still faster is built and timed whole against FP32 before its
  accuracy is evaluated (the estimate misses the conversions at new FP32/INT8 borders);
* times the model it returns against FP32, whole and interleaved, and says so when it is slower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx

from calibench.calibration.default import DefaultOutcome
from calibench.calibration.measured_placement import (
    SCREEN_SHARE,
    SpeedModel,
    measure_speed,
    timer_for,
)
from calibench.config import CalibrationConfig
from calibench.passes.placement import QuantPlan, revert_layers
from calibench.runtime.timer import ModelTimer

KEEP_FP32 = "no INT8 model within this drop is faster than FP32 here: keep FP32"
CHECK_S = 3.0
"""Seconds of interleaved whole-model timing for the returned model against FP32."""


@dataclass
class RevertSpeed:
    speed: SpeedModel
    base: QuantPlan
    """The plan whose INT8 model ``speed`` profiled; candidates are reverts of it."""
    timer: ModelTimer
    _measured: dict[frozenset[str], bool] = field(default_factory=dict)
    base_default: QuantPlan | None = None
    """The Default model's plan, once :meth:`anchor` has timed it."""
    default_speedup: float | None = None
    """The Default model's speed-up over FP32, timed whole (:meth:`anchor`)."""

    def estimate_ms(self, plan: QuantPlan) -> float:
        return self.speed.estimate_ms(self.base, plan)

    def estimated_speedup(self, plan: QuantPlan) -> float:
        """FP32's time over ``plan``'s model's. Per-layer times alone (kernel sums from
        profiles) leave out what whole runs spend between kernels, and the profiler's cost per
        node weighs on INT8's extra nodes: near 1× they can call slower than FP32 a model that
        runs 1.17× faster (a PP-OCR recognizer). So once :meth:`anchor` has timed the Default
        model whole, a plan's estimate is that speed-up, less the share of the Default
        model's per-layer gain over FP32 that ``plan`` gives back."""
        estimate, anchored = self.estimate_ms(plan), self.base_default
        if self.default_speedup is None or anchored is None:
            return self.speed.fp32_ms / max(estimate, 1e-9)
        default = self.estimate_ms(anchored)
        gain = self.speed.fp32_ms - default
        if gain < 0.05 * self.speed.fp32_ms:  # the kernel sums do not show the gain measured
            gain = sum(max(t, 0.0) for t in self.revert_costs(anchored).values())
        lost = (estimate - default) / max(gain, 1e-9)
        relative = 1 / self.default_speedup
        return 1 / max(relative + (1 - relative) * lost, 1e-9)

    def too_slow(self, plan: QuantPlan) -> bool:
        """Whether ``plan``'s model is estimated no faster than FP32."""
        return self.estimated_speedup(plan) <= 1.0

    def anchor(self, fp32: onnx.ModelProto, model: onnx.ModelProto, plan: QuantPlan) -> float:
        """Time ``model`` (the Default model, of ``plan``) whole against FP32: estimates are
        taken from there on (:meth:`estimated_speedup`). Returns the speed-up; a "slower" is
        timed twice, as in :meth:`measured_slower`, and remembered."""
        measured = self.speedup_over_fp32(fp32, model, CHECK_S / 2)
        if measured < 1.0:
            measured = self.speedup_over_fp32(fp32, model, CHECK_S)
        self._measured[frozenset()] = measured < 1.0
        self.default_speedup, self.base_default = measured, plan
        return measured

    def revert_costs(self, plan: QuantPlan) -> dict[str, float]:
        """INT8 layer → ms per run its revert adds (negative: FP32 is faster there)."""
        return {d.name: self.speed.revert_ms(self.base, d.name) for d in plan.int8_layers()}

    def measured_slower(
        self, fp32: onnx.ModelProto, candidate: Callable[[], onnx.ModelProto], key: frozenset[str]
    ) -> bool:
        """Whether the model ``candidate()`` builds (with ``key`` reverted) runs no faster than
        FP32, timed whole: the per-layer estimate leaves out the conversions that appear at every
        new border between FP32 and INT8, which add up when many layers are reverted."""
        if key not in self._measured:
            model = candidate()
            slower = self.speedup_over_fp32(fp32, model, CHECK_S / 2) < 1.0
            if slower:  # a verdict that stops the search is timed twice: one noisy window
                # (another process on a core) must not end a search that can still succeed
                slower = self.speedup_over_fp32(fp32, model, CHECK_S) < 1.0
            self._measured[key] = slower
        return self._measured[key]

    def speedup_over_fp32(
        self, fp32: onnx.ModelProto, int8: onnx.ModelProto, budget_s: float = CHECK_S
    ) -> float:
        """FP32's time over ``int8``'s, whole runs interleaved (> 1: INT8 is faster)."""
        check = self.timer.interleaved({"fp32": fp32, "int8": int8}, budget_s=budget_s)
        return check.paired_speedup("fp32", "int8")


def revert_speed(
    default: DefaultOutcome,
    config: CalibrationConfig,
    threads: int | None,
    feeds: dict[str, np.ndarray] | None,
) -> RevertSpeed | None:
    """The timings of ``default``'s placement, else measured now on ``feeds`` (one input batch);
    ``None`` when there is nothing to time with."""
    if default.placement is not None:
        placed = default.placement
        return RevertSpeed(placed.speed, placed.rule_plan, placed.timer)
    if feeds is None:
        return None
    timer = timer_for(config, feeds, threads)
    budget = SCREEN_SHARE * config.placement_budget_s
    speed = measure_speed(default.fp32, default.int8, timer, budget_s=budget)
    return RevertSpeed(speed, default.plan, timer)


def reverted_plan(base: QuantPlan, names: list[str]) -> QuantPlan:
    """``base`` with ``names`` reverted, as AccuracyAware builds its candidates."""
    return revert_layers(base, dict.fromkeys(names, "reverted"))


def verdict_for(speedup: float | None, met: bool, stopped_for_speed: bool) -> str | None:
    """What the report must say about speed: :data:`KEEP_FP32` when the model returned was
    timed slower than FP32, or when the drop was missed because reverting more could not beat
    FP32; ``None`` when the model is faster (or could not be timed and nothing says otherwise)."""
    if speedup is not None and speedup < 1.0:
        return f"{KEEP_FP32} (the model found runs {speedup:.2f}× FP32's speed)"
    if not met and stopped_for_speed:
        return KEEP_FP32
    return None
