"""Safe unpacking of dataset archives (.zip, .tar, .tar.gz/.tgz).

A dataset archive comes from elsewhere and is untrusted. Python's own extractors follow an
archive's word on paths and links, so this module decides every entry itself:

- names are relative: absolute paths, drive letters and ``..`` parts are refused, so nothing
  lands outside the target folder;
- names must be valid UTF-8 (a tar can hold raw bytes): such an entry is refused in words;
- only regular files and folders are unpacked: symlinks and hardlinks (wherever they point)
  and device files, FIFOs and sockets are refused, so nothing written later can be redirected;
- limits on the total uncompressed bytes and the entry count stop archive bombs. They are checked
  from the headers before anything is written, and again on the bytes actually inflated, since a
  header can lie;
- a corrupt or truncated archive is one clear :class:`DatasetError`;
- :func:`extract_archive` builds the result in a hidden sibling folder and renames it into place
  only when every entry is out, so a failure leaves nothing behind.

Archive permissions, owners and times are not applied: files get the process's defaults.
"""

from __future__ import annotations

import contextlib
import functools
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from calibench.data.staging import staged_folder
from calibench.errors import DatasetError

DEFAULT_MAX_BYTES = 4 * 1024**3
DEFAULT_MAX_FILES = 200_000
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
# What a damaged archive raises while it is read (OSError covers gzip.BadGzipFile).
_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)


@dataclass(frozen=True)
class UnpackStats:
    files: int
    folders: int
    bytes: int


@dataclass(frozen=True)
class _Entry:
    name: str
    """Safe relative POSIX path; empty for the archive's root folder itself."""
    is_dir: bool
    size: int
    """Uncompressed size the header declares."""


Opener = Callable[[], IO[bytes] | None]


def archive_suffix(path: Path) -> str | None:
    """The archive suffix ``path`` ends with (lower case), or ``None`` for other files."""
    name = Path(path).name.lower()
    return next((s for s in ARCHIVE_SUFFIXES if name.endswith(s) and len(name) > len(s)), None)


def is_archive(path: Path) -> bool:
    return archive_suffix(path) is not None


def archive_stem(path: Path) -> str:
    """The name without its archive suffix: ``coco-val.tar.gz`` → ``coco-val``."""
    suffix = archive_suffix(path)
    name = Path(path).name
    return name[: -len(suffix)] if suffix else Path(path).stem


