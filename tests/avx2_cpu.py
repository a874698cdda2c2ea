"""Run ONNX Runtime as it runs on a CPU without VNNI, on any x86 machine.

``qemu-x86_64 -cpu Haswell`` (Debian's qemu-user) runs this same Python with CPUID saying AVX2
and no AVX-512 or VNNI, so ONNX Runtime picks its real AVX2 kernels, saturation included. The
results are exact; the timing is not (the CPU is emulated), so only accuracy is measured here.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

QEMU = shutil.which("qemu-x86_64")

RUNNER = """
import sys, numpy as np, onnxruntime as ort
data = dict(np.load(sys.argv[2]))
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.log_severity_level = 3
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
names = [i.name for i in session.get_inputs()]
n = len(data[names[0]])
outs = [session.run(None, {k: data[k][i:i + 8] for k in names}) for i in range(0, n, 8)]
np.savez(sys.argv[3], *[np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))])
"""


def avx2_available() -> bool:
    return QEMU is not None and platform.machine() == "x86_64"


needs_avx2_cpu = pytest.mark.skipif(
    not avx2_available(), reason="needs qemu-x86_64 (Debian qemu-user) on an x86_64 machine"
)


def run_on_avx2(model: Path, inputs: dict[str, np.ndarray], work: Path) -> list[np.ndarray]:
    """The model's outputs computed by ONNX Runtime's AVX2 (no VNNI) kernels."""
    assert QEMU is not None
    work.mkdir(parents=True, exist_ok=True)
    feeds, out = work / f"{model.stem}-in.npz", work / f"{model.stem}-out.npz"
    np.savez(feeds, **inputs)  # type: ignore[arg-type]
    subprocess.run(
        [QEMU, "-cpu", "Haswell", sys.executable, "-c", RUNNER, str(model), str(feeds), str(out)],
        check=True,
        stderr=subprocess.DEVNULL,
        timeout=900,
    )
    loaded = np.load(out)
    return [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
