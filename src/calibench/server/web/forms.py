"""Reading what a person typed into a form: the validators that turn a form's text into typed
fields, refusing in the words the form shows (a :class:`WorkbenchError`, which pydantic lets
through as it is, so the page shows it beside the form instead of a list of field errors)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from calibench.errors import WorkbenchError


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def whole(what: str, default: int | None = None) -> Callable[[Any], int]:
    """A whole number; empty means ``default`` (and, without one, that it must be chosen)."""

    def read(value: Any) -> int:
        if _blank(value):
            if default is None:
                raise WorkbenchError(f"choose a {what}")
            return default
        try:
            return int(value)
        except ValueError as error:
            raise WorkbenchError(
                f"{what} must be a whole number, not {str(value)[:20]!r}"
            ) from error

    return read


def optional_whole(what: str) -> Callable[[Any], int | None]:
    """A whole number, or None when left empty."""
    read = whole(what)
    return lambda value: None if _blank(value) else read(value)


def number(what: str, default: float | None = None) -> Callable[[Any], float | None]:
    """A finite number; empty means ``default`` (0 is a value, and is checked)."""

    def read(value: Any) -> float | None:
        if _blank(value):
            return default
        try:
            found = float(value)
        except ValueError as error:
            raise WorkbenchError(f"{what} must be a number, not {str(value)[:20]!r}") from error
        if not math.isfinite(found):
            raise WorkbenchError(f"{what} must be a finite number, not {str(value)[:20]!r}")
        return found

    return read


def numbers(what: str) -> Callable[[Any], list[float] | None]:
    """Comma-separated numbers, e.g. a mean per channel; None when left empty."""
    read = number(what)

    def read_all(text: Any) -> list[float] | None:
        if _blank(text):
            return None
        found = []
        for part in str(text).split(","):
            value = read(part)
            if value is None:
                raise WorkbenchError(
                    f"{what} must be numbers separated by commas, not {str(text)[:40]!r}"
                )
            found.append(value)
        return found

    return read_all


def scale(text: Any) -> float | None:
    """``1/255``, ``0.00392`` or ``1``; None when left empty."""
    if _blank(text):
        return None
    top, _, bottom = str(text).strip().partition("/")
    try:
        value = float(top) / float(bottom) if bottom else float(top)
    except (ValueError, ZeroDivisionError) as error:
        raise WorkbenchError(
            f"the pixel scale must be a number like 1/255 or 1, not {str(text)[:20]!r}"
        ) from error
    if not math.isfinite(value):
        raise WorkbenchError(f"the pixel scale must be a finite number, not {str(text)[:20]!r}")
    if value <= 0:
        raise WorkbenchError("the pixel scale must be above 0")
    return value


def stripped(text: Any) -> str | None:
    """The text without surrounding blanks; None when nothing is left."""
    return None if _blank(text) else str(text).strip()


def patterns(text: Any) -> list[str]:
    """Keep-FP32 patterns, comma-separated (a comma inside a regex's {m,n} stays)."""
    if isinstance(text, list):
        return text
    parts = re.split(r",(?![^{]*\})", text or "")
    found = [p.strip() for p in parts if p.strip()]
    if len(found) > 64 or any(len(p) > 200 for p in found):
        raise WorkbenchError("Keep in FP32 takes at most 64 patterns of at most 200 characters")
    return found
