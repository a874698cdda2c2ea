"""Detection layouts: COCO (an instances JSON beside an image folder) and Pascal VOC.

Both become the same thing: per image, boxes ``x1, y1, x2, y2`` in original pixels and class
indices ``0..K-1``. COCO category ids are sparse (1..90 for COCO's 80 classes), so they are
mapped in id order to contiguous indices and the ids are kept (``class_ids``) for tools that
report in COCO's terms. VOC coordinates are kept as written (VOC counts pixels from 1).

Boxes that evaluation protocols leave out, COCO ``iscrowd`` and VOC ``difficult``, are kept and
flagged ``ignore`` rather than dropped, so a metric can treat them as its protocol says.
XML is parsed with the standard library's expat, which resolves no external entities and caps
entity expansion.
"""

from __future__ import annotations

import json
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from calibench.data.annotations import Task
from calibench.data.manifest import Problem
from calibench.data.scan import Candidate, Layout, Tree
from calibench.errors import DatasetError

_COCO_KEYS = ("images", "annotations", "categories")


def read_coco(tree: Tree) -> Layout | None:
    """A COCO instances JSON (searched up to three folders deep) and the images it names."""
    parsed = {rel: data for rel in tree.with_suffix(".json") if (data := _coco_json(tree, rel))}
    found = sorted(parsed)
    if not found:
        return None
    if len(found) > 1:
        preferred = [r for r in found if posixpath.basename(r).startswith("instances")]
        found = preferred if len(preferred) == 1 else found
    if len(found) > 1:
        raise DatasetError(
            f"{tree.where()}: several COCO annotation files ({', '.join(found)}); import a folder "
            "holding one split"
        )
    return _coco_layout(tree, found[0], parsed[found[0]])


def read_voc(tree: Tree) -> Layout | None:
    """A Pascal VOC folder: ``Annotations/*.xml``, ``JPEGImages/``, optional
    ``ImageSets/Main/*.txt`` split lists."""
    homes = sorted(
        {
            posixpath.dirname(posixpath.dirname(rel))
            for rel in tree.files
            if rel.lower().endswith(".xml")
            and posixpath.basename(posixpath.dirname(rel)) == "Annotations"
        }
    )
    if not homes:
        return None
    if len(homes) > 1:
        raise DatasetError(
            f"{tree.where()}: several VOC folders ({', '.join(h or '.' for h in homes)}); "
            "import one"
        )
    return _voc_layout(tree, homes[0])


def _coco_json(tree: Tree, rel: str) -> dict[str, Any] | None:
    """The parsed file when it is a COCO instances file, else ``None``."""
    try:
        data = json.loads(tree.path(rel).read_bytes())
    except (OSError, ValueError) as exc:
        if posixpath.basename(rel).startswith("instances"):
            raise DatasetError(
                f"{tree.where(rel)} is not readable JSON ({exc}); fix or remove it"
            ) from exc
        return None
    if isinstance(data, dict) and all(isinstance(data.get(k), list) for k in _COCO_KEYS):
        return data
    return None


def _coco_layout(tree: Tree, json_rel: str, data: dict[str, Any]) -> Layout:
    problems: list[Problem] = []
    categories = []
    for cat in data["categories"]:
        try:
            categories.append((int(cat["id"]), str(cat["name"])))
        except (KeyError, TypeError, ValueError):
            problems.append(Problem("bad-annotation", json_rel, f"category {cat!r:.80}"))
    categories.sort()
    index = {cid: i for i, (cid, _) in enumerate(categories)}
    if len(index) != len(categories):
        raise DatasetError(f"{tree.where(json_rel)} repeats a category id; fix the file")

    images: dict[Any, Candidate] = {}
    near = [posixpath.dirname(json_rel), posixpath.dirname(posixpath.dirname(json_rel)), tree.base]
    for image in data["images"]:
        try:
            image_id, file_name = image["id"], str(image["file_name"])
        except (KeyError, TypeError):
            problems.append(Problem("bad-annotation", json_rel, f"image {image!r:.80}"))
            continue
        rel = tree.resolve(file_name, near)
        if rel is None:
            problems.append(Problem("missing-file", file_name, f"listed in {json_rel}"))
            continue
        images[image_id] = Candidate(rel, boxes=[], box_labels=[], ignore=[], image_id=image_id)

    for ann in data["annotations"]:
        try:
            x, y, w, h = (float(v) for v in ann["bbox"])
            image_id, label = ann["image_id"], index.get(int(ann["category_id"]))
            crowd = bool(ann.get("iscrowd", 0))
        except (KeyError, TypeError, ValueError):
            problems.append(Problem("bad-annotation", json_rel, f"annotation {ann!r:.80}"))
            continue
        sample = images.get(image_id)
        if sample is None:
            continue  # its image was reported missing, or is not listed
        if label is None or w <= 0 or h <= 0:
            why = "unknown category" if label is None else "empty box"
            problems.append(Problem("bad-annotation", sample.path, f"{why}: {ann.get('id')}"))
            continue
        _add_box(sample, [x, y, x + w, y + h], label, crowd)
    classes = [name for _, name in categories]
    return Layout(
        Task.DETECTION,
        "coco",
        classes,
        list(images.values()),
        problems,
        class_ids=[cid for cid, _ in categories],
    )


