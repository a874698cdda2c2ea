"""The workbench under careless and hostile use (issue 10): deletes refused while something uses
the thing, ids never reused, words instead of 500s (huge ids, missing files, a full disk, NaN),
no leftovers after a crash or a failed upload, no server paths in messages, and a schema fuzz run
that finds no 500 anywhere."""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from onnx import TensorProto, helper
from sqlalchemy.exc import OperationalError

from calibench.errors import DatasetError
from calibench.server.app import create_app
from calibench.server.db import JobRow, make_engine
from calibench.server.migrate import upgrade
from calibench.server.settings import ServerSettings
from calibench.server.web import uploads
from calibench.server.web.datasets import service as datasets
from calibench.server.web.workbench import Workbench
from tests.server_helpers import reset_postgres

BASE = "http://127.0.0.1:8765"
FINISHED = ("done", "failed", "cancelled")


# helpers ------------------------------------------------------------------------------------------


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


def post_model(client: TestClient, data: bytes, name: str | None = None) -> httpx.Response:
    form = {"name": name} if name else None
    return client.post("/api/models", files={"file": ("model.onnx", data)}, data=form)


def post_dataset(
    client: TestClient, data: bytes, name: str, filename: str = "data.npz"
) -> httpx.Response:
    return client.post("/api/datasets", files={"file": (filename, data)}, data={"name": name})


def npz_bytes(samples: int = 8) -> bytes:
    out = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(out, input=rng.normal(size=(samples, 3, 32, 32)).astype(np.float32))
    return out.getvalue()


def wait_job(client: TestClient, job_id: int, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = ok(client.get(f"/api/jobs/{job_id}"))
        if job["state"] in FINISHED:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is still {job['state']}"
        time.sleep(0.1)


@dataclass
class Idle:
    """A server whose jobs never start, with a model and two datasets."""

    client: TestClient
    workspace: Path
    workbench: Workbench
    model: dict[str, Any]
    val: dict[str, Any]
    cal: dict[str, Any]


@pytest.fixture
def idle(tmp_path: Path, tiny_cnn_path: Path) -> Iterator[Idle]:
    workspace = tmp_path / "ws"
    app = create_app(ServerSettings(workspace=workspace, perf_seconds=0.2), run_jobs=False)
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, tiny_cnn_path.read_bytes(), "tiny"), 201)
        val = ok(post_dataset(client, npz_bytes(), "val"), 201)
        cal = ok(post_dataset(client, npz_bytes(), "cal"), 201)
        yield Idle(client, workspace, app.state.workbench, model, val, cal)


def finished_baseline(idle: Idle) -> dict[str, Any]:
    """A project whose baseline is marked done (the idle server runs no job)."""
    body = {"model_id": idle.model["id"], "dataset_id": idle.val["id"]}
    project: dict[str, Any] = ok(idle.client.post("/api/projects", json=body), 201)
    set_job_state(idle, project["job"]["id"], "done")
    return project


def set_job_state(idle: Idle, job_id: int, state: str) -> None:
    with idle.workbench.sessions.begin() as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        job.state = state


# 1. deletes refused while something uses the thing ------------------------------------------------


def test_a_dataset_calibrating_a_project_cannot_be_deleted(idle: Idle) -> None:
    parent = finished_baseline(idle)
    child = ok(
        idle.client.post(
            f"/api/projects/{parent['id']}/optimize", json={"dataset_id": idle.cal["id"]}
        ),
        201,
    )
    # Queued: its job names the dataset.
    detail = refused(idle.client.delete(f"/api/datasets/{idle.cal['id']}"), 409)
    assert "'cal'" in detail and f"job {child['job']['id']}" in detail
    set_job_state(idle, child["job"]["id"], "running")
    assert "'cal'" in refused(idle.client.delete(f"/api/datasets/{idle.cal['id']}"), 409)
    # Ended: the INT8 project still records it as its calibration dataset (Retry needs it).
    set_job_state(idle, child["job"]["id"], "failed")
    detail = refused(idle.client.delete(f"/api/datasets/{idle.cal['id']}"), 409)
    assert f"project {child['id']}" in detail and "calibration" in detail
    assert ok(idle.client.get(f"/api/datasets/{idle.cal['id']}"))["name"] == "cal"
    # Once the INT8 project is gone, the dataset can go.
    assert idle.client.delete(f"/api/projects/{child['id']}").status_code == 204
    assert idle.client.delete(f"/api/datasets/{idle.cal['id']}").status_code == 204


