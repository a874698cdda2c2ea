"""A full disk, recognised wherever it surfaces (a file write, SQLite, PostgreSQL), so that the
workbench answers 507 in words instead of a 500."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from calibench.errors import WorkbenchError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_WORDS = ("database or disk is full", "no space left on device", "disk quota exceeded")
DISK_FULL_SQLSTATE = "53100"
"""PostgreSQL's disk_full."""


def disk_full(error: BaseException | None) -> bool:
    """Whether the error, or one it was raised from, is a full disk (a file write, SQLite's or
    PostgreSQL's)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        original = error.orig if isinstance(error, DBAPIError) else error
        if getattr(original, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        if any(words in str(original).lower() for words in DISK_FULL_WORDS):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_refusal(workspace: Path) -> WorkbenchError:
    try:
        free = f"{shutil.disk_usage(workspace).free // 1_000_000} MB free"
    except OSError:
        free = "free space unknown"
    return WorkbenchError(f"the workspace disk is full ({free})", 507)
