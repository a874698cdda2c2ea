"""Dataset import: a folder or archive becomes ``root/<name>/`` with a checked manifest.

Import copies (or safely unpacks) the source, recognises its layout, opens every image once and
records the outcome in ``calibench-dataset.json``. Bad images and unmatched annotations are
skipped and listed as problems rather than failing the import, since real datasets always have a
few; an import left with no sample at all is an error. The whole import is built in a hidden
sibling folder and renamed into place at the end, so a failure leaves nothing behind.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from calibench.data.annotations import Task
from calibench.data.archive import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    archive_stem,
    is_archive,
    unpack_into,
)
from calibench.data.formats_classification import read_class_folders, read_images, read_labels_file
from calibench.data.formats_detection import read_coco, read_voc
from calibench.data.formats_tensors import read_npz
from calibench.data.import_result import ImportResult
from calibench.data.manifest import Manifest, Problem, write_manifest
from calibench.data.scan import Candidate, Layout, Tree
from calibench.data.staging import staged_folder
from calibench.errors import DatasetError

__all__ = ["FORMATS", "KINDS", "ImportResult", "import_dataset"]

Reader = Callable[[Tree], Layout | None]
Progress = Callable[[int, int], None]

FORMATS: dict[str, Reader] = {
    "coco": read_coco,
    "voc": read_voc,
    "labels-file": read_labels_file,
    "class-folders": read_class_folders,
    "npz": read_npz,
    "images": read_images,
}
"""Every layout import recognises, in the order auto-detection tries them."""

KINDS: dict[str, tuple[str, ...]] = {
    Task.CLASSIFICATION.value: ("labels-file", "class-folders"),
    Task.DETECTION.value: ("coco", "voc"),
    Task.NOT_ANNOTATED.value: ("images",),
    Task.TENSORS.value: ("npz",),
    **{name: (name,) for name in FORMATS},
}
"""What ``kind=`` accepts: a task (its layouts are tried) or one layout's name."""

_EXPECTED = {
    "coco": "a COCO instances JSON (images, annotations, categories)",
    "voc": "a Pascal VOC folder (Annotations/*.xml, JPEGImages/)",
    "labels-file": "a text file of 'image-path label' lines",
    "class-folders": "one sub-folder of images per class (at least two)",
    "npz": "an .npz file",
    "images": "jpg, png or bmp images",
}
_BAD_NAME = re.compile(r"[/\\\x00]")


def import_dataset(
    source: Path,
    root: Path,
    name: str | None = None,
    kind: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    progress: Progress | None = None,
) -> ImportResult:
    """Import ``source`` (a folder, a .zip/.tar/.tar.gz/.tgz archive or an .npz file) into
    ``root/<name>/``; ``name`` defaults to the source's name without suffix, ``kind`` (a task
    or a layout name, see :data:`KINDS`) skips detection. ``max_bytes``/``max_files`` limit
    what an archive may unpack; ``progress(done, total)`` follows the image checks."""
    source, root = Path(source), Path(root)
    formats = _formats_for(kind)
    if not source.exists():
        raise DatasetError(f"dataset source not found: {source}")
    name = _check_name(name if name is not None else _default_name(source))
    target = root / name
    if target.exists():
        raise DatasetError(
            f"{root} already holds a dataset named {name!r}; import under another name or "
            f"delete {target} first"
        )
    if source.is_dir():
        _refuse_nested(source, root)
    elif not (is_archive(source) or source.suffix.lower() == ".npz"):
        raise DatasetError(
            f"{source}: import takes a folder, a .zip/.tar/.tar.gz/.tgz archive or an .npz file"
        )
    with staged_folder(target) as staging:
        if source.is_dir():
            _copy_folder(source, staging)
        elif is_archive(source):
            unpack_into(source, staging, max_bytes=max_bytes, max_files=max_files)
        else:
            _copy_file(source, staging / source.name)
        manifest = _build_manifest(staging, formats, name, source, kind, progress)
        write_manifest(staging, manifest)
    return ImportResult.from_manifest(target, manifest)