def test_a_model_or_dataset_named_by_a_live_job_cannot_be_deleted(
    idle: Idle, tiny_cnn_path: Path
) -> None:
    """Even when no project points at it (a job's description is what its worker reads)."""
    spare = ok(post_dataset(idle.client, npz_bytes(), "spare"), 201)
    model = ok(post_model(idle.client, tiny_cnn_path.read_bytes(), "spare model"), 201)
    inputs = {
        "model": f"models/{model['id']}/model.onnx",
        "dataset": f"datasets/{_folder(idle, spare['id'])}",
    }
    with idle.workbench.sessions.begin() as session:
        job = JobRow(
            project_id=None,
            kind="baseline",
            description={"inputs": inputs},
            state="running",
            stages=[],
            cancel_requested=False,
            attempts=1,
        )
        session.add(job)
        session.flush()
        job_id = job.id
    detail = refused(idle.client.delete(f"/api/datasets/{spare['id']}"), 409)
    assert detail == (
        f"dataset 'spare' is used by job {job_id} (running): wait for it to end or cancel it first"
    )
    detail = refused(idle.client.delete(f"/api/models/{model['id']}"), 409)
    assert detail.startswith(f"model 'spare model' is used by job {job_id} (running)")
    set_job_state(idle, job_id, "done")
    assert idle.client.delete(f"/api/datasets/{spare['id']}").status_code == 204
    assert idle.client.delete(f"/api/models/{model['id']}").status_code == 204


def _folder(idle: Idle, dataset_id: int) -> str:
    from calibench.server.db import DatasetRow

    with idle.workbench.sessions() as session:
        row = session.get(DatasetRow, dataset_id)
        assert row is not None
        return Path(row.path).name


# 2. ids never reused ------------------------------------------------------------------------------


