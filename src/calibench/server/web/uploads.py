"""Receiving an uploaded file: its type by suffix, its size against the limit, streamed to a
private folder that nothing leaves behind when the upload is refused or breaks off; and the
names an upload may be given."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from calibench.errors import WorkbenchError
from calibench.server.workspace import Workspace

MODEL_SUFFIXES = (".onnx",)
DATASET_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".npz")
NAME = re.compile(r"^[\w][\w .()+-]{0,99}$")


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its stream and the name the browser gave (used for display only)."""

    stream: BinaryIO
    filename: str


def display_name(filename: str, fallback: str) -> str:
    """A name to show, from an uploaded file's name: never used as a path."""
    base = re.split(r"[\\/]", filename or "")[-1]
    for suffix in (*DATASET_SUFFIXES, *MODEL_SUFFIXES):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    base = re.sub(r"[^\w .()+-]", "_", base).strip(" ._")[:100]
    return base or fallback


def check_name(name: str, what: str) -> str:
    name = name.strip()
    if not NAME.match(name):
        raise WorkbenchError(
            f"{what} name {name[:60]!r} is not allowed: use 1–100 letters, digits, spaces, "
            "'.', '-', '_', '(', ')' or '+', starting with a letter or digit"
        )
    return name


def _write_chunk(out: BinaryIO, chunk: bytes) -> None:
    out.write(chunk)


def receive(
    upload: Upload, suffixes: tuple[str, ...], what: str, workspace: Workspace, limit: int
) -> Path:
    """Copy an upload to a private temporary folder among the workspace's uploads, checking its
    type and its size (at most ``limit`` bytes)."""
    lower = (upload.filename or "").lower()
    suffix = next((s for s in suffixes if lower.endswith(s)), None)
    if suffix is None:
        raise WorkbenchError(
            f"{what} must be a {', '.join(suffixes)} file, not {upload.filename[:80]!r}", 415
        )
    folder = workspace.new_upload_folder()
    path = folder / f"upload{suffix}"
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := upload.stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise WorkbenchError(
                        f"{what} is larger than the upload limit of {limit / 1e6:g} MB (start "
                        "the server with --max-upload-mb to change it)",
                        413,
                    )
                _write_chunk(out, chunk)
        if size == 0:
            raise WorkbenchError(f"{what} is empty")
    except BaseException:  # a full disk, a refusal, a broken connection: nothing stays
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return path
