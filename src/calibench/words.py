"""Counted nouns in messages and pages: "1 layer", "8 layers", never "layer(s)"."""

from __future__ import annotations


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``count`` and the noun agreeing with it (``many`` where adding "s" is wrong)."""
    noun = singular if count == 1 else (many or singular + "s")
    return f"{count} {noun}"
