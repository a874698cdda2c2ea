"""What every response schema shares."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict


class View(BaseModel):
    """A response: frozen, and readable by key as well as by attribute (``view["id"]``), as the
    templates and scripts that drive the workbench in Python read it."""

    model_config = ConfigDict(frozen=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)


def iso(moment: datetime | None) -> str | None:
    """UTC times as ISO text (SQLite hands them back without their zone)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")
