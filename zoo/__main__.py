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


def _cmd_fashion_folder(args: argparse.Namespace) -> None:
    from zoo.fashion_folder import write_fashion_imagenet_folder

    path = write_fashion_imagenet_folder(args.out, args.split, args.per_class)
    print(f"wrote Fashion-MNIST {args.split} as class folders under {path}")


def _cmd_text_coco(args: argparse.Namespace) -> None:
    from zoo.text_detection import write_text_coco

    path = write_text_coco(args.out, args.n, seed=args.seed)
    print(f"wrote {args.n} images of characters with COCO boxes ({path})")


def _cmd_text_npz(args: argparse.Namespace) -> None:
    from zoo.ocr_text import write_text_npz

    path = write_text_npz(args.out, args.n, seed=args.seed)
    print(f"wrote {args.n} text lines with their texts as labels to {path} (keys: input1, labels)")


def _cmd_workbench_files(args: argparse.Namespace) -> None:
    """What a person uploads on the workbench's pages to try the whole flow."""
    import shutil
    import tempfile

    from zoo.fashion import build_fashion_cnn
    from zoo.fashion_folder import write_fashion_imagenet_folder
    from zoo.nlp import build_tiny_transformer
    from zoo.photos import write_image_folder

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    # Shared with the tests' cache, so the CNN is trained once per checkout.
    model = build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))
    shutil.copy(model, out / "fashion_cnn.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_fashion_imagenet_folder(root / "fashion-test", "test", 100)
        write_fashion_imagenet_folder(root / "fashion-calibration", "train", 30)
        # One flat folder: two sub-folders would read as two classes.
        (root / "photos").mkdir()
        for path in write_image_folder(root / "crops", 64, size=96):
            shutil.move(str(path), root / "photos" / path.name)
        shutil.make_archive(str(out / "fashion-test"), "gztar", root, "fashion-test")
        shutil.make_archive(str(out / "fashion-calibration"), "zip", root, "fashion-calibration")
        shutil.make_archive(str(out / "photos-not-annotated"), "zip", root, "photos")
    build_tiny_transformer(out / "tiny_transformer_nlp.onnx")
    for path in sorted(out.iterdir()):
        print(f"  {path}  ({path.stat().st_size / 1e6:.1f} MB)")


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

    folder = sub.add_parser("fashion-folder", help="write Fashion-MNIST as class folders")
    folder.add_argument("out", type=Path)
    folder.add_argument("--split", choices=["train", "test"], default="test")
    folder.add_argument("--per-class", type=int, help="images per class (default: all)")
    folder.set_defaults(func=_cmd_fashion_folder)

    text = sub.add_parser("text-coco", help="write rendered characters as a COCO dataset")
    text.add_argument("out", type=Path)
    text.add_argument("--n", type=int, default=40)
    text.add_argument("--seed", type=int, default=0)
    text.set_defaults(func=_cmd_text_coco)

    lines = sub.add_parser("text-npz", help="write rendered text lines and their texts (.npz)")
    lines.add_argument("out", type=Path)
    lines.add_argument("--n", type=int, default=40)
    lines.add_argument("--seed", type=int, default=0)
    lines.set_defaults(func=_cmd_text_npz)

    npz = sub.add_parser("fashion-npz", help="write Fashion-MNIST as model-ready .npz")
    npz.add_argument("out", type=Path)
    npz.add_argument("--split", choices=("train", "test"), default="test")
    npz.add_argument("--n", type=int, default=None, help="first N samples (default: all)")
    npz.set_defaults(func=_cmd_fashion_npz)

    files = sub.add_parser(
        "workbench-files", help="write a model and dataset archives to upload on the workbench"
    )
    files.add_argument("out", type=Path, nargs="?", default=Path("build/workbench"))
    files.set_defaults(func=_cmd_workbench_files)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
