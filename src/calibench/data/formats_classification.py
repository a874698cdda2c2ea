"""Classification layouts (class folders, a labels file) and plain image folders.

Class folders follow torchvision's ``ImageFolder``: every visible first-level folder is a class,
classes in sorted name order, so the indices match a model trained on the same tree. A labels
file (``relative/path label`` per line, as ImageNet's ``val.txt``) is explicit and wins over
folders when both are present.
"""

from __future__ import annotations

import posixpath
import re

from calibench.data.annotations import Task
from calibench.data.manifest import Problem
from calibench.data.scan import Candidate, Layout, Tree, is_image_name
from calibench.errors import DatasetError

_INT = re.compile(r"^-?\d+$")
_CLASS_FILE_HINTS = ("class", "name", "synset", "categor", "label", "words")
_LABELS_FILE_SHARE = 0.8
"""A text file is a labels file when this share of its lines are ``image-path label``."""


def read_class_folders(tree: Tree, *, loose_images: bool = False) -> Layout | None:
    """One sub-folder of ``base`` per class; ``None`` when the tree is not laid out so.

    Images beside the class folders make the layout ambiguous, so it is not recognised then,
    unless ``loose_images`` (the user said it is a classification dataset): they are then
    listed as unlabelled."""
    top_images = [f for f in tree.images if tree.depth(f) == 0]
    by_class: dict[str, list[str]] = {}
    for rel in tree.images:
        if tree.depth(rel) > 0:
            by_class.setdefault(tree.inner(rel).split("/")[0], []).append(rel)
    if (top_images and not loose_images) or len(by_class) < 2:
        return None
    folders = {tree.inner(f).split("/")[0] for f in tree.files if tree.depth(f) > 0}
    folders |= _empty_folders(tree)
    classes = sorted(folders)
    problems = [
        Problem("empty-class", posixpath.join(tree.base, c), "class folder without images")
        for c in classes
        if c not in by_class
    ]
    problems += [Problem("unlabelled-image", rel, "not in a class folder") for rel in top_images]
    samples = [
        Candidate(rel, label=index)
        for index, name in enumerate(classes)
        for rel in by_class.get(name, [])
    ]
    return Layout(Task.CLASSIFICATION, "class-folders", classes, samples, problems)


def read_labels_file(tree: Tree) -> Layout | None:
    """Images listed in a ``path label`` text file, with an optional class-names file."""
    texts = {rel: _lines(tree, rel) for rel in tree.with_suffix(".txt", max_depth=2)}
    labels_files = [rel for rel, lines in texts.items() if _looks_like_labels(lines)]
    if not labels_files:
        return None
    if len(labels_files) > 1:
        raise DatasetError(
            f"{tree.where()}: several labels files ({', '.join(labels_files)}); import a folder "
            "holding only one of them"
        )
    labels_rel = labels_files[0]
    names_files = [
        rel
        for rel, lines in texts.items()
        if rel != labels_rel
        and any(h in posixpath.basename(rel).lower() for h in _CLASS_FILE_HINTS)
        and lines
        and not any(_image_pair(line) for line in lines)
    ]
    if len(names_files) > 1:
        raise DatasetError(
            f"{tree.where()}: several class-name files ({', '.join(names_files)}); keep only one"
        )
    names = texts[names_files[0]] if names_files else None
    return _labelled_samples(tree, labels_rel, texts[labels_rel], names)


def read_images(tree: Tree) -> Layout | None:
    """Every image, without annotations."""
    if not tree.images:
        return None
    return Layout(Task.NOT_ANNOTATED, "images", [], [Candidate(rel) for rel in tree.images])


def _labelled_samples(
    tree: Tree, labels_rel: str, lines: list[str], names: list[str] | None
) -> Layout:
    problems: list[Problem] = []
    near = [posixpath.dirname(labels_rel), tree.base]
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        pair = _image_pair(line)
        if pair is None:
            problems.append(Problem("bad-line", labels_rel, f"line {number}: {line[:80]!r}"))
            continue
        ref, token = pair
        rel = tree.resolve(ref, near)
        if rel is None:
            problems.append(Problem("missing-file", ref, f"listed in {labels_rel}"))
        elif rel in seen:
            problems.append(Problem("duplicate-label", rel, f"{labels_rel} line {number}"))
        else:
            seen.add(rel)
            rows.append((rel, token))
    classes, index_of = _classes(names, [token for _, token in rows])
    samples: list[Candidate] = []
    for rel, token in rows:
        label = index_of(token)
        if label is None:
            problems.append(Problem("unknown-label", rel, f"label {token!r} is not a class"))
        else:
            samples.append(Candidate(rel, label=label))
    problems += [
        Problem("unlabelled-image", rel, f"not in {labels_rel}")
        for rel in tree.images
        if rel not in seen
    ]
    return Layout(Task.CLASSIFICATION, "labels-file", classes, samples, problems)


def _classes(names: list[str] | None, tokens: list[str]) -> tuple[list[str], _IndexOf]:
    """Class names and a token → index function: names from the file when there is one,
    else ``0..max`` for integer labels, else the sorted label names."""
    if names is not None:
        by_name = {n: i for i, n in enumerate(names)}
        return names, _IndexOf(by_name, len(names))
    if all(_INT.match(t) for t in tokens):
        top = max((int(t) for t in tokens), default=-1)
        return [str(i) for i in range(top + 1)], _IndexOf({}, top + 1)
    classes = sorted(set(tokens))
    return classes, _IndexOf({n: i for i, n in enumerate(classes)}, 0)


class _IndexOf:
    """A label token's class index: a class name first, then an integer below ``count``."""

    def __init__(self, by_name: dict[str, int], count: int) -> None:
        self.by_name, self.count = by_name, count

    def __call__(self, token: str) -> int | None:
        if token in self.by_name:
            return self.by_name[token]
        if _INT.match(token) and 0 <= int(token) < self.count:
            return int(token)
        return None


def _lines(tree: Tree, rel: str) -> list[str]:
    try:
        text = tree.path(rel).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"cannot read {tree.where(rel)} ({exc})") from exc
    return [s for s in (line.strip() for line in text.splitlines()) if s and s[0] != "#"]


def _image_pair(line: str) -> tuple[str, str] | None:
    parts = line.rsplit(maxsplit=1)
    if len(parts) == 2 and is_image_name(parts[0]):
        return parts[0], parts[1]
    return None


def _looks_like_labels(lines: list[str]) -> bool:
    good = sum(_image_pair(line) is not None for line in lines)
    return good > 0 and good >= _LABELS_FILE_SHARE * len(lines)


def _empty_folders(tree: Tree) -> set[str]:
    """First-level visible folders holding no files at all (still classes, as torchvision
    counts them)."""
    root = tree.path(tree.base) if tree.base else tree.root
    return {
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name != "__MACOSX"
        and not any(p.iterdir())
    }
