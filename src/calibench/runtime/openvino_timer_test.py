"""OvTimer on a real model: the Fashion-MNIST CNN in FP32 and quantized for OpenVINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import calibench
from calibench.runtime.openvino_timer import OvTimer
from calibench.runtime.profiling import BUCKETS
from calibench.runtime.timer import CONVERT, MIN_RUNS, tensor_of

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[onnx.ModelProto, onnx.ModelProto, np.ndarray]:
    """The FP32 CNN, its INT8 model for OpenVINO (rule placement) and one real image."""
    from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input

    path = build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))
    images, _ = load_fashion_mnist("train")
    data = tmp_path_factory.mktemp("ovtimer") / "cal.npz"
    np.savez(data, input=to_model_input(images[:32]))
    int8 = calibench.calibrate(path, data, threads=1, placement="rule", runtime="openvino")
    return onnx.load(str(path)), int8.model, to_model_input(images[:1])


def test_parts_are_the_onnx_layers_and_quantizers_in_every_run(models) -> None:
    fp32, int8, image = models
    timer = OvTimer({"input": image}, batch=1, threads=1)
    fp32_parts, int8_parts = timer.parts([fp32, int8], runs=8)
    for model, parts in ((fp32, fp32_parts), (int8, int8_parts)):
        nodes = {n.name: n.op_type for n in model.graph.node}
        assert all(len(v) == 8 and (v >= 0).all() for v in parts.values())
        for key in parts:
            if key.startswith(CONVERT):
                # named after its ONNX Q/DQ node, so that the tensor it converts is known
                assert nodes[key[len(CONVERT) :]] in ("QuantizeLinear", "DequantizeLinear")
                assert tensor_of(key) in {o for n in model.graph.node for o in n.output} | {
                    i.name for i in model.graph.input
                }
            else:
                assert key in nodes or key in BUCKETS, key
        convs = [n for n, op in nodes.items() if op == "Conv"]
        assert len(convs) == 7 and all(parts[c].sum() > 0 for c in convs)
        assert "/head/Gemm" in parts
    # The input is quantized by a kernel of its own: a conversion of the normalised input.
    assert any(k.startswith(CONVERT) and tensor_of(k) == "/Div_output_0" for k in int8_parts)


def test_parts_add_up_to_about_a_whole_run(models) -> None:
    fp32, int8, image = models
    timer = OvTimer({"input": image}, batch=1, threads=1)
    # Kernel time is most of a run; the rest is the call from Python. The profiled runs take a
    # few milliseconds in all, which one stall of a busy machine can cover, so the check gets
    # three tries and a wide band: it catches a wrong unit (×1000) or lost runs, not noise.
    for _ in range(3):
        parts = timer.parts([fp32, int8], runs=30)
        whole = timer.interleaved({"fp32": fp32, "int8": int8}, budget_s=0.3)
        ratios = [
            sum(float(np.median(v)) for v in model_parts.values()) / whole.latency(name).median_ms
            for name, model_parts in zip(("fp32", "int8"), parts, strict=True)
        ]
        if all(0.05 < r < 5 for r in ratios):
            break
    assert all(0.05 < r < 5 for r in ratios), ratios


def test_interleaved_times_whole_runs_and_the_budget_cuts_runs(models) -> None:
    fp32, int8, image = models
    timer = OvTimer({"input": np.repeat(image, 2, axis=0)}, batch=2, threads=1)
    result = timer.interleaved({"a": fp32, "b": int8}, budget_s=0.1)
    assert result.rounds >= 7 and result.latency("a").median_ms > 0
    assert result.paired_speedup("a", "b") > 0
    (cut,) = timer.parts([int8], runs=1000, budget_s=0.0)
    assert {len(v) for v in cut.values()} == {MIN_RUNS}


def test_a_model_timed_again_is_not_compiled_again(models, monkeypatch) -> None:
    fp32, int8, image = models
    timer = OvTimer({"input": image}, batch=1, threads=1)
    compiled: list[bool] = []
    real = timer._compile

    def counted(model: onnx.ModelProto, perf_count: bool) -> object:
        compiled.append(perf_count)
        return real(model, perf_count)

    monkeypatch.setattr(timer, "_compile", counted)
    timer.parts([fp32, int8], runs=1)
    again = onnx.ModelProto()
    again.CopyFrom(int8)  # the same model, another object: as placement builds it again
    timer.parts([again, fp32], runs=1)
    assert compiled == [True, True]
    timer.release()  # placement is done: the compiled models are freed, a later call compiles
    timer.parts([int8], runs=1)
    assert compiled == [True, True, True]