def _build_manifest(
    folder: Path,
    formats: tuple[str, ...],
    name: str,
    source: Path,
    kind: str | None,
    progress: Progress | None,
) -> Manifest:
    shown = source.parent if source.is_file() and not is_archive(source) else source
    tree = Tree.scan(folder, display=str(shown))
    layout = _detect(tree, formats, source, kind)
    problems = list(layout.problems)
    problems += [
        Problem("unreadable-name", bad, "the name is not valid UTF-8; rename it")
        for bad in tree.bad_names
    ]
    samples: list[dict[str, object]] = []
    sizes: list[tuple[int, int]] = []
    splits: dict[str, list[int]] = {}
    if layout.task is Task.TENSORS:
        samples = [{} if c.label is None else {"label": c.label} for c in layout.samples]
    else:
        for done, candidate in enumerate(layout.samples, 1):
            size = _probe(tree.path(candidate.path))
            if isinstance(size, str):
                problems.append(Problem("unreadable-image", candidate.path, size))
            else:
                for split in candidate.splits:
                    splits.setdefault(split, []).append(len(samples))
                samples.append(_sample_json(candidate, size))
                sizes.append(size)
            if progress is not None:
                progress(done, len(layout.samples))
    if not samples:
        kinds = ", ".join(sorted({p.kind for p in problems})) or "nothing to read"
        raise DatasetError(
            f"{source}: no usable sample was left ({len(problems)} problems: {kinds}); "
            "nothing was imported"
        )
    image_size = None
    if sizes:
        image_size = {
            "min": [min(h for h, _ in sizes), min(w for _, w in sizes)],
            "max": [max(h for h, _ in sizes), max(w for _, w in sizes)],
        }
    return Manifest(
        name=name,
        task=layout.task,
        format=layout.format,
        classes=layout.classes,
        samples=samples,
        problems=problems,
        source=str(source.resolve()),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        class_ids=layout.class_ids,
        image_size=image_size,
        npz=layout.extra.get("npz"),
        arrays=layout.extra.get("arrays"),
        splits=splits or None,
        labels=layout.extra.get("labels"),
    )


def _detect(tree: Tree, formats: tuple[str, ...], source: Path, kind: str | None) -> Layout:
    for fmt in formats:
        if fmt == "npz":
            layout = read_npz(tree, beside_images=kind is not None)
        elif fmt == "class-folders":
            layout = read_class_folders(tree, loose_images=kind is not None)
        else:
            layout = FORMATS[fmt](tree)
        if layout is not None:
            return layout
    wanted = "; or ".join(_EXPECTED[f] for f in formats)
    what = f"a {kind} dataset" if kind else "a dataset"
    raise DatasetError(f"{source} does not look like {what}: found no {wanted}")


def _probe(path: Path) -> tuple[int, int] | str:
    """``(height, width)`` of a fully decodable image, else why it is not one."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.draft("RGB", (1, 1))  # JPEG decodes at 1/8 scale; still reads every byte
            image.load()
    except Exception as exc:  # PIL raises many types on bad data: each is a problem, not a crash
        return f"{type(exc).__name__}: {exc}"[:200]
    return height, width


def _sample_json(candidate: Candidate, size: tuple[int, int]) -> dict[str, object]:
    sample: dict[str, object] = {"path": candidate.path, "height": size[0], "width": size[1]}
    if candidate.label is not None:
        sample["label"] = candidate.label
    if candidate.boxes is not None:
        sample["boxes"] = [[round(v, 3) for v in box] for box in candidate.boxes]
        sample["labels"] = candidate.box_labels or []
        if candidate.ignore and any(candidate.ignore):
            sample["ignore"] = candidate.ignore
    if candidate.image_id is not None:
        sample["id"] = candidate.image_id
    return sample


def _formats_for(kind: str | None) -> tuple[str, ...]:
    if kind is None:
        return tuple(FORMATS)
    if kind not in KINDS:
        raise DatasetError(f"unknown dataset type {kind!r}; use one of {', '.join(KINDS)}")
    return KINDS[kind]


def _default_name(source: Path) -> str:
    if source.is_dir():
        return source.resolve().name
    return archive_stem(source) if is_archive(source) else source.stem


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or name.startswith(".") or _BAD_NAME.search(name) or len(name) > 200:
        raise DatasetError(
            f"{name!r} cannot name a dataset folder; use a name without '/', '\\' or a leading '.'"
        )
    return name


def _refuse_nested(source: Path, root: Path) -> None:
    inner, outer = root.resolve(), source.resolve()
    if inner == outer or outer in inner.parents:
        raise DatasetError(
            f"{root} lies inside the source {source}; keep imported datasets outside it"
        )


def _copy_folder(source: Path, dest: Path) -> None:
    """Copy the visible content (no ``.git``, ``.DS_Store``, …); links are followed."""
    hidden = shutil.ignore_patterns(".*", "__MACOSX")
    try:
        shutil.copytree(
            source, dest, ignore=hidden, dirs_exist_ok=True, ignore_dangling_symlinks=True
        )
    except (shutil.Error, OSError) as exc:
        raise DatasetError(
            f"cannot copy {source} ({str(exc)[:200]}); check it is readable"
        ) from exc


def _copy_file(source: Path, dest: Path) -> None:
    try:
        shutil.copyfile(source, dest)
    except OSError as exc:
        raise DatasetError(f"cannot copy {source} ({exc}); check it is readable") from exc
