"""Command line for the zoo: ``python -m zoo {build,images,fashion-npz} ...``.

Lets the Makefile, CI and the demo materialise models and datasets with one command each;
every builder caches, so re-running ``build`` is cheap.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

BUILDERS = ("mobilenet_v2", "fashion_cnn", "tiny_transformer")


def _builder(name: str) -> Callable[[Path], Path]:
    """Import lazily so ``images``/``fashion-npz`` don't pay for importing every builder."""
    if name == "mobilenet_v2":
        from zoo.mobilenet_v2 import build_mobilenet_v2

        return build_mobilenet_v2
    if name == "fashion_cnn":
        from zoo.fashion import build_fashion_cnn

        return build_fashion_cnn
    from zoo.nlp import build_tiny_transformer

    return build_tiny_transformer


def _cmd_build(args: argparse.Namespace) -> None:
    out_dir: Path = args.out
    for name in args.only or BUILDERS:
        target = out_dir / f"{name}.onnx"
        cached = target.exists()
        start = time.perf_counter()
        path = _builder(name)(target)
        note = "cached" if cached else f"built in {time.perf_counter() - start:.1f} s"
        print(f"{name}: {path} ({note})", flush=True)


def _cmd_images(args: argparse.Namespace) -> None:
    from zoo.photos import write_image_folder

    paths = write_image_folder(args.dir, args.n, size=args.size, seed=args.seed)
    print(f"wrote {len(paths)} images under {args.dir}")


def _cmd_fashion_npz(args: argparse.Namespace) -> None:
    from zoo.fashion import load_fashion_mnist, to_model_input

    images, labels = load_fashion_mnist(args.split)
    n = len(images) if args.n is None else args.n
    if not 0 < n <= len(images):
        raise SystemExit(f"--n must be in 1..{len(images)} for split {args.split!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, input=to_model_input(images[:n]), labels=labels[:n])
    print(f"wrote {n} {args.split} samples to {args.out} (keys: input, labels)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build the ONNX models (cached)")
    build.add_argument("--out", type=Path, default=Path("build/models"))
    build.add_argument("--only", nargs="+", choices=BUILDERS, help="build only these models")
    build.set_defaults(func=_cmd_build)

    images = sub.add_parser("images", help="write an image-folder dataset of natural crops")
    images.add_argument("dir", type=Path)
    images.add_argument("--n", type=int, required=True)
    images.add_argument("--size", type=int, default=256)
    images.add_argument("--seed", type=int, default=0)
    images.set_defaults(func=_cmd_images)

    npz = sub.add_parser("fashion-npz", help="write Fashion-MNIST as model-ready .npz")
    npz.add_argument("out", type=Path)
    npz.add_argument("--split", choices=("train", "test"), default="test")
    npz.add_argument("--n", type=int, default=None, help="first N samples (default: all)")
    npz.set_defaults(func=_cmd_fashion_npz)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
