"""The wheels a target installs, made on this host without any network.

A target has no internet, and this host may not either, so the wheels come from what is
installed here: calibench and the closure of its runtime requirements (its ``dependencies``,
never the dev extras, so never torch). Each installed distribution is packed back into a wheel
from its RECORD (the files pip installed, with its own WHEEL tags); scripts in ``bin/`` are left
out, since the installer on the target writes them again from ``entry_points.txt``. calibench
itself, when it runs from a source tree (an editable install, or ``PYTHONPATH``), is built by
``pip wheel --no-build-isolation --no-index`` from that tree, so the target gets the code that
runs here.

Measured on the development host (2 cores, 45 wheels, 85 MB): packing takes 9 s once, then
1 s (the cache in the workspace, calibench rebuilt). ``pip download`` of the same pins took
2.4 s, but only with an index to download from; ``pip wheel --no-index`` from pip's cache finds
nothing when that cache is empty, as it was there. Packing needs nothing but the disk.

Every wheel is reproducible (sorted entries, fixed timestamps, ``SOURCE_DATE_EPOCH``), so the
same files give the same sha256: uploads and the target's "still valid" check go by that hash.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from calibench._files import replacing, write_text_atomic
from calibench.errors import TargetError
from calibench.workflow.cache import file_digest

EPOCH = (1980, 1, 1, 0, 0, 0)
SOURCE_DATE_EPOCH = "315532800"
"""1980-01-01, the earliest date a zip can hold."""
_SKIPPED_INFO = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    filename: str
    sha256: str
    size: int


def _wanted(requirement: Requirement, extras: Iterable[str]) -> bool:
    if requirement.marker is None:
        return True
    for extra in ("", *extras):
        try:
            if requirement.marker.evaluate({"extra": extra}):
                return True
        except UndefinedEnvironmentName:
            continue
    return False


def runtime_closure(requirements: list[str]) -> list[metadata.Distribution]:
    """The installed distributions that ``requirements`` pull in, transitively (markers
    evaluated for this Python, extras followed)."""
    found: dict[str, metadata.Distribution] = {}
    extras_of: dict[str, set[str]] = {}
    todo: list[tuple[Requirement, tuple[str, ...]]] = [(Requirement(r), ()) for r in requirements]
    while todo:
        requirement, parent_extras = todo.pop()
        if not _wanted(requirement, parent_extras):
            continue
        key = canonicalize_name(requirement.name)
        extras = set(requirement.extras)
        if key in found and extras <= extras_of[key]:
            continue
        try:
            dist = found.get(key) or metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise TargetError(
                f"{requirement.name} (needed by calibench) is not installed here, so it cannot "
                "be sent to a target"
            ) from None
        found[key] = dist
        extras_of.setdefault(key, set()).update(extras)
        for text in dist.requires or []:
            todo.append((Requirement(text), tuple(extras_of[key])))
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def wheel_requirements(wheel: Path) -> list[str]:
    """The Requires-Dist of a wheel (a source tree's dependencies, as built)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = email.parser.BytesParser().parsebytes(archive.read(name))
    return list(message.get_all("Requires-Dist") or [])


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _tags(wheel_text: str) -> str:
    """``py-abi-platform`` for the file name, compressed as pip writes it (``a.b`` per part)."""
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:")
    ]
    if not tags:
        raise TargetError("an installed distribution has no Tag in its WHEEL file")
    parts = list(zip(*(tag.split("-") for tag in tags), strict=True))
    return "-".join(".".join(sorted(set(part))) for part in parts)


def _scripts(dist: metadata.Distribution) -> set[str]:
    return {ep.name for ep in dist.entry_points if ep.group in ("console_scripts", "gui_scripts")}