def extract_archive(
    archive: Path,
    target: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> UnpackStats:
    """Unpack ``archive`` into ``target``, which must not exist yet; all or nothing."""
    with staged_folder(Path(target)) as temp:
        return unpack_into(archive, temp, max_bytes=max_bytes, max_files=max_files)


def unpack_into(
    archive: Path,
    folder: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> UnpackStats:
    """Unpack ``archive`` into the existing empty ``folder``. On failure the folder keeps what
    was written so far: callers wanting all-or-nothing use :func:`extract_archive` or their own
    :func:`~calibench.data.staging.staged_folder`."""
    archive, folder = Path(archive), Path(folder)
    if not archive.is_file():
        raise DatasetError(f"archive not found: {archive}")
    if archive_suffix(archive) is None:
        raise DatasetError(f"{archive}: not a .zip, .tar, .tar.gz or .tgz archive")
    try:
        _check_headers(archive, max_bytes, max_files)
        return _extract(archive, folder, max_bytes, max_files)
    except _READ_ERRORS as exc:
        raise DatasetError(
            f"{archive} is corrupt or truncated ({exc}); download or create it again"
        ) from exc


def _check_headers(archive: Path, max_bytes: int, max_files: int) -> None:
    """Refuse before writing anything when the headers alone exceed a limit or name a bad
    entry. Stops at the first excess, so a bomb is never inflated to find out."""
    count = total = 0
    with contextlib.closing(_entries(archive)) as entries:
        for entry, _ in entries:
            count += 1
            total += entry.size
            if count > max_files:
                raise DatasetError(
                    f"{archive} holds more than {max_files} entries; raise the file limit if "
                    "you trust it, or split it"
                )
            if total > max_bytes:
                raise DatasetError(
                    f"{archive} expands to more than {max_bytes} bytes; raise the size limit "
                    "if you trust it, or split it"
                )


def _extract(archive: Path, folder: Path, max_bytes: int, max_files: int) -> UnpackStats:
    files = folders = written = 0
    with contextlib.closing(_entries(archive)) as entries:
        for entry, opener in entries:
            if files + folders >= max_files:
                raise DatasetError(
                    f"{archive} holds more than {max_files} entries while unpacking; raise the "
                    "file limit if you trust it"
                )
            if not entry.name:
                continue
            dest = folder.joinpath(*entry.name.split("/"))
            if entry.is_dir:
                with _writing(archive, entry.name):
                    dest.mkdir(parents=True, exist_ok=True)
                folders += 1
                continue
            source = opener()
            if source is None:
                raise DatasetError(f"{archive}: entry {entry.name!r} has no data; re-create it")
            with source:
                written += _copy(archive, entry, source, dest, max_bytes - written)
            files += 1
    return UnpackStats(files=files, folders=folders, bytes=written)


def _copy(archive: Path, entry: _Entry, source: IO[bytes], dest: Path, budget: int) -> int:
    """Copy one member, counting the bytes really inflated against its header and the budget."""
    with _writing(archive, entry.name):
        dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = dest.open("xb")
    except FileExistsError as exc:
        raise DatasetError(f"{archive} lists {entry.name!r} twice; re-create it") from exc
    except OSError as exc:
        raise DatasetError(f"cannot write {entry.name!r} from {archive} ({exc})") from exc
    done = 0
    with out:
        while chunk := source.read(_CHUNK):
            done += len(chunk)
            if done > entry.size:
                raise DatasetError(
                    f"{archive}: {entry.name!r} holds more data than its header declares; "
                    "refusing a possibly malicious archive"
                )
            if done > budget:
                raise DatasetError(
                    f"{archive} expands past its size limit while unpacking; raise the limit "
                    "if you trust it"
                )
            with _writing(archive, entry.name):
                out.write(chunk)
    if done < entry.size:
        raise DatasetError(
            f"{archive} is truncated: {entry.name!r} ends after {done} of {entry.size} bytes; "
            "download or create it again"
        )
    return done


@contextlib.contextmanager
def _writing(archive: Path, name: str) -> Iterator[None]:
    """Around a filesystem write: its OSError is a disk problem, not a corrupt archive."""
    try:
        yield
    except OSError as exc:
        raise DatasetError(f"cannot write {name!r} from {archive} ({exc})") from exc


def _entries(archive: Path) -> Generator[tuple[_Entry, Opener], None, None]:
    """Every entry, checked, with a way to open its data (valid until the next entry)."""
    if archive_suffix(archive) == ".zip":
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                yield _zip_entry(archive, info), functools.partial(zipped.open, info)
    else:
        # Stream mode reads strictly forwards: a .tar.gz is inflated once, never re-wound.
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                yield _tar_entry(archive, member), functools.partial(tar.extractfile, member)


def _zip_entry(archive: Path, info: zipfile.ZipInfo) -> _Entry:
    name = _safe_name(archive, info.filename)
    kind = stat.S_IFMT(info.external_attr >> 16)  # Unix mode bits, when a Unix tool made it
    if stat.S_ISLNK(kind):
        raise _refuse(archive, info.filename, "is a symbolic link")
    if kind and not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):
        raise _refuse(archive, info.filename, "is a device file, FIFO or socket")
    if info.flag_bits & 0x1:
        raise DatasetError(f"{archive}: {info.filename!r} is encrypted; unpack it yourself")
    is_dir = info.is_dir() or stat.S_ISDIR(kind)
    return _Entry(name, is_dir, 0 if is_dir else info.file_size)


def _tar_entry(archive: Path, member: tarfile.TarInfo) -> _Entry:
    name = _safe_name(archive, member.name)
    if member.issym() or member.islnk():
        raise _refuse(archive, member.name, f"is a link (to {member.linkname!r})")
    if member.isdir():
        return _Entry(name, True, 0)
    if not member.isreg():
        raise _refuse(archive, member.name, "is a device file, FIFO or other special file")
    return _Entry(name, False, member.size)


def _safe_name(archive: Path, raw: str) -> str:
    """The entry's path as safe relative POSIX parts; backslashes count as separators."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # tarfile keeps undecodable bytes as surrogates
        shown = raw.encode("utf-8", "surrogateescape")
        raise DatasetError(
            f"{archive}: entry {shown!r} has a name that is not valid UTF-8; rename it and "
            "create the archive again"
        ) from None
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise _refuse(archive, raw, "has a NUL byte in its name")
    if name.startswith("/") or _DRIVE.match(name):
        raise _refuse(archive, raw, "has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(archive, raw, "climbs out of the folder with '..'")
    return "/".join(parts)


def _refuse(archive: Path, raw: str, why: str) -> DatasetError:
    return DatasetError(
        f"{archive}: entry {raw!r} {why}; refusing to unpack it (only plain files and folders "
        "with relative paths are accepted)"
    )
