"""How the pages write things for people: times as a reader says them, counted nouns, and long
layer names that may break at their separators instead of mid-word. Registered as the
templates' filters (``|when``, ``|took``, ``|plural``, ``|breakable``, ``|preprocessing``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from markupsafe import Markup, escape

from calibench.words import plural

SEPARATORS = re.compile(r"([/._:\-]+)")
"""Where a layer or tensor name may wrap: after a path or scope separator."""


def _moment(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def when(value: str | datetime | None, now: datetime | None = None) -> str:
    """``30 Nov 2026, 13:45:02 UTC (4 min ago)``; "—" when there is no time."""
    moment = _moment(value)
    if moment is None:
        return "—"
    moment = moment.astimezone(timezone.utc)
    ago = ((now or datetime.now(timezone.utc)) - moment).total_seconds()
    day = f"{moment.day} {moment:%b %Y, %H:%M:%S} UTC"
    if ago < 0:
        return day
    if ago < 60:
        return f"{day} (just now)"
    if ago < 3600:
        return f"{day} ({int(ago // 60)} min ago)"
    if ago < 86400:
        return f"{day} ({plural(int(ago // 3600), 'hour')} ago)"
    return day


def took(start: str | datetime | None, end: str | datetime | None) -> str:
    """How long from ``start`` to ``end``: ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    first, last = _moment(start), _moment(end)
    if first is None or last is None:
        return "—"
    seconds = max(0.0, (last - first).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def breakable(name: object) -> Markup:
    """The name, escaped, with a line-break opportunity (``<wbr>``) after each separator, so
    ``/features/features.3/conv/conv.0/Conv`` wraps at its slashes and dots."""
    parts = SEPARATORS.split(str(name))
    return Markup("").join(
        escape(part) + (Markup("<wbr>") if SEPARATORS.fullmatch(part) else Markup(""))
        for part in parts
    )


def preprocessing(settings: Mapping[str, Any] | None) -> str:
    """A preprocessing's settings (``Preprocess.to_dict()``) in words: "resize to 28×28,
    grayscale, pixels × 1/255, no mean or std, NCHW"."""
    if not settings:
        return "none: the dataset's arrays are fed as they are"
    parts = []
    resize, crop = settings.get("resize"), settings.get("crop")
    if isinstance(resize, (list, tuple)):
        parts.append(f"resize to {resize[0]}×{resize[1]}")
    elif resize:
        parts.append(f"resize the short side to {resize}")
    if crop:
        parts.append(f"centre crop {crop[0]}×{crop[1]}")
    parts.append({"GRAY": "grayscale", "BGR": "BGR"}.get(str(settings.get("color")), "RGB"))
    scale = float(settings.get("scale", 1 / 255))
    parts.append("pixels × 1/255" if math.isclose(scale, 1 / 255) else f"pixels × {scale:g}")
    mean, std = list(settings.get("mean") or [0.0]), list(settings.get("std") or [1.0])
    if all(v == 0 for v in mean) and all(v == 1 for v in std):
        parts.append("no mean or std")
    else:
        parts.append(f"mean {', '.join(f'{v:g}' for v in mean)}")
        parts.append(f"std {', '.join(f'{v:g}' for v in std)}")
    parts.append(str(settings.get("layout", "NCHW")))
    return ", ".join(parts)


FILTERS = {
    "when": when,
    "took": took,
    "plural": plural,
    "breakable": breakable,
    "preprocessing": preprocessing,
}