def pack_installed(dist: metadata.Distribution, folder: Path) -> Path:
    """Write ``dist`` back into a wheel in ``folder`` from the files its RECORD lists."""
    name, version = dist.metadata["Name"], dist.version
    info = Path(str(dist._path))  # type: ignore[attr-defined]  # the .dist-info folder
    site = info.parent
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    data_dir = f"{stem}.data"
    entries: dict[str, Path] = {}
    scripts = _scripts(dist)
    for row in csv.reader(io.StringIO((info / "RECORD").read_text(encoding="utf-8"))):
        if not row or row[0].endswith(".pyc") or "__pycache__" in row[0]:
            continue
        source = (site / row[0]).resolve()
        if not row[0].startswith(".."):
            if not (row[0].startswith(info.name + "/") and Path(row[0]).name in _SKIPPED_INFO):
                entries[row[0]] = source
            continue
        prefix = Path(sys.prefix).resolve()
        if source.parent == prefix / "bin":
            if source.name not in scripts:
                entries[f"{data_dir}/scripts/{source.name}"] = source
        elif source.is_relative_to(prefix):
            entries[f"{data_dir}/data/{source.relative_to(prefix)}"] = source
    wheel_name = f"{stem}-{_tags((info / 'WHEEL').read_text(encoding='utf-8'))}.whl"
    target = folder / wheel_name
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    infos = sorted(k for k in entries if k.startswith(info.name + "/"))
    ordered = sorted(k for k in entries if k not in infos) + infos
    with replacing(target, ".whl.partial") as temp, zipfile.ZipFile(temp, "w") as archive:
        for arcname in ordered:
            data = entries[arcname].read_bytes()
            entry = zipfile.ZipInfo(arcname, EPOCH)
            entry.external_attr = (entries[arcname].stat().st_mode & 0o777 | 0o100000) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data, compresslevel=6)
            writer.writerow([arcname, _record_hash(data), len(data)])
        writer.writerow([f"{info.name}/RECORD", "", ""])
        entry = zipfile.ZipInfo(f"{info.name}/RECORD", EPOCH)
        entry.external_attr = 0o100644 << 16
        archive.writestr(entry, record.getvalue(), zipfile.ZIP_DEFLATED)
    return target


def source_tree() -> Path | None:
    """The source tree calibench is imported from, when it is one (not an installed copy)."""
    import calibench

    root = Path(calibench.__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "src").is_dir() else None


BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "setup.cfg")
"""What a wheel build reads from the source tree, besides ``src/``."""


def build_from_source(root: Path, folder: Path) -> Path:
    """calibench's wheel, built from a copy of the source tree: setuptools works in the tree's
    ``build/`` folder, and two builds there at once (two jobs setting up their targets) break
    each other, as does a folder a killed build left behind."""
    with tempfile.TemporaryDirectory(prefix="calibench-wheel-") as scratch:
        tree = Path(scratch) / "tree"
        shutil.copytree(
            root / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        for name in BUILD_INPUTS:
            if (root / name).is_file():
                shutil.copy2(root / name, tree / name)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "--no-index", "-w", scratch, str(tree)],
            capture_output=True,
            text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
            check=False,
        )  # fmt: skip
        built = sorted(Path(scratch).glob("calibench-*.whl"))
        if done.returncode != 0 or not built:
            raise TargetError(f"cannot build calibench's wheel from {root}: {done.stderr[-600:]}")
        target = folder / built[0].name
        os.replace(built[0], target)
    return target


def _version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def _cache_key(dist: metadata.Distribution) -> str:
    info = Path(str(dist._path))  # type: ignore[attr-defined]
    record = (info / "RECORD").read_bytes()
    return hashlib.sha256(f"{sys.prefix}\0{dist.version}\0".encode() + record).hexdigest()


def build_wheelhouse(folder: Path) -> list[Wheel]:
    """The wheels of calibench's runtime closure in ``folder``: packed once, then reused while
    the installed distribution is the same (its RECORD's hash). calibench from a source tree
    is rebuilt every time (under a second; reproducible, so its hash changes only with it)."""
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / "index.json"
    try:
        index: dict[str, dict[str, object]] = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    wheels: list[Wheel] = []
    tree = source_tree()
    if tree is not None:
        built = build_from_source(tree, folder)
        size = built.stat().st_size
        wheels.append(Wheel("calibench", _version(built), built.name, file_digest(built), size))
        dists = runtime_closure(wheel_requirements(built))
    else:
        dists = runtime_closure(["calibench"])
    for dist in dists:
        name = canonicalize_name(dist.metadata["Name"])
        key = _cache_key(dist)
        cached = index.get(name)
        if cached and cached.get("key") == key and (folder / str(cached["filename"])).is_file():
            wheels.append(Wheel(**cached["wheel"]))  # type: ignore[arg-type]
            continue
        path = pack_installed(dist, folder)
        wheel = Wheel(name, dist.version, path.name, file_digest(path), path.stat().st_size)
        index[name] = {"key": key, "filename": path.name, "wheel": asdict(wheel)}
        wheels.append(wheel)
    keep = {w.filename for w in wheels} | {index_path.name}
    for stale in folder.glob("*.whl"):
        if stale.name not in keep:
            stale.unlink()
    write_text_atomic(index_path, json.dumps(index, indent=1))
    return wheels
