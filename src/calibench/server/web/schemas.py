"""What every response schema shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict


class View(BaseModel):
    """A response: frozen, and readable as its JSON reads, by key (``view["id"]``) and equal to
    the same data as a mapping, for the templates and the scripts that drive the workbench in
    Python."""

    model_config = ConfigDict(frozen=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.model_dump() == dict(other)
        return super().__eq__(other)

    __hash__ = BaseModel.__hash__


def iso(moment: datetime | None) -> str | None:
    """UTC times as ISO text (SQLite hands them back without their zone)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")


def one_of(choices: type[Enum]) -> str:
    """A pattern that accepts exactly the values of ``choices`` (an enum of words: letters and
    hyphens, so the pattern reads as the choices in the API's schema)."""
    words = [str(member.value) for member in choices]
    assert all(re.fullmatch(r"[\w-]+", word) for word in words), words
    return "^(" + "|".join(words) + ")$"
