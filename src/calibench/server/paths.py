"""Server paths kept out of what a person reads: files named as the person named them (an
uploaded file by its name, a model or dataset by its name in the workbench), anything else in the
workspace by its path relative to the workspace."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STAGING = re.compile(r"\.(ds-[0-9a-f]{12})\.[^/\\\s'\"]*\.partial")
"""A dataset's staging folder while it is imported (``datasets/.ds-….xyz.partial``)."""


def _roots(workspace: Path) -> list[str]:
    roots = {str(workspace), str(workspace.absolute())}
    with contextlib.suppress(OSError):
        roots.add(str(workspace.resolve()))
    return sorted(roots, key=len, reverse=True)


def shown(
    text: str,
    workspace: Path,
    names: Mapping[str, str] | None = None,
    dataset: str | None = None,
) -> str:
    """``text`` with each path of ``names`` (absolute or relative to the workspace) replaced by
    its name, the files of the dataset folder ``dataset`` (or of its staging folder) by their
    paths inside it, a dataset's staging folder by its final folder, and every other path in the
    workspace made relative to it."""
    roots = _roots(workspace)
    if dataset:
        for root in roots:
            inside = re.escape(os.path.join(root, "datasets", "")) + r"\.?" + re.escape(dataset)
            text = re.sub(inside + r"(\.[^/\\\s'\"]*\.partial)?/", "", text)
    for path, name in sorted((names or {}).items(), key=lambda kv: -len(kv[0])):
        variants = {path} if os.path.isabs(path) else {os.path.join(r, path) for r in roots}
        for variant in sorted(variants, key=len, reverse=True):
            # Only the whole path: a file inside a named folder keeps its own (relative) path.
            pattern = re.escape(variant) + r"(?![\w./\\-])"
            text = re.sub(pattern, name.replace("\\", "\\\\"), text)
    for root in roots:
        text = text.replace(root + os.sep, "").replace(root, "the workspace")
    return STAGING.sub(r"\1", text)


def shown_in(
    value: Any,
    workspace: Path,
    names: Mapping[str, str] | None = None,
    dataset: str | None = None,
) -> Any:
    """:func:`shown` applied to every string in a JSON-like value."""
    if isinstance(value, str):
        return shown(value, workspace, names, dataset)
    if isinstance(value, dict):
        return {k: shown_in(v, workspace, names, dataset) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown_in(v, workspace, names, dataset) for v in value]
    return value
