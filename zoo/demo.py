"""``make demo``: calibrate the real MobileNetV2 and show what INT8 gained and lost.

Builds MobileNetV2 with torchvision's ImageNet weights, writes natural-photo crops as an image
folder, runs ``calibench calibrate`` exactly as a user would, then times FP32 against INT8
(batch 1, one thread, interleaved) and measures top-1 agreement on held-out crops.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np

from calibench.data.images import ImageFolder
from calibench.data.preprocess import Preprocess
from calibench.runtime.latency import block_turn, interleaved
from calibench.runtime.session import make_session
from zoo.mobilenet_v2 import build_mobilenet_v2
from zoo.photos import write_image_folder

OUT = Path("build/demo")
PREPROCESS = [
    "--resize",
    "256",
    "--crop",
    "224",
    "--mean",
    "0.485,0.456,0.406",
    "--std",
    "0.229,0.224,0.225",
]


def main() -> None:
    model = build_mobilenet_v2(OUT / "mobilenet_v2.onnx")
    calibration = OUT / "calibration-images"
    held_out = OUT / "held-out-images"
    if not calibration.exists():
        write_image_folder(calibration, 300, size=256, seed=0)
    if not held_out.exists():
        write_image_folder(held_out, 500, size=256, seed=1)
    int8 = OUT / "mobilenet_v2-int8.onnx"
    command = [
        "calibench",
        "calibrate",
        str(model),
        "--dataset",
        str(calibration),
        "--subset",
        "100%",
        "--preset",
        "performance",
        *PREPROCESS,
        "-o",
        str(int8),
        "--report",
        str(OUT / "report.json"),
        "--save-preprocess",
        str(OUT / "preprocess.json"),
    ]
    print("$ " + " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", "calibench.cli", *command[1:]], check=True)

    images = ImageFolder(held_out)
    images.bind(
        "input",
        Preprocess(
            resize=256, crop=(224, 224), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
        ),
    )
    batch = np.stack([images[i]["input"] for i in range(len(images))])  # type: ignore[index]
    fp32, quant = make_session(model), make_session(int8)
    ref = np.concatenate(
        [fp32.run(None, {"input": batch[i : i + 50]})[0] for i in range(0, len(batch), 50)]
    )
    got = np.concatenate(
        [quant.run(None, {"input": batch[i : i + 50]})[0] for i in range(0, len(batch), 50)]
    )
    agreement = float((ref.argmax(1) == got.argmax(1)).mean())
    sessions = {"FP32": make_session(model, threads=1), "INT8": make_session(int8, threads=1)}
    feeds = {"input": batch[:1]}
    timed = interleaved(
        {name: block_turn(partial(s.run, None, feeds)) for name, s in sessions.items()},
        min_rounds=100,
        warmup=10,
    )
    latency = {name: timed.latency(name) for name in sessions}
    size_fp32, size_int8 = model.stat().st_size / 1e6, int8.stat().st_size / 1e6
    print()
    print("MobileNetV2 (ImageNet weights), ONNX Runtime CPU, batch 1, 1 thread")
    print(f"  FP32 latency  {latency['FP32'].median_ms:7.2f} ms   size {size_fp32:5.1f} MB")
    print(f"  INT8 latency  {latency['INT8'].median_ms:7.2f} ms   size {size_int8:5.1f} MB")
    print(f"  speed-up      {latency['FP32'].median_ms / latency['INT8'].median_ms:7.2f}×")
    print(f"  top-1 agreement with FP32 on {len(batch)} held-out photo crops: {agreement:.1%}")
    report = json.loads((OUT / "report.json").read_text())
    print(f"  calibrated for {report['isa']['label']}; this CPU: {report['isa']['host']}")


if __name__ == "__main__":
    main()
