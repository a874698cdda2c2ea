"""How many layers of a model run in INT8, counted so that the number means what it says.

A layer table has three kinds of rows: the layers with weights that INT8 is for (Conv, Gemm,
MatMul), activations folded into the output quantizer of the layer before them (they have no
kernel of their own), and everything else (Add, pooling, reshapes, preprocessing arithmetic).
One count over all rows ("13 of 22 layers in INT8") reads too low on a model whose every Conv is
INT8 and too high on one that only moved its reshapes; the counts here keep them apart:
"8 of 8 Conv/Gemm in INT8; 6 activations folded into them; 5 of 7 other layers in INT8".

A layer an AccuracyAware search reverted takes others with it (a layer reading its output, an
activation folded into it): :func:`fell_back` finds them from the reasons the placement gave,
so the page says why the INT8 count fell by more than the layers reverted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
"""The layers INT8 is for: their weights and arithmetic are where the speed is."""
FOLDED = "(folded)"
INT8 = "INT8"


class _Row(Protocol):
    """A layer table's row: :class:`~calibench.report.layers.LayerRow`, a comparison's row."""

    @property
    def name(self) -> str: ...
    @property
    def op_type(self) -> str: ...
    @property
    def precision(self) -> str: ...
    @property
    def kernel(self) -> str: ...


Row = _Row | Mapping[str, Any]


def _get(row: Row, key: str) -> Any:
    return row.get(key) if isinstance(row, Mapping) else getattr(row, key, None)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 layer``, ``2 layers``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


@dataclass(frozen=True)
class LayerCounts:
    weighted_int8: int
    weighted: int
    weighted_types: tuple[str, ...]
    """The weighted op types the model has, in :data:`WEIGHTED` order (``Conv``, ``Gemm``)."""
    folded: int
    """Activations folded into an INT8 layer's output quantizer: INT8, with no kernel."""
    other_int8: int
    other: int
    fp32: int
    """Rows that run in FP32 (any kind)."""
    total: int

    @property
    def int8(self) -> int:
        """Rows that run in INT8, folded activations included: the rows with an INT8 badge."""
        return self.total - self.fp32

    @property
    def weighted_label(self) -> str:
        return "/".join(self.weighted_types) or "Conv/Gemm/MatMul"

    def words(self) -> str:
        """``8 of 8 Conv/Gemm in INT8; 6 activations folded into them; 5 of 7 other layers in
        INT8``: the sentence the pages and the report show."""
        parts = [f"{self.weighted_int8} of {self.weighted} {self.weighted_label} in INT8"]
        if self.folded:
            parts.append(f"{plural(self.folded, 'activation')} folded into them")
        if self.other:
            parts.append(f"{self.other_int8} of {plural(self.other, 'other layer')} in INT8")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "weighted_int8": self.weighted_int8,
            "weighted": self.weighted,
            "weighted_types": list(self.weighted_types),
            "folded": self.folded,
            "other_int8": self.other_int8,
            "other": self.other,
            "fp32": self.fp32,
            "int8": self.int8,
            "total": self.total,
            "words": self.words(),
        }


def count_layers(rows: Iterable[Row]) -> LayerCounts:
    """The counts of a layer table (:class:`LayerRow` objects or their dicts)."""
    weighted_int8 = weighted = folded = other_int8 = other = fp32 = total = 0
    types: set[str] = set()
    for row in rows:
        total += 1
        op_type, in_int8 = _get(row, "op_type"), _get(row, "precision") == INT8
        fp32 += not in_int8
        if op_type in WEIGHTED:
            weighted += 1
            weighted_int8 += in_int8
            types.add(op_type)
        elif _get(row, "kernel") == FOLDED and in_int8:
            folded += 1
        else:
            other += 1
            other_int8 += in_int8
    return LayerCounts(
        weighted_int8=weighted_int8,
        weighted=weighted,
        weighted_types=tuple(t for t in WEIGHTED if t in types),
        folded=folded,
        other_int8=other_int8,
        other=other,
        fp32=fp32,
        total=total,
    )


@dataclass(frozen=True)
class FellBack:
    """A layer that went to FP32 because a reverted layer did, and the placement's reason."""

    name: str
    reason: str


def fell_back(rows: Iterable[Row], reverted: Sequence[str]) -> list[FellBack]:
    """The FP32 layers that were not reverted themselves but whose reason names a reverted
    layer, or a layer that fell back in turn (they read its output, or follow it)."""
    table = list(rows)
    chosen, found = set(reverted), dict[str, FellBack]()
    while chosen:
        pattern = re.compile("|".join(re.escape(n) for n in sorted(chosen, key=len, reverse=True)))
        chosen = set()
        for row in table:
            name, reason = _get(row, "name"), _get(row, "reason") or ""
            if (
                _get(row, "precision") != INT8
                and name not in reverted
                and name not in found
                and pattern.search(reason)
            ):
                found[name] = FellBack(name, reason)
                chosen.add(name)
    return [found[_get(r, "name")] for r in table if _get(r, "name") in found]


def revert_words(rows: Iterable[Row], reverted: Sequence[str]) -> str:
    """``1 layer reverted to FP32; 1 more fell back with it: /pool (reads the output of /conv,
    …)``: the AccuracyAware outcome where its layers are counted."""
    text = f"{plural(len(reverted), 'layer')} reverted to FP32"
    if not reverted:
        return text
    cascade = fell_back(rows, reverted)
    if cascade:
        them = "it" if len(reverted) == 1 else "them"
        shown = "; ".join(f"{c.name} ({c.reason})" for c in cascade[:5])
        more = f"; and {len(cascade) - 5} more" if len(cascade) > 5 else ""
        text += f"; {len(cascade)} more fell back with {them}: {shown}{more}"
    return text