def test_ids_are_never_reused_after_a_delete(idle: Idle, tiny_cnn_path: Path) -> None:
    spare = ok(post_dataset(idle.client, npz_bytes(), "spare"), 201)
    assert idle.client.delete(f"/api/datasets/{spare['id']}").status_code == 204
    again = ok(post_dataset(idle.client, npz_bytes(), "again"), 201)
    assert again["id"] > spare["id"]
    model = ok(post_model(idle.client, tiny_cnn_path.read_bytes(), "other"), 201)
    assert idle.client.delete(f"/api/models/{model['id']}").status_code == 204
    model2 = ok(post_model(idle.client, tiny_cnn_path.read_bytes(), "other"), 201)
    assert model2["id"] > model["id"]
    project = finished_baseline(idle)
    assert idle.client.delete(f"/api/projects/{project['id']}").status_code == 204
    project2 = finished_baseline(idle)
    assert project2["id"] > project["id"] and project2["job"]["id"] > project["job"]["id"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'workbench.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    yield url
    reset_postgres(url)


def test_upgrading_a_used_database_keeps_its_rows_and_stops_reusing_ids(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0002")
        stamp = "'2026-01-01 00:00:00'"
        with engine.begin() as connection:
            for n in (1, 2, 3):
                connection.execute(sa.text(
                    "INSERT INTO models (name, path, state, precision, optimizable, size_bytes, "
                    f"info, created_at) VALUES ('m{n}', 'p', 'ready', 'FP32', false, 0, '{{}}', "
                    f"{stamp})"
                ))  # fmt: skip
                connection.execute(sa.text(
                    "INSERT INTO datasets (name, path, task, format, samples, summary, "
                    f"created_at) VALUES ('d{n}', 'p', 'tensors', 'npz', 1, '{{}}', {stamp})"
                ))  # fmt: skip
            connection.execute(sa.text(
                "INSERT INTO projects (model_id, dataset_id, target, settings, created_at) "
                f"VALUES (1, 2, 't', '{{}}', {stamp})"
            ))  # fmt: skip
        upgrade(engine)
        with engine.begin() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM models")).scalar() == 3
            project = connection.execute(sa.text("SELECT model_id, dataset_id FROM projects"))
            assert tuple(project.one()) == (1, 2)
            connection.execute(sa.text("DELETE FROM datasets WHERE id = 3"))
            connection.execute(sa.text(
                "INSERT INTO datasets (name, path, task, format, samples, summary, created_at) "
                f"VALUES ('d4', 'p', 'tensors', 'npz', 1, '{{}}', {stamp})"
            ))  # fmt: skip
            ids = connection.execute(sa.text("SELECT id FROM datasets ORDER BY id")).scalars()
            assert list(ids) == [1, 2, 4]
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
                assert not connection.execute(sa.text("PRAGMA foreign_key_check")).all()
                sql = connection.execute(
                    sa.text("SELECT group_concat(sql) FROM sqlite_master WHERE type='table'")
                ).scalar()
                assert str(sql).count("AUTOINCREMENT") == 5  # with pair_timings
    finally:
        engine.dispose()


# 3. words instead of 500s -------------------------------------------------------------------------


@pytest.mark.parametrize("number", [2**63, 2**64 + 5, -(2**63) - 1, 2**31])
def test_ids_beyond_any_row_are_not_found(idle: Idle, number: int) -> None:
    client = idle.client
    for what, path in (
        ("model", f"/api/models/{number}"),
        ("model", f"/api/models/{number}/layers"),
        ("model", f"/api/models/{number}/file"),
        ("dataset", f"/api/datasets/{number}"),
        ("project", f"/api/projects/{number}"),
        ("project", f"/api/projects/{number}/compare"),
        ("job", f"/api/jobs/{number}"),
        ("job", f"/api/jobs/{number}/log"),
    ):
        assert refused(client.get(path), 404) == f"there is no {what} {number}", path
    assert refused(client.delete(f"/api/datasets/{number}"), 404).startswith("there is no")
    assert refused(client.post(f"/api/jobs/{number}/cancel"), 404).startswith("there is no")
    body = {"model_id": number, "dataset_id": idle.val["id"]}
    assert refused(client.post("/api/projects", json=body), 404).startswith("there is no model")
    page = client.get(f"/projects/{number}")
    assert page.status_code == 404 and "there is no project" in page.text


def test_downloading_a_model_whose_file_is_gone_says_so(idle: Idle) -> None:
    (idle.workspace / "models" / str(idle.model["id"]) / "model.onnx").unlink()
    detail = refused(idle.client.get(f"/api/models/{idle.model['id']}/file"), 410)
    assert "'tiny'" in detail and "missing" in detail
    assert str(idle.workspace) not in detail


def _full(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_507_for_writes_and_reads_keep_working(
    idle: Idle, tiny_cnn_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "_write_chunk", _full)
    detail = refused(post_model(idle.client, tiny_cnn_path.read_bytes(), "more"), 507)
    assert detail.startswith("the workspace disk is full (") and detail.endswith("MB free)")
    refused(post_dataset(idle.client, npz_bytes(), "more"), 507)
    # The upload's folder does not stay behind.
    assert list((idle.workspace / "uploads").iterdir()) == []
    # The same from SQLite, in any write.
    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    def full_db(*_: Any, **__: Any) -> None:
        raise full

    monkeypatch.setattr(Workbench, "create_project", full_db)
    body = {"model_id": idle.model["id"], "dataset_id": idle.val["id"]}
    assert "disk is full" in refused(idle.client.post("/api/projects", json=body), 507)
    page = idle.client.post(
        "/projects/new",
        data={"csrf_token": _csrf(idle.client), "model_id": str(idle.model["id"]),
              "dataset_id": str(idle.val["id"])},
    )  # fmt: skip
    assert page.status_code == 507 and "the workspace disk is full" in page.text

    # A full disk met by the importer, through the import page.
    def import_full(*_: Any, **__: Any) -> None:
        try:
            _full()
        except OSError as error:
            raise DatasetError(f"cannot create a folder in datasets ({error})") from error

    monkeypatch.setattr(uploads, "_write_chunk", lambda out, chunk: out.write(chunk))
    monkeypatch.setattr(datasets, "import_dataset", import_full)
    page = idle.client.post(
        "/datasets/import",
        data={"csrf_token": _csrf(idle.client), "name": "more"},
        files={"file": ("more.npz", npz_bytes())},
    )
    assert page.status_code == 507 and "the workspace disk is full" in page.text
    assert list((idle.workspace / "uploads").iterdir()) == []
    # Reads keep working.
    assert ok(idle.client.get("/api/models"))[0]["name"] == "tiny"
    assert idle.client.get("/").status_code == 200
    assert idle.client.get(f"/datasets/{idle.val['id']}").status_code == 200


def _csrf(client: TestClient) -> str:
    assert client.get("/").status_code == 200
    return str(client.cookies.get("calibench_csrf"))


def _post_json(client: TestClient, path: str, text: str) -> httpx.Response:
    return client.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_in_json(idle: Idle, bad: str) -> None:
    parent = finished_baseline(idle)
    optimize = f"/api/projects/{parent['id']}/optimize"
    cal = idle.cal["id"]
    for body, field in (
        (f'{{"dataset_id": {cal}, "method": "accuracy-aware", "max_drop": {bad}}}', "max_drop"),
        (f'{{"dataset_id": {cal}, "subset_percent": {bad}}}', "subset_percent"),
        (f'{{"dataset_id": {cal}, "placement_budget_s": {bad}}}', "placement_budget_s"),
    ):
        detail = refused(_post_json(idle.client, optimize, body), 422)
        assert field in detail and "finite" in detail, detail
    model, val = idle.model["id"], idle.val["id"]
    for preprocess in (f'{{"mean": [{bad}, 0, 0]}}', f'{{"scale": {bad}}}', f'{{"std": {bad}}}'):
        body = f'{{"model_id": {model}, "dataset_id": {val}, "preprocess": {preprocess}}}'
        response = _post_json(idle.client, "/api/projects", body)
        assert response.status_code in (400, 422), response.text
        assert "finite" in response.json()["detail"]
    # Nothing was stored.
    assert len(ok(idle.client.get("/api/projects"))) == 1


def test_non_finite_numbers_are_refused_in_forms(idle: Idle) -> None:
    parent = finished_baseline(idle)
    token = _csrf(idle.client)
    bad = (("max_drop", "nan"), ("subset", "inf"), ("max_drop", "-infinity"))
    for field, value in (*bad, ("placement_budget", "inf")):
        form = {"csrf_token": token, "dataset_id": str(idle.cal["id"]),
                "method": "default", "max_drop": "1", field: value}  # fmt: skip
        page = idle.client.post(f"/projects/{parent['id']}/optimize", data=form)
        assert page.status_code == 400 and "finite" in page.text, page.text[-2000:]
    for field, value in (("mean", "nan,nan,nan"), ("std", "1,inf,1"), ("scale", "nan")):
        form = {"csrf_token": token, "model_id": str(idle.model["id"]),
                "dataset_id": str(idle.val["id"]), field: value}  # fmt: skip
        page = idle.client.post("/projects/new", data=form)
        assert page.status_code == 400 and "finite" in page.text, page.text[-2000:]
    assert len(ok(idle.client.get("/api/projects"))) == 1


# 4. leftovers -------------------------------------------------------------------------------------


def test_start_sweeps_what_a_killed_server_left(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    old = time.time() - 3600
    leftovers = [
        workspace / "datasets" / ".ds-0123456789ab.k2j3.partial" / "cls",
        workspace / "uploads" / "upload-abc123",
    ]
    for folder in leftovers:
        folder.mkdir(parents=True)
        (folder / "big.bin").write_bytes(b"x" * 100)
    live = workspace / "uploads" / "upload-live"  # another server is writing it now
    live.mkdir()
    (live / "upload.zip").write_bytes(b"x")
    kept = workspace / "datasets" / "ds-0123456789ab"  # a dataset, not a leftover
    kept.mkdir()
    for path in [*workspace.rglob("*")]:
        if live not in (path, *path.parents):
            os.utime(path, (old, old))
    future = time.time() + 60
    os.utime(live / "upload.zip", (future, future))
    create_app(ServerSettings(workspace=workspace), run_jobs=False)
    assert not leftovers[0].parent.exists()
    assert not leftovers[1].exists()
    assert live.exists() and kept.exists()


# 5. no server paths in messages -------------------------------------------------------------------


def _external_model(tmp_path: Path) -> bytes:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    weight.data_location = TensorProto.EXTERNAL
    del weight.float_data[:]
    for key, value in (("location", "upload.onnx"), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


def test_a_model_with_external_data_is_refused_at_upload(idle: Idle, tmp_path: Path) -> None:
    detail = refused(post_model(idle.client, _external_model(tmp_path), "ext"), 400)
    assert "models with external data files cannot be uploaded" in detail
    assert "save_as_external_data=False" in detail
    assert [m["name"] for m in ok(idle.client.get("/api/models"))] == ["tiny"]
    assert list((idle.workspace / "uploads").iterdir()) == []


def _no_server_path(text: str, workspace: Path) -> None:
    for root in {str(workspace), str(workspace.resolve()), str(workspace.parent)}:
        assert root not in text, text


def test_dataset_summaries_and_import_errors_name_no_server_path(idle: Idle) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        from PIL import Image

        for i in range(3):
            image = io.BytesIO()
            Image.new("RGB", (8, 8), (i, 0, 0)).save(image, format="PNG")
            archive.writestr(f"cls/{i}.png", image.getvalue())
        archive.writestr("cls/broken.png", b"not a png at all")
    summary = ok(post_dataset(idle.client, out.getvalue(), "photos", "photos.zip"), 201)
    _no_server_path(json.dumps(summary), idle.workspace)
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("readme.txt", b"nothing to see")
    detail = refused(post_dataset(idle.client, bad.getvalue(), "bad", "bad.zip"), 400)
    _no_server_path(detail, idle.workspace)
    detail = refused(post_dataset(idle.client, b"garbage", "bad2", "bad2.npz"), 400)
    _no_server_path(detail, idle.workspace)
    detail = refused(post_model(idle.client, b"garbage", "bad3"), 400)
    _no_server_path(detail, idle.workspace)


def test_job_messages_name_no_server_path(tmp_path: Path, tiny_cnn_path: Path) -> None:
    workspace = tmp_path / "ws"
    app = create_app(ServerSettings(workspace=workspace, perf_seconds=0.1))
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, tiny_cnn_path.read_bytes(), "victim2"), 201)
        other = ok(post_model(client, tiny_cnn_path.read_bytes(), "other"), 201)
        data = ok(post_dataset(client, npz_bytes(), "data"), 201)
        gone = ok(post_dataset(client, npz_bytes(), "gone"), 201)
        (workspace / "models" / str(model["id"]) / "model.onnx").unlink()
        with app.state.workbench.sessions() as session:
            from calibench.server.db import DatasetRow

            row = session.get(DatasetRow, gone["id"])
            assert row is not None
            import shutil

            shutil.rmtree(workspace / row.path)
        jobs = []
        for model_id, dataset_id in ((model["id"], data["id"]), (other["id"], gone["id"])):
            body = {"model_id": model_id, "dataset_id": dataset_id}
            jobs.append(ok(client.post("/api/projects", json=body), 201)["job"]["id"])
        messages = [wait_job(client, job_id) for job_id in jobs]
        for job in messages:
            assert job["state"] == "failed"
            _no_server_path(job["message"], workspace)
            assert "/'" not in job["message"], job["message"]
        assert "'victim2'" in messages[0]["message"], messages[0]["message"]


# 6. fuzzing ---------------------------------------------------------------------------------------


def test_no_generated_request_gets_a_500(tmp_path: Path, tiny_cnn_path: Path) -> None:
    """Schemathesis generates requests from the OpenAPI schema for every endpoint; none may get
    a 500 (in-process, no job runs, bounded: a few hundred requests in all)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.core.result import Ok

    app = create_app(ServerSettings(workspace=tmp_path / "ws", perf_seconds=0.1), run_jobs=False)
    with TestClient(app, base_url=BASE) as client:
        ok(post_model(client, tiny_cnn_path.read_bytes(), "tiny"), 201)
        ok(post_dataset(client, npz_bytes(), "val"), 201)
        body = {"model_id": 1, "dataset_id": 1}
        ok(client.post("/api/projects", json=body), 201)
        host = {"Host": "127.0.0.1:8765"}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=host)
        failures: list[str] = []
        results = list(schema.get_all_operations())
        operations = [result.ok() for result in results if isinstance(result, Ok)]
        assert len(operations) == len(results) >= 15
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call(headers=host)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.path_parameters} "
                        f"{case.query} {str(case.body)[:200]} → {response.status_code} "
                        f"{response.text[:200]}"
                    )

            check()
        assert not failures, "\n".join(failures[:20])
