"""Tensors from an ``.npz`` file: one array per model input, samples along axis 0.

Arrays stored uncompressed (``np.savez``) are memory-mapped straight out of the zip file, so a
large calibration set is read sample by sample and never held in memory as a whole; compressed
arrays (``np.savez_compressed``) have to be inflated and are loaded.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from calibench.data.dataset import Sample
from calibench.errors import DatasetError

LABEL_KEYS = frozenset({"labels", "label", "targets"})
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip member's local file header


class NpzDataset:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.arrays = _open_arrays(self.path)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, struct.error) as exc:
            raise DatasetError(f"{path} is not a readable .npz file ({exc})") from exc
        if not self.arrays:
            raise DatasetError(f"{path} holds no input arrays")
        lengths = {k: len(v) for k, v in self.arrays.items() if v.ndim > 0}
        if len(set(lengths.values())) != 1 or len(lengths) != len(self.arrays):
            raise DatasetError(
                f"{path}: every array needs the same number of samples along axis 0, got {lengths}"
            )
        self._length = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> Sample | None:
        return {k: np.array(v[index]) for k, v in self.arrays.items()}

    def describe(self) -> dict[str, object]:
        shapes = {k: list(v.shape) for k, v in self.arrays.items()}
        return {"kind": "npz", "path": str(self.path), "samples": self._length, "arrays": shapes}


def _open_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, path.open("rb") as raw:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            if key in LABEL_KEYS:
                continue
            mapped = (
                _memory_map(path, raw, info) if info.compress_type == zipfile.ZIP_STORED else None
            )
            if mapped is not None:
                arrays[key] = mapped
            else:
                with archive.open(info) as member:
                    # allow_pickle=False: an .npz from elsewhere must not run code when read.
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def _memory_map(path: Path, handle: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray | None:
    """Map an uncompressed member in place, or ``None`` when its header is not understood."""
    handle.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    name_length, extra_length = fields[-2], fields[-1]
    handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        return None
    if dtype.hasobject:
        raise ValueError(f"{info.filename} holds Python objects, which are not read")
    return np.memmap(
        path,
        dtype=dtype,
        mode="r",
        offset=handle.tell(),
        shape=shape,
        order="F" if fortran else "C",
    )
