"""Run one quantizer in this (fresh) process and print one JSON line: time and peak memory.

``python -m bench.quantize_one <quantizer> <model.onnx> <data.npz|image-folder> <out.onnx>``

Memory is the process's resident-set high-water mark, read from ``/proc/self/status``
(``VmHWM``). ``rss_baseline_mb`` is the resident set after the quantizer's imports and loading
the FP32 model; the high-water mark is then reset (``/proc/self/clear_refs``, "5") so that
``rss_peak_mb`` is the peak *during* calibration and ``rss_delta_mb`` = peak − baseline is what
calibration itself cost. ``rss_import_peak_mb`` is the high-water mark before the reset.

Why not ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux it keeps the maximum of the process
image replaced by ``exec``, and a child started by ``subprocess`` (vfork + exec) inherits its
*parent's* peak that way, so the orchestrator's own memory would leak into every reading. It is
still recorded (``ru_maxrss_mb``) for reference.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import onnx

from bench._proc import maxrss_mb, reset_peak, status_mb
from bench.peers import QUANTIZERS, RUN_NOTES, NotAvailable

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
PREPROCESS = {"imagenet": IMAGENET}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quantize_one", description=__doc__)
    parser.add_argument("quantizer", choices=sorted(QUANTIZERS))
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path, help=".npz (one array per input) or image folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--subset", type=int, default=300)
    parser.add_argument(
        "--preprocess",
        choices=sorted(PREPROCESS),
        help="image preprocessing for an image-folder dataset (calibench only)",
    )
    args = parser.parse_args(argv)

    quantizer = QUANTIZERS[args.quantizer]
    start = time.perf_counter()
    quantizer.preload()
    model = onnx.load(str(args.model))
    setup_seconds = time.perf_counter() - start
    import_peak = status_mb("VmHWM")
    baseline = status_mb("VmRSS")
    reset = reset_peak()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        stages = quantizer.run(
            model,
            args.data,
            args.out,
            args.subset,
            dict(PREPROCESS[args.preprocess]) if args.preprocess else None,
        )
    except NotAvailable as exc:
        reason = f"not available: {exc}"
        print(json.dumps({"quantizer": args.quantizer, "error": reason, "not_available": True}))
        raise SystemExit(3) from None
    seconds = time.perf_counter() - start
    peak = status_mb("VmHWM")

    print(json.dumps({
        "quantizer": args.quantizer,
        "seconds": round(seconds, 3),
        "stages": {k: round(v, 3) for k, v in stages.items()},
        "notes": RUN_NOTES,
        "setup_seconds": round(setup_seconds, 3),
        "rss_baseline_mb": round(baseline, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_delta_mb": round(peak - baseline, 1),
        "rss_import_peak_mb": round(import_peak, 1),
        "peak_reset": reset,
        "ru_maxrss_mb": round(maxrss_mb(), 1),
        "children_ru_maxrss_mb": round(maxrss_mb(resource.RUSAGE_CHILDREN), 1),
        "output": str(args.out),
        "size_mb": round(args.out.stat().st_size / 1e6, 3),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