def _voc_layout(tree: Tree, home: str) -> Layout:
    problems: list[Problem] = []
    annotations = posixpath.join(home, "Annotations")
    xmls = [r for r in tree.files if posixpath.dirname(r) == annotations and r.endswith(".xml")]
    parsed: list[tuple[str, str, list[tuple[str, list[float], bool]]]] = []
    stems = {posixpath.splitext(posixpath.basename(r))[0] for r in xmls}
    for xml_rel in xmls:
        try:
            file_name, objects = _parse_voc_xml(tree, xml_rel)
        except (ET.ParseError, OSError, ValueError, TypeError, AttributeError) as exc:
            problems.append(Problem("bad-annotation", xml_rel, str(exc)[:120]))
            continue
        stem = posixpath.splitext(posixpath.basename(xml_rel))[0]
        jpegs = posixpath.join(home, "JPEGImages")
        rel = tree.resolve(file_name or stem + ".jpg", [jpegs, home])
        if rel is None:
            problems.append(Problem("missing-file", posixpath.join(jpegs, file_name), xml_rel))
            continue
        parsed.append((stem, rel, objects))

    classes = sorted({name for _, _, objects in parsed for name, _, _ in objects})
    index = {name: i for i, name in enumerate(classes)}
    splits = _voc_splits(tree, home, stems, problems)
    samples = []
    for stem, rel, objects in parsed:
        sample = Candidate(rel, boxes=[], box_labels=[], ignore=[], image_id=stem)
        sample.splits = tuple(sorted(name for name, ids in splits.items() if stem in ids))
        for name, box, difficult in objects:
            _add_box(sample, box, index[name], difficult)
        samples.append(sample)
    return Layout(Task.DETECTION, "voc", classes, samples, problems)


def _parse_voc_xml(tree: Tree, rel: str) -> tuple[str, list[tuple[str, list[float], bool]]]:
    root = ET.fromstring(tree.path(rel).read_bytes())
    file_name = (root.findtext("filename") or "").strip()
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise ValueError("an <object> has no <name> or <bndbox>")
        coords = [float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
        if not coords[0] < coords[2] or not coords[1] < coords[3]:
            raise ValueError(f"object {name!r} has an empty or invalid box {coords}")
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        objects.append((name, coords, difficult))
    return file_name, objects


def _voc_splits(
    tree: Tree, home: str, known: set[str], problems: list[Problem]
) -> dict[str, set[str]]:
    """The split lists (``train.txt``, ``val.txt``, …; not the per-class ``cat_val.txt``)."""
    folder = posixpath.join(home, "ImageSets", "Main")
    splits: dict[str, set[str]] = {}
    for rel in tree.files:
        name = posixpath.basename(rel)
        if posixpath.dirname(rel) != folder or not name.endswith(".txt") or "_" in name:
            continue
        text = tree.path(rel).read_text(encoding="utf-8", errors="replace")
        ids = {line.split()[0] for line in text.splitlines() if line.strip()}
        splits[name[: -len(".txt")]] = ids
        problems += [
            Problem("missing-file", posixpath.join(home, "Annotations", i + ".xml"), f"in {rel}")
            for i in sorted(ids - known)
        ]
    return splits


def _add_box(sample: Candidate, box: Sequence[float], label: int, ignore: bool) -> None:
    assert sample.boxes is not None and sample.box_labels is not None and sample.ignore is not None
    sample.boxes.append([float(v) for v in box])
    sample.box_labels.append(label)
    sample.ignore.append(ignore)
