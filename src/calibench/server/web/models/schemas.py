"""A model as the pages and the API show it."""

from __future__ import annotations

from typing import Any

from calibench.server.db import ModelRow
from calibench.server.web.schemas import View, iso


class ModelView(View):
    id: int
    name: str
    state: str
    """ready; pending (an INT8 model its calibration job has not made yet); failed."""
    precision: str
    parent_id: int | None
    """The FP32 model an INT8 model was made from."""
    optimizable: bool
    reason: str | None
    """Why INT8 calibration refuses the model (None when it takes it)."""
    size_bytes: int
    info: dict[str, Any]
    """Inputs and outputs with their shapes, opset, node count, ops by count."""
    created_at: str | None

    @classmethod
    def of(cls, row: ModelRow) -> ModelView:
        return cls(
            id=row.id,
            name=row.name,
            state=row.state,
            precision=row.precision,
            parent_id=row.parent_id,
            optimizable=row.optimizable,
            reason=row.reason,
            size_bytes=row.size_bytes,
            info=row.info,
            created_at=iso(row.created_at),
        )


class ModelDetail(View):
    """What the model's page shows beside its projects."""

    model: ModelView
    layers: list[dict[str, Any]] | None
    parent: ModelView | None
