"""How a calibench command on a target reports its progress to the host: with
``CALIBENCH_PROGRESS=jsonl`` set, the command's progress bars become one JSON object a line on
stderr, which the host turns back into its own bars (or a job's progress)."""

from __future__ import annotations

import json

PROGRESS_ENV = "CALIBENCH_PROGRESS"
JSON_LINES = "jsonl"
_KEY = "calibench.progress"


def progress_line(stage: str, done: int, total: int) -> str:
    return json.dumps({_KEY: stage, "done": done, "total": total})


def parse_progress(line: str) -> tuple[str, int, int] | None:
    """(stage, done, total) of a progress line; None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
        return str(data[_KEY]), int(data["done"]), int(data["total"])
    except (ValueError, KeyError, TypeError):
        return None
