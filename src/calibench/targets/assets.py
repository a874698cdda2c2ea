"""A command's inputs as files to upload: a file as it is (an ONNX model with its external
data files), a folder as one tar made the same way every time, so that the same folder has the
same hash and is not sent twice."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from calibench.errors import ConfigError
from calibench.workflow.cache import file_digest


@dataclass(frozen=True)
class Asset:
    local: Path
    sha256: str
    size: int

    @classmethod
    def of(cls, path: Path) -> Asset:
        return cls(path, file_digest(path), path.stat().st_size)


@dataclass(frozen=True)
class Input:
    """A local file or folder the command reads."""

    path: Path


@dataclass(frozen=True)
class Output:
    """A local file the command writes (with its siblings: ``model.onnx.data``)."""

    path: Path


@dataclass(frozen=True)
class Prepared:
    """An input ready to send: the assets, and how the target lays them out."""

    assets: tuple[Asset, ...]
    folder: bool
    """A folder: its single asset is a tar to unpack; else files linked by their names."""


def _external_data(model: Path) -> list[Path]:
    import onnx

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception:
        return []  # not a model: the command on the target says what is wrong with it
    names = set()
    for tensor in onnx.external_data_helper._get_all_tensors(proto):
        if onnx.external_data_helper.uses_external_data(tensor):
            info = onnx.external_data_helper.ExternalDataInfo(tensor)
            names.add(info.location)
    return [model.parent / name for name in sorted(names) if (model.parent / name).is_file()]


def _tar(folder: Path, into: Path) -> Path:
    """A tar of ``folder`` (as ``folder.name/…``) with sorted entries and no owners or times."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    path = into / f"{folder.name}.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(str(folder), arcname=folder.name, recursive=False, filter=clean)
        for item in sorted(folder.rglob("*")):
            if item.is_file() or item.is_dir():
                archive.add(
                    str(item), arcname=f"{folder.name}/{item.relative_to(folder)}",
                    recursive=False, filter=clean,
                )  # fmt: skip
    return path


def prepare(item: Input, scratch: Path) -> Prepared:
    path = item.path
    if path.is_dir():
        return Prepared((Asset.of(_tar(path, scratch)),), folder=True)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    files = [path, *(_external_data(path) if path.suffix == ".onnx" else [])]
    return Prepared(tuple(Asset.of(f) for f in files), folder=False)
