"""Tensors from an ``.npz`` file: one array per model input, samples along axis 0.

Arrays stored uncompressed (``np.savez``) are memory-mapped straight out of the zip file, so a
large calibration set is read sample by sample and never held in memory as a whole; compressed
arrays (``np.savez_compressed``) have to be inflated and are loaded.

The file is untrusted: each member's ``.npy`` header (shape × dtype) is checked before anything
is mapped or allocated. The declared bytes must fit in the member, and a compressed member must
stay within :data:`MAX_LOADED_BYTES` (the byte limit archive import uses), so a tiny file that
declares a huge array is a :class:`DatasetError`, never an allocation.
"""

from __future__ import annotations

import math
import struct
import zipfile
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np

from calibench.data.archive import DEFAULT_MAX_BYTES
from calibench.data.dataset import Sample
from calibench.errors import DatasetError

LABEL_KEYS = frozenset({"labels", "label", "targets"})
OFFSETS_KEY = "label_offsets"
"""Where each sample's labels start in a ragged ``labels`` array (``data.npz_labels``)."""
MAX_LOADED_BYTES = DEFAULT_MAX_BYTES
"""The most bytes one compressed array may inflate to (it is loaded whole, not mapped)."""
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip member's local file header


class NpzDataset:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.arrays = _open_arrays(self.path)
        except DatasetError:
            raise
        except Exception as exc:  # zipfile, zlib and numpy raise many types on damaged bytes
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
            if key in LABEL_KEYS or key == OFFSETS_KEY:
                continue
            mapped = (
                _memory_map(path, raw, info) if info.compress_type == zipfile.ZIP_STORED else None
            )
            arrays[key] = mapped if mapped is not None else read_member(path, archive, info)
    return arrays


def read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """Load one member whole, once its header has been checked against the limits."""
    with archive.open(info) as member:
        header = _read_header(member)
        if header is None:
            raise ValueError(f"{info.filename} uses an .npy format version that is not read")
        _check_declared(path, info, *header, loaded=True)
    with archive.open(info) as member:
        # allow_pickle=False: an .npz from elsewhere must not run code when read.
        return np.lib.format.read_array(member, allow_pickle=False)


def _read_header(handle: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    """``(shape, fortran, dtype, header bytes)`` of the ``.npy`` at the handle's position, or
    ``None`` for a format version this reader does not parse itself."""
    start = handle.tell()
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        return None
    return shape, fortran, dtype, handle.tell() - start


def _check_declared(
    path: Path,
    info: zipfile.ZipInfo,
    shape: tuple[int, ...],
    fortran: bool,
    dtype: np.dtype,
    header: int,
    *,
    loaded: bool,
) -> None:
    """Refuse a header whose shape × dtype the member cannot hold, or, for an array that is
    loaded rather than mapped, that passes :data:`MAX_LOADED_BYTES`."""
    name = info.filename[: -len(".npy")]
    if dtype.hasobject:
        raise DatasetError(f"{path}: array {name!r} holds Python objects, which are not read")
    if any(d < 0 for d in shape):
        raise DatasetError(f"{path}: array {name!r} declares a negative dimension {shape}")
    declared = math.prod(shape) * dtype.itemsize
    available = info.file_size - header
    if declared > available:
        raise DatasetError(
            f"{path}: array {name!r} declares shape {shape} of {dtype} ({declared} bytes) but "
            f"holds only {max(available, 0)} bytes; the file is damaged, save it again"
        )
    if loaded and declared > MAX_LOADED_BYTES:
        raise DatasetError(
            f"{path}: array {name!r} is compressed and inflates to {declared} bytes, past the "
            f"{MAX_LOADED_BYTES}-byte limit for loading; save it with np.savez (uncompressed "
            "arrays are read sample by sample) or split it"
        )


def _memory_map(path: Path, handle: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray | None:
    """Map an uncompressed member in place, or ``None`` when its header is not understood."""
    handle.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    name_length, extra_length = fields[-2], fields[-1]
    handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    header = _read_header(handle)
    if header is None:
        return None
    shape, fortran, dtype, _ = header
    _check_declared(path, info, *header, loaded=False)
    return np.memmap(
        path,
        dtype=dtype,
        mode="r",
        offset=handle.tell(),
        shape=shape,
        order="F" if fortran else "C",
    )
