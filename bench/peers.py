"""The quantizers under comparison, each run alone in a fresh subprocess.

Every quantizer gets the same FP32 model and the same calibration ``.npz`` (one float32 array
per model input, samples along axis 0, already preprocessed) and writes an INT8 QDQ ``.onnx``.
The measured window of each one covers the same work: reading the calibration data, calibrating
and writing the INT8 model. Imports and loading the FP32 model happen before it, so that their
memory is the baseline (see :mod:`bench.quantize_one`).

Heavy libraries are imported inside the functions: a calibench run must not pay for (or carry
the memory of) importing NNCF, and the other way round.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bench._proc import python_m

LABEL_KEYS = frozenset({"labels", "label", "targets"})
ORT_CALIBRATION_BATCH = 8
"""Batch size of the data reader fed to ORT's calibrator: calibench's default batch size, so
neither pays for a smaller batch than the other (ORT's MinMax result does not depend on it)."""

ImagePreprocess = dict[str, Any]
StageSeconds = dict[str, float]


@dataclass(frozen=True)
class Quantizer:
    name: str
    label: str
    preload: Callable[[], None]
    """Import what the quantizer needs, before the memory baseline is taken."""
    run: Callable[[onnx.ModelProto, Path, Path, int, ImagePreprocess | None], StageSeconds]
    """(FP32 model, calibration data, INT8 output path, subset size, image preprocessing for a
    folder dataset) -> seconds per stage, as far as the quantizer reports them."""
    setting: str | None = None
    """The timing setting (``b1t1`` …) the model is made for and timed at; None: all."""
    runtimes: tuple[str, ...] = ("ort",)
    """The runtimes its model is timed on (``ort``, ``openvino``)."""
    family: str = "peer"
    """``calibench`` or ``peer``: which side of a comparison the model is on."""


def ort_quantize_static(source: str, out: str, reader: Any) -> None:
    """ORT's quantize_static as every bench run calls it: QDQ, int8 weights per channel, uint8
    activations, MinMax ranges (ORT's own defaults for CNNs on x86)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        source,
        out,
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The input arrays of a calibration ``.npz`` (label arrays left out)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files if k not in LABEL_KEYS}


# --- calibench ------------------------------------------------------------------------------


class NotAvailable(RuntimeError):
    """The calibench under test lacks a feature a bench row needs: the row says so (never a
    figure made up in its place)."""


@dataclass(frozen=True)
class CalibenchRun:
    """How calibench is asked to calibrate for one bench row."""

    preset: str
    placement: str | None = None
    """``rule`` (a fixed rule: every layer ORT can run in INT8) or ``measured`` (layers timed at
    ``setting``); None: calibench's default, whatever it is."""
    runtime: str | None = None
    """``openvino``: the placement for OpenVINO; None: calibench's default (ORT)."""
    setting: tuple[int, int] | None = None
    """(batch, threads) measured placement times the candidates at."""


def calibench_config(run: CalibenchRun, subset: int) -> Any:
    """The ``CalibrationConfig`` of ``run``, built from the fields this calibench has; raises
    :class:`NotAvailable` naming what is missing. A calibench without ``placement`` places by
    the rule, so it still makes the rule row."""
    import dataclasses

    from calibench.config import CalibrationConfig, Subset

    fields = {f.name for f in dataclasses.fields(CalibrationConfig)}
    options: dict[str, Any] = {"preset": run.preset, "subset": Subset(percent=None, count=subset)}
    if run.placement is not None and (run.placement != "rule" or "placement" in fields):
        options["placement"] = run.placement
    if run.runtime is not None:
        options["runtime"] = run.runtime
    if run.setting is not None:
        options["placement_batch"], options["placement_threads"] = run.setting
    missing = sorted(k for k in options if k not in fields)
    if missing:
        raise NotAvailable(
            "this calibench's CalibrationConfig has no "
            + ", ".join(missing)
            + f" (needed for placement={run.placement}, runtime={run.runtime or 'onnxruntime'})"
        )
    return CalibrationConfig(**options)


RUN_NOTES: list[str] = []
"""What the quantizer said about its own run (calibench's placement notes: e.g. that measured
placement fell back to the rule); :mod:`bench.quantize_one` prints them with the figures."""


def _preload_calibench() -> None:
    import calibench  # noqa: F401


def _calibench(run: CalibenchRun) -> Callable[..., StageSeconds]:
    def quantize(
        model: onnx.ModelProto,
        data: Path,
        out: Path,
        subset: int,
        preprocess: ImagePreprocess | None,
    ) -> StageSeconds:
        import calibench
        from calibench.model.load import MIN_OPSET, default_opset

        if default_opset(model) < MIN_OPSET:
            # calibrate(path) converts an old opset itself, calibrate(ModelProto) does not
            # (ddddocr's detector is opset 11): converted here, inside the timed window.
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        config = calibench_config(run, subset)
        result = calibench.calibrate(model, str(data), config=config, preprocess=preprocess)
        result.save(out)
        RUN_NOTES.extend(n for n in result.report.notes if n.startswith("placement"))
        if result.report.subset_size != min(subset, result.report.dataset_size):
            raise RuntimeError(f"calibench used {result.report.subset_size} samples, not {subset}")
        return dict(result.report.to_dict()["seconds"])

    return quantize


# --- ONNX Runtime quantize_static ------------------------------------------------------------


def _preload_ort() -> None:
    import onnxruntime.quantization
    import onnxruntime.quantization.shape_inference  # noqa: F401


def _ort_static(
    model: onnx.ModelProto,
    data: Path,
    out: Path,
    subset: int,
    preprocess: ImagePreprocess | None,
) -> StageSeconds:
    """ORT's documented flow: ``quant_pre_process`` then ``quantize_static`` (QDQ, per-channel
    MinMax, activations uint8, weights int8: the u8s8 configuration ORT's CPU kernels favour)."""
    import time

    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if preprocess is not None:
        raise ValueError("the ORT peer reads .npz calibration data only")

    class Reader(CalibrationDataReader):
        def __init__(self, arrays: dict[str, np.ndarray], batch: int) -> None:
            n = min(subset, len(next(iter(arrays.values()))))
            self._batches: Iterator[dict[str, np.ndarray]] = iter(
                [{k: v[i : i + batch] for k, v in arrays.items()} for i in range(0, n, batch)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    seconds: StageSeconds = {}
    data, out = data.resolve(), out.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-ort-") as tmp:
        os.chdir(tmp)  # a failing symbolic shape inference leaves its files in the cwd
        start = time.perf_counter()
        prepared = Path(tmp) / "preprocessed.onnx"
        try:
            quant_pre_process(model, str(prepared))
            seconds["quant_pre_process"] = time.perf_counter() - start
        except Exception as exc:  # ORT documents the step as optional; the row says it failed
            print(f"quant_pre_process failed, quantizing without it: {exc}", file=sys.stderr)
            # Without it nothing lifts an old opset, and per-channel QDQ needs 13 (ddddocr's
            # detector is opset 11): converted as calibench converts it.
            from calibench.model.load import MIN_OPSET, default_opset

            opset = default_opset(model)
            if opset < MIN_OPSET:
                model = onnx.version_converter.convert_version(model, MIN_OPSET)
            onnx.save(model, str(prepared))
            seconds["quant_pre_process (failed: skipped)"] = time.perf_counter() - start
            RUN_NOTES.append(
                f"quant_pre_process failed ({str(exc).splitlines()[0][:120]}): quantized without "
                "it" + (f", opset {opset} converted to {MIN_OPSET}" if opset < MIN_OPSET else "")
            )
        start = time.perf_counter()
        reader = Reader(load_arrays(data), ORT_CALIBRATION_BATCH)
        ort_quantize_static(str(prepared), str(out), reader)
        seconds["quantize_static"] = time.perf_counter() - start
    return seconds


# --- NNCF ------------------------------------------------------------------------------------


def _preload_nncf() -> None:
    # NNCF's telemetry forks helper processes that try to reach the network: off, as in CI.
    os.environ.setdefault("NNCF_CI", "1")
    import nncf  # noqa: F401


def _nncf(preset: str) -> Callable[..., StageSeconds]:
    def run(
        model: onnx.ModelProto,
        data: Path,
        out: Path,
        subset: int,
        preprocess: ImagePreprocess | None,
    ) -> StageSeconds:
        """``nncf.quantize`` on the ONNX backend; items are single samples (batch axis 1), as
        in NNCF's own examples, so ``subset_size`` counts samples like the others do."""
        import nncf

        if preprocess is not None:
            raise ValueError("the NNCF peer reads .npz calibration data only")
        arrays = load_arrays(data)
        n = len(next(iter(arrays.values())))
        items = [{k: v[i : i + 1] for k, v in arrays.items()} for i in range(n)]
        chosen = {
            "performance": nncf.QuantizationPreset.PERFORMANCE,
            "mixed": nncf.QuantizationPreset.MIXED,
        }[preset]
        quantized = nncf.quantize(
            model, nncf.Dataset(items), preset=chosen, subset_size=min(subset, n)
        )
        onnx.save(quantized, str(out))
        return {}

    return run


SETTINGS: dict[str, tuple[int, int]] = {"b1t1": (1, 1), "b8t2": (8, 2)}
"""timing setting -> (batch, threads), the two the bench times every model at"""
OPENVINO_MEASURED = "calibench-openvino-measured-"
"""Prefix of the rows of calibench's OpenVINO placement timed on OpenVINO, one per setting."""


def _calibench_quantizers() -> list[Quantizer]:
    both = ("ort", "openvino")
    out = [
        Quantizer("calibench-performance", "calibench rule (performance)", _preload_calibench,
                  _calibench(CalibenchRun("performance", placement="rule")), runtimes=both,
                  family="calibench"),
        Quantizer("calibench-mixed", "calibench rule (mixed)", _preload_calibench,
                  _calibench(CalibenchRun("mixed", placement="rule")), family="calibench"),
    ]  # fmt: skip
    for key, setting in SETTINGS.items():
        batch, threads = setting
        out.append(Quantizer(
            f"calibench-measured-{key}", f"calibench measured for b{batch}·{threads}t",
            _preload_calibench,
            _calibench(CalibenchRun("performance", placement="measured", setting=setting)),
            setting=key, family="calibench",
        ))  # fmt: skip
    out.append(Quantizer(
        "calibench-openvino", "calibench OpenVINO rule", _preload_calibench,
        _calibench(CalibenchRun("performance", placement="rule", runtime="openvino")),
        runtimes=("openvino",), family="calibench",
    ))  # fmt: skip
    for key, setting in SETTINGS.items():  # the placement for OpenVINO, timed on OpenVINO
        batch, threads = setting
        out.append(Quantizer(
            f"{OPENVINO_MEASURED}{key}", f"calibench OpenVINO measured for b{batch}·{threads}t",
            _preload_calibench,
            _calibench(CalibenchRun("performance", placement="measured", runtime="openvino",
                                    setting=setting)),
            setting=key, runtimes=("openvino",), family="calibench",
        ))  # fmt: skip
    return out


QUANTIZERS: dict[str, Quantizer] = {
    q.name: q
    for q in (
        *_calibench_quantizers(),
        Quantizer("ort", "ORT quantize_static", _preload_ort, _ort_static),
        Quantizer("nncf-performance", "NNCF performance", _preload_nncf,
                  _nncf("performance"), runtimes=("ort", "openvino")),
        Quantizer("nncf-mixed", "NNCF mixed", _preload_nncf,
                  _nncf("mixed"), runtimes=("ort", "openvino")),
    )
}  # fmt: skip
MIXED = frozenset({"calibench-mixed", "nncf-mixed"})
"""The ``mixed``-preset rows: kept on the models of the first comparison only (cost)."""


def quantize_in_subprocess(
    quantizer: str,
    model: Path,
    data: Path,
    out: Path,
    subset: int,
    preprocess: str | None = None,
    timeout_s: float = 1800,
) -> dict[str, Any]:
    """Run ``python -m bench.quantize_one`` and return its JSON, or ``{"error": ...}``."""
    args = [quantizer, str(model), str(data), str(out), "--subset", str(subset)]
    if preprocess:
        args += ["--preprocess", preprocess]
    try:
        done = python_m("bench.quantize_one", *args, timeout_s=timeout_s)
    except subprocess.TimeoutExpired:
        return {"quantizer": quantizer, "error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if lines and "not_available" in json.loads(lines[-1]):
        return dict(json.loads(lines[-1]))
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-12:]
        return {"quantizer": quantizer, "error": f"exit {done.returncode}", "log": tail}
    result: dict[str, Any] = json.loads(lines[-1])
    return result
