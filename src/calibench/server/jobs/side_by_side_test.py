"""The side-by-side timing job's edges: its bar moves while the models are timed, and its commit
keeps figures only for two projects that still exist."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from calibench.errors import CalibenchError
from calibench.server.db import Base, JobRow, PairTimingRow, make_engine, session_factory
from calibench.server.jobs.kinds import SideBySideJob
from calibench.server.jobs.side_by_side import commit_side_by_side, ticking
from calibench.server.jobs.states import Stage
from calibench.server.workspace import Workspace

JOB = SideBySideJob(
    project_a=1, project_b=2, model_a="models/2/model.onnx", model_b="models/3/model.onnx",
    name_a="A", name_b="B", dataset="datasets/ds-val", dataset_name="val", batch=1, streams=1,
    seconds=0.4,
)  # fmt: skip


class _Context:
    def __init__(self) -> None:
        self.events: list[tuple[Stage, int, int]] = []

    def progress(self, stage: Stage, done: int, total: int, detail: str = "") -> None:
        self.events.append((stage, done, total))


def test_the_timing_bar_moves_with_the_seconds_spent() -> None:
    ctx = _Context()
    with ticking(ctx, Stage.TIMING, 3.0):  # type: ignore[arg-type]
        time.sleep(1.3)
    assert ctx.events[0] == (Stage.TIMING, 0, 3) and ctx.events[-1] == (Stage.TIMING, 3, 3)
    moving = [done for _, done, _ in ctx.events[1:-1]]
    assert moving == sorted(moving) and 1 <= max(moving) < 3  # whole seconds, never done


def test_the_commit_keeps_the_figures_of_two_projects_that_exist(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'workbench.db'}")
    Base.metadata.create_all(engine)
    result: dict[str, Any] = {"a": {"throughput": 1.0}, "b": {"throughput": 2.0}}
    with session_factory(engine)() as session:
        job = JobRow(kind=JOB.KIND, description=JOB.to_json(), state="running", stages=[])
        session.add(job)
        session.flush()
        with pytest.raises(CalibenchError, match=r"^project 1 was deleted while the two models"):
            commit_side_by_side(session, job, result, Workspace(tmp_path))
        assert session.query(PairTimingRow).count() == 0
    engine.dispose()
