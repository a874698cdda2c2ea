"""Results saved in the workspace, so an FP32 baseline is computed once per model, dataset and
settings and reused after that."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from calibench._files import replacing


def default_workspace() -> Path:
    return Path(os.environ.get("CALIBENCH_WORKSPACE", Path.home() / ".calibench"))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_identity(path: Path) -> str:
    """What a dataset is, cheaply: its manifest's or file's digest, else a folder listing."""
    manifest = path / "calibench-dataset.json"
    if manifest.is_file():
        return file_digest(manifest)
    if path.is_file():
        return file_digest(path)
    listing = sorted(
        f"{p.relative_to(path)}:{p.stat().st_size}:{int(p.stat().st_mtime)}"
        for p in path.rglob("*")
        if p.is_file()
    )
    return hashlib.sha256("\n".join(listing).encode()).hexdigest()


class ResultCache:
    def __init__(self, root: Path) -> None:
        self.root = root / "results"

    def key(self, parts: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[
            :24
        ]

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.root / f"{key}.json"
        if not path.is_file():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except ValueError:
            return None
        return data

    def put(self, key: str, value: dict[str, Any]) -> None:
        with replacing(self.root / f"{key}.json") as temp:
            temp.write_text(json.dumps(value, indent=2))
