"""Speed-aware placement (``--placement measured``): keep FP32 wherever INT8, with the
QuantizeLinear/DequantizeLinear it adds, runs no faster on this machine.

Whether INT8 pays depends on the layer, the batch size, the threads and the processor (a
3-channel input Conv is slower in INT8 at batch 1 on most CPUs, faster at batch 8), so it is
measured, at the project's inference settings, the way TensorRT's builder times its tactics:

1. **Screen.** The FP32 model and the rule model (every layer INT8 that can be) are profiled
   in turns; each INT8 layer's *region* (``passes.fp32_region``: the layer alone where ONNX
   Runtime allows it, else with its readers) gets an estimate from those per-layer times. A
   region whose INT8 time, with the conversions that exist only for it, is not clearly below
   its FP32 time (:data:`SUSPECT`) is a suspect; the rest stay INT8 untimed.
2. **Time.** Each suspect, worst first, is sent to FP32 in a candidate model, and the current
   model and the candidates (up to :data:`BATCH` at a time, one suspect each) are profiled
   run against run. What is compared is the time of the parts the change touches: the
   region's layers, the conversions of its tensors and the runtime's layout changes, paired
   per run. FP32 is kept when INT8 is not faster; the next suspects are timed against the
   model with those decisions in it.
3. **Confirm.** The model chosen and the rule model are timed whole, interleaved; if the chosen
   one is not at least as fast, the rule model is kept and the report says so.

A model with many suspects (more than :data:`CHAIN_FROM`: an OCR recognizer has hundreds of
small layers, none clearly faster in INT8) is timed by *chains*: suspects that read one
another's outputs go to FP32 together, as one candidate, since the conversions between them go
with them; a budget that would time a few layers one by one then covers the whole model.

Everything runs within a budget of seconds; suspects left untimed stay INT8, as the rule says.
The timer is a :class:`~calibench.runtime.timer.ModelTimer`, so another runtime can be timed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx

from calibench.config import CalibrationConfig
from calibench.passes.fp32_region import fp32_region, region_parts
from calibench.passes.insert_qdq import insert_qdq
from calibench.passes.placement import QuantPlan
from calibench.quant import QuantParams
from calibench.runtime.backend import Runtime
from calibench.runtime.profiling import LAYOUT
from calibench.runtime.timer import CONVERT, ModelTimer, OrtTimer, Parts, tensor_of

SUSPECT = 0.7
"""A region is timed when its estimated INT8 time is at least this share of its FP32 time."""
SCREEN_RUNS = 12
SCREEN_SHARE = 0.3
"""Share of the budget the screening profile may take (it still gets ``MIN_RUNS`` runs)."""
VERIFY_RUNS = 10
BATCH = 4
"""Suspects timed in one profile, each in its own candidate, against the same current model:
its runs are shared (at batch 8 they are most of the timing)."""
CONFIRM_SHARE = 0.2
"""Share of the budget kept for the final whole-model check (at most :data:`MAX_CONFIRM_S`)."""
MAX_CONFIRM_S = 2.0
CONFIRM_RUNS = 150
"""Runs of each model the whole-model check wants: its time is sized from the screened run
time (at least :data:`MIN_CONFIRM_S`), not a fixed share of the budget."""
MIN_CONFIRM_S = 0.3
CHAIN_FROM = 16
"""With more suspects than this, neighbouring suspects are timed together (module doc)."""


@dataclass(frozen=True)
class RegionTiming:
    """One region timed: INT8 (the current model) against FP32 (the candidate), ms per run."""

    layer: str
    region: tuple[str, ...]
    int8_ms: float
    fp32_ms: float
    kept_fp32: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["region"] = list(self.region)
        return data


@dataclass(frozen=True)
class SpeedModel:
    """Median time of each part of the FP32 and the rule INT8 model at one setting: what a
    region costs in each precision, and so what sending layers back to FP32 costs in time."""

    fp32: dict[str, float]
    int8: dict[str, float]
    batch: int
    threads: int

    @property
    def fp32_ms(self) -> float:
        return sum(self.fp32.values())

    @property
    def int8_ms(self) -> float:
        return sum(self.int8.values())

    def region_ms(
        self, plan: QuantPlan, changed: QuantPlan, region: list[str]
    ) -> tuple[float, float]:
        """(INT8 ms, FP32 ms) of ``region`` of ``plan``: its layers, plus in INT8 the
        conversions of the tensors it alone needed (those ``changed`` no longer quantizes)."""
        parts = region_parts(plan, region)
        gone = set(plan.tensors) - set(changed.tensors)
        conversions = sum(
            v
            for k, v in self.int8.items()
            if k.startswith(CONVERT) and (tensor_of(k) in gone or tensor_of(k) in parts)
        )
        int8 = sum(self.int8.get(p, 0.0) for p in parts) + conversions
        return int8, sum(self.fp32.get(p, 0.0) for p in parts)

    def estimate_ms(self, base: QuantPlan, plan: QuantPlan) -> float:
        """Kernel time per run of ``plan``'s model, from the parts: the layers ``plan`` keeps in
        FP32 that ``base`` ran in INT8 at their FP32 time. Conversions new at the borders are
        not counted, so the estimate leans fast; the returned model is timed whole after."""
        region = [n for n, d in base.layers.items() if d.int8 and not plan.layers[n].int8]
        int8, fp32 = self.region_ms(base, plan, region)
        return self.int8_ms - int8 + fp32

    def revert_ms(self, plan: QuantPlan, name: str) -> float:
        """What running ``name`` (and what is folded into it) in FP32 adds per run."""
        parts = region_parts(plan, [name])
        return sum(self.fp32.get(p, 0.0) - self.int8.get(p, 0.0) for p in parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "threads": self.threads,
            "fp32_ms": round(self.fp32_ms, 4),
            "int8_ms": round(self.int8_ms, 4),
        }


@dataclass
class MeasuredPlacement:
    plan: QuantPlan
    model: onnx.ModelProto
    """The INT8 model of ``plan`` (without bias correction)."""
    speed: SpeedModel
    rule_plan: QuantPlan
    """The plan placement started from, whose model ``speed`` profiled."""
    timer: ModelTimer
    regions: list[RegionTiming] = field(default_factory=list)
    speedup_vs_rule: float | None = None
    """Whole-model check: the rule model's time over the chosen model's (≥ 1: as fast)."""
    fell_back: bool = False
    seconds: float = 0.0
    untimed: int = 0
    """Suspects left untimed when the budget ran out (they stay INT8)."""
    notes: list[str] = field(default_factory=list)

    @property
    def kept_fp32(self) -> list[RegionTiming]:
        return [r for r in self.regions if r.kept_fp32]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.speed.to_dict(),
            "regions": [r.to_dict() for r in self.regions],
            "kept_fp32": [r.layer for r in self.kept_fp32] if not self.fell_back else [],
            "speedup_vs_rule": self.speedup_vs_rule,
            "fell_back": self.fell_back,
            "untimed": self.untimed,
            "seconds": round(self.seconds, 3),
        }


def measure_speed(
    fp32: onnx.ModelProto,
    int8: onnx.ModelProto,
    timer: ModelTimer,
    runs: int = SCREEN_RUNS,
    budget_s: float | None = None,
) -> SpeedModel:
    """Per-part medians of ``fp32`` and ``int8``, profiled in turns."""
    fp32_parts, int8_parts = timer.parts([fp32, int8], runs, budget_s)
    return SpeedModel(_medians(fp32_parts), _medians(int8_parts), timer.batch, timer.threads)


def place_by_timing(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: Mapping[str, QuantParams],
    timer: ModelTimer,
    budget_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> MeasuredPlacement:
    """``plan`` with FP32 kept where INT8 measured no faster (see the module's steps)."""
    start = time.perf_counter()
    rule = insert_qdq(fp32, plan, params)
    speed = measure_speed(fp32, rule, timer, budget_s=SCREEN_SHARE * budget_s)
    confirm_s = _confirm_seconds(speed, budget_s)
    suspects = _suspects(plan, speed)
    units = chains(plan, suspects) if len(suspects) > CHAIN_FROM else [[n] for n in suspects]
    outcome = MeasuredPlacement(plan, rule, speed, plan, timer)
    current, model = plan, rule
    done = 0
    while done < len(units):
        if progress:
            progress(done, len(units))
        if time.perf_counter() - start > budget_s - confirm_s:
            outcome.untimed = sum(len(u) for u in units[done:])
            break
        group: list[tuple[list[str], QuantPlan, list[str]]] = []
        while done < len(units) and len(group) < BATCH:
            candidate, region = _unit_region(current, units[done])
            if region:  # else it went to FP32 with a region timed before
                group.append((units[done], candidate, region))
            done += 1
        if not group:
            continue
        candidates = [insert_qdq(fp32, candidate, params) for _, candidate, _ in group]
        left = budget_s - confirm_s - (time.perf_counter() - start)
        now, *then = timer.parts([model, *candidates], VERIFY_RUNS, max(left, 0.0))
        kept = []
        for (unit, candidate, region), parts, candidate_model in zip(
            group, then, candidates, strict=True
        ):
            timing = _compare(now, parts, current, candidate, unit, region)
            outcome.regions.append(timing)
            if timing.kept_fp32:
                current, _ = _unit_region(current, unit, _words(timing, timer, len(unit)))
                kept.append(candidate_model)
        if kept:  # several regions kept FP32 at once: the model with all of them
            model = kept[0] if len(kept) == 1 else insert_qdq(fp32, current, params)
    if progress:
        progress(len(units), len(units))
    if outcome.untimed:
        outcome.notes.append(
            f"placement timing: the budget ({budget_s:g} s) ran out with {outcome.untimed} "
            "suspect layers untimed; they stay INT8 (raise --placement-budget to time them)"
        )
    if outcome.kept_fp32:
        check = timer.interleaved({"rule": rule, "measured": model}, budget_s=confirm_s)
        outcome.speedup_vs_rule = check.paired_speedup("rule", "measured")
        if outcome.speedup_vs_rule < 1.0:
            outcome.fell_back = True
            outcome.notes.append(
                f"placement timing: keeping {len(outcome.kept_fp32)} layers in FP32 ran "
                f"{outcome.speedup_vs_rule:.2f}× the speed of the rule model as a whole, so the "
                "rule placement is kept"
            )
            current, model = plan, rule
    outcome.plan, outcome.model = current, model
    outcome.seconds = time.perf_counter() - start
    outcome.notes.insert(0, _summary(outcome, timer))
    return outcome


def _suspects(plan: QuantPlan, speed: SpeedModel) -> list[str]:
    """INT8 layers whose region may not gain from INT8, the largest estimated loss first."""
    found: list[tuple[float, str]] = []
    for decision in plan.int8_layers():
        changed, region = fp32_region(plan, decision.name, "")
        int8, fp32 = speed.region_ms(plan, changed, region)
        if int8 > 0 and int8 >= SUSPECT * fp32:
            found.append((int8 - fp32, decision.name))
    return [name for _, name in sorted(found, key=lambda x: -x[0])]


def _compare(
    now: Parts,
    then: Parts,
    plan: QuantPlan,
    candidate: QuantPlan,
    unit: list[str],
    region: list[str],
) -> RegionTiming:
    """The region in INT8 (``now``: the current model's runs) against FP32 (``then``: the
    candidate's runs of the same rounds), paired run by run."""
    int8 = _local(now, plan, candidate, region)
    fp32 = _local(then, plan, candidate, region)
    ratio = float(np.median(int8 / np.maximum(fp32, 1e-9)))
    return RegionTiming(
        unit[0],
        tuple(region),
        float(np.median(int8)),
        float(np.median(fp32)),
        kept_fp32=ratio >= 1.0,
    )


def chains(plan: QuantPlan, suspects: list[str]) -> list[list[str]]:
    """``suspects`` (worst first) in groups of neighbours: a suspect reading another's output
    (directly, or through data-movement ops that share its quantizer) is in its chain. Chains
    come in the order of their worst member; members keep their order."""
    root = {name: name for name in suspects}

    def find(name: str) -> str:
        while root[name] != name:
            root[name] = root[root[name]]
            name = root[name]
        return name

    producer = {
        d.output_tensor: n for n in suspects if (d := plan.layers[n]).output_tensor is not None
    }
    producer |= {t: producer[r] for t, r in plan.aliases.items() if r in producer}
    for name in suspects:
        for tensor in plan.layers[name].activation_inputs:
            if tensor in producer:
                root[find(name)] = find(producer[tensor])
    grouped: dict[str, list[str]] = {}
    for name in suspects:
        grouped.setdefault(find(name), []).append(name)
    return list(grouped.values())


def _unit_region(plan: QuantPlan, unit: list[str], words: str = "") -> tuple[QuantPlan, list[str]]:
    """``plan`` with every still-INT8 layer of ``unit`` sent to FP32 (each with what must go
    with it), and the layers no longer INT8."""
    changed = plan
    for name in unit:
        if changed.layers[name].int8:
            changed, _ = fp32_region(changed, name, words)
    return changed, [n for n, d in plan.layers.items() if d.int8 and not changed.layers[n].int8]


def _confirm_seconds(speed: SpeedModel, budget_s: float) -> float:
    """Time for the whole-model check: :data:`CONFIRM_RUNS` runs of two models of about the
    screened INT8 model's time, within its share of the budget."""
    wanted = max(MIN_CONFIRM_S, 2 * CONFIRM_RUNS * speed.int8_ms / 1000)
    return min(wanted, MAX_CONFIRM_S, CONFIRM_SHARE * budget_s)


def _local(parts: Parts, plan: QuantPlan, changed: QuantPlan, region: list[str]) -> np.ndarray:
    """Per run, the time of what changes between ``plan`` and ``changed``: the region's layers,
    the conversions of its tensors and of the tensors quantized in one plan only, and the
    runtime's layout changes (an FP32 layer among INT8 ones may need its own)."""
    members = region_parts(plan, region)
    tensors = set(plan.tensors) ^ set(changed.tensors)
    for name in region:
        decision = plan.layers[name]
        tensors.update(decision.activation_inputs)
        if decision.output_tensor:
            tensors.add(decision.output_tensor)
    runs = len(next(iter(parts.values()))) if parts else 0
    total = np.zeros(runs)
    for key, values in parts.items():
        converts = key.startswith(CONVERT) and tensor_of(key) in tensors | members
        if key in members or key == LAYOUT or converts:
            total += values
    return total


def _medians(parts: Parts) -> dict[str, float]:
    return {k: float(np.median(v)) for k, v in parts.items()}


def _setting(timer: ModelTimer) -> str:
    runtime = getattr(timer, "label", "")  # a timer of another runtime than ORT names it
    threads = f"{timer.threads} thread{'s' if timer.threads != 1 else ''}"
    return f"batch {timer.batch}, {threads}" + (f", {runtime}" if runtime else "")


def _words(timing: RegionTiming, timer: ModelTimer, chained: int = 1) -> str:
    together = f" (timed with its chain of {chained} layers)" if chained > 1 else ""
    return (
        f"kept FP32{together}: INT8 {timing.int8_ms:.3f} ms vs FP32 {timing.fp32_ms:.3f} ms at "
        f"{_setting(timer)}"
    )


def _summary(outcome: MeasuredPlacement, timer: ModelTimer) -> str:
    kept = 0 if outcome.fell_back else len(outcome.kept_fp32)
    check = (
        f"; whole model {outcome.speedup_vs_rule:.2f}× the rule model's speed"
        if outcome.speedup_vs_rule is not None
        else ""
    )
    return (
        f"placement timing ({_setting(timer)}): {len(outcome.regions)} layers timed, "
        f"{kept} kept in FP32 where INT8 measured no faster{check}, in "
        f"{outcome.seconds:.1f} s"
    )


def timing_feeds(first: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Inputs of ``batch`` rows from one calibration batch (its rows repeated when short)."""
    feeds = {}
    for name, rows in first.items():
        reps = -(-batch // len(rows))
        feeds[name] = np.ascontiguousarray(np.concatenate([rows] * reps)[:batch])
    return feeds


def timer_for(
    config: CalibrationConfig, first: Mapping[str, np.ndarray], threads: int | None
) -> ModelTimer:
    """The timer of the runtime the model is made for, at the configured inference settings,
    on inputs from ``first`` (one input batch). OpenVINO's kernels, fusions and plan
    (quantizers on layer inputs) are not ONNX Runtime's, so its model is timed on OpenVINO."""
    feeds = timing_feeds(first, config.placement_batch)
    count = config.placement_threads or threads or os.cpu_count() or 1
    if config.runtime is Runtime.OPENVINO:
        from calibench.runtime.openvino_timer import OvTimer  # only when OpenVINO is chosen

        return OvTimer(feeds, config.placement_batch, count)
    return OrtTimer(feeds, config.placement_batch, count)
