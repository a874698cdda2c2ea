"""The side-by-side timing's service logic on real tables: the stored figures read for either
order of the pair, the sentence Compare shows, the refusals in words, and the queued job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from calibench.errors import WorkbenchError
from calibench.server.db import (
    Base,
    DatasetRow,
    ModelRow,
    PairTimingRow,
    ProjectRow,
    make_engine,
    session_factory,
)
from calibench.server.jobs.kinds import SideBySideJob
from calibench.server.web.compare.timing import (
    pair_job,
    queue_timing,
    stored_timing,
    timing_refusal,
)

STAMP = {
    "at": "2026-11-30T14:40:12+00:00",
    "runtime": "ONNX Runtime 1.22.1",
    "cpu": "AMD EPYC 9B14",
    "isa": "vnni",
    "isa_label": "VNNI",
    "timed_with": ["a", "b"],
}


def _perf(throughput: float, latency: float) -> dict[str, Any]:
    return {
        "latency_ms_median": latency,
        "latency_ms_p90": latency * 1.1,
        "latency_ms_p99": latency * 1.2,
        "throughput": throughput,
        "requests": 100,
        "settings": {"batch": 1, "streams": 1, "threads": 2, "seconds": 0.4, "warmup": 3},
        "measured": STAMP,
    }


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'workbench.db'}")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as session:
        data = DatasetRow(
            name="val", path="datasets/ds-val", task="classification", format="folder", samples=9
        )
        fp32 = ModelRow(name="cnn", path="models/1/model.onnx", precision="FP32")
        session.add_all([data, fp32])
        session.flush()
        for name, state in (("cnn INT8 (Default)", "ready"), ("cnn INT8 (AA)", "ready")):
            session.add(
                ModelRow(
                    name=name, path=f"models/{name}.onnx", precision="INT8", parent_id=fp32.id,
                    state=state,
                )
            )  # fmt: skip
        session.flush()
        parent = ProjectRow(model_id=fp32.id, dataset_id=data.id, target="this machine")
        session.add(parent)
        session.flush()
        for model_id in (2, 3):
            session.add(
                ProjectRow(
                    model_id=model_id, dataset_id=data.id, target="this machine",
                    parent_id=parent.id, settings={"batch": 2, "streams": 1},
                )
            )  # fmt: skip
        session.flush()
        yield session
    engine.dispose()


def _projects(session: Session) -> list[ProjectRow]:
    return [p for p in (session.get(ProjectRow, i) for i in (1, 2, 3)) if p is not None]


def test_the_stored_timing_reads_for_either_order_of_the_pair(session: Session) -> None:
    _, a, b = _projects(session)
    names = ("cnn INT8 (Default)", "cnn INT8 (AA)")
    assert stored_timing(session, a, b, names) is None
    session.add(
        PairTimingRow(
            a_id=a.id, b_id=b.id, job_id=7, figures={"a": _perf(100, 10.0), "b": _perf(107, 9.0)}
        )
    )
    session.flush()
    found = stored_timing(session, a, b, names)
    assert found is not None and found.job_id == 7
    assert (found.a.throughput, found.b.throughput) == (100, 107)
    assert found.words == "1.07× faster" and found.latency_words == "1.11× faster"
    assert found.b.timed_with == list(names) and "timed side by side with cnn INT8 (Default)" in (
        found.b.note
    )
    assert found.sentence == (
        "cnn INT8 (AA) is 1.07× faster than cnn INT8 (Default) (timed side by side, batch 1 × "
        "1 stream, 2 threads each, ONNX Runtime 1.22.1 · AMD EPYC 9B14 (VNNI), 30 Nov 2026, "
        "14:40 UTC)"
    )
    turned = stored_timing(session, b, a, names[::-1])
    assert turned is not None and (turned.a.throughput, turned.b.throughput) == (107, 100)
    assert turned.sentence.startswith("cnn INT8 (Default) is 1.07× slower than cnn INT8 (AA) (")
    # The newest timing of the pair is the one shown.
    session.add(
        PairTimingRow(
            a_id=b.id, b_id=a.id, job_id=9, figures={"a": _perf(100, 5.0), "b": _perf(100, 5.0)}
        )
    )
    session.flush()
    latest = stored_timing(session, a, b, names)
    assert latest is not None and latest.job_id == 9
    assert latest.sentence.startswith("cnn INT8 (AA) and cnn INT8 (Default) run at the same speed")
    # The timings go with either project.
    session.delete(b)
    session.flush()
    assert session.query(PairTimingRow).count() == 0


def test_refusals_name_the_projects_and_say_why(session: Session) -> None:
    parent, a, b = _projects(session)
    assert timing_refusal(session, a, b, together=False) is None
    assert timing_refusal(session, parent, a, together=True) == (
        f"project {a.id} was timed side by side with its parent, project {parent.id}, by its "
        "calibration job: those are the figures shown"
    )
    twin = ProjectRow(model_id=a.model_id, dataset_id=a.dataset_id, target="this machine")
    session.add(twin)
    session.flush()
    assert "hold the same model" in str(timing_refusal(session, a, twin, together=False))
    b.target = "edge-1"
    assert timing_refusal(session, a, b, together=False) == (
        f"project {a.id} runs its jobs on this machine and project {b.id} on target 'edge-1': "
        "two models are timed side by side on one machine, so both projects must name the same "
        "target"
    )
    b.target = "this machine"
    model = session.get(ModelRow, b.model_id)
    assert model is not None
    model.state = "pending"
    assert timing_refusal(session, a, b, together=False) == (
        f"project {b.id}'s model is not ready (pending): its calibration job must finish first"
    )
    with pytest.raises(WorkbenchError, match="is not ready") as refused:
        queue_timing(session, a, b, together=False, seconds=0.2)
    assert refused.value.status == 409


def test_the_queued_job_describes_the_pair_at_the_reference_settings(session: Session) -> None:
    _, a, b = _projects(session)
    job = queue_timing(session, a, b, together=False, seconds=0.5)
    description = SideBySideJob.from_json(job.description)
    assert (description.project_a, description.project_b) == (a.id, b.id)
    assert description.input_paths() == (
        "models/cnn INT8 (Default).onnx",
        "models/cnn INT8 (AA).onnx",
        "datasets/ds-val",
    )
    assert (description.batch, description.streams, description.seconds) == (2, 1, 1.0)
    assert description.target is None and job.project_id is None
    # Asked again, either way round, while it is queued: the same job.
    assert queue_timing(session, b, a, together=False, seconds=0.5).id == job.id
    assert pair_job(session, b.id, a.id) is job
    # Once it has ended, a new one; on the target both projects name, at the settings asked.
    job.state = "cancelled"
    a.target = b.target = "edge-1"
    remote = queue_timing(session, a, b, together=False, seconds=0.5, batch=4, streams=2)
    again = SideBySideJob.from_json(remote.description)
    assert remote.id != job.id and (again.target, again.batch, again.streams) == ("edge-1", 4, 2)
    assert again.stages()[0].value == "preparing assets"  # framed by the upload, as any job
