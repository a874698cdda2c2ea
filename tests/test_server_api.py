"""The workbench's JSON API, endpoint by endpoint: each one's success, and the exact status and
words of its refusals; the security guard (Host, token, Origin, form tokens); cancelling and
retrying jobs; and one full path from uploads to an INT8 model and its comparison.

Jobs run in real worker subprocesses. Most tests share one server whose project has finished
its baseline (``bench``); tests that need jobs to stay queued use a server without a job runner
(``idle``), where nothing ever starts.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient

from calibench.errors import ConfigError
from calibench.model.load import DERIVED_KEY
from calibench.report.comparison import speed_words
from calibench.runtime.isa import host_cpu
from calibench.server.app import create_app
from calibench.server.settings import ServerSettings

BASE = "http://127.0.0.1:8765"
FINISHED = ("done", "failed", "cancelled")
TIMEOUT = 120.0


# helpers ------------------------------------------------------------------------------------------


def job_log(client: TestClient, job_id: int) -> str:
    return client.get(f"/api/jobs/{job_id}/log").text


def wait_job(client: TestClient, job_id: int, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Poll the job until it has ended; fail with its log when it takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["state"] in FINISHED:
            return job
        if time.monotonic() > deadline:
            pytest.fail(
                f"job {job_id} is still {job['state']} after {timeout:.0f} s; its log:\n"
                + job_log(client, job_id)
            )
        time.sleep(0.1)


def wait_done(client: TestClient, job_id: int) -> dict[str, Any]:
    job = wait_job(client, job_id)
    assert job["state"] == "done", (
        f"job {job_id} ended {job['state']}: {job['message']}\nits log:\n{job_log(client, job_id)}"
    )
    return job


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def refused(response: httpx.Response, status: int) -> str:
    """The words of a JSON refusal with this status."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


def post_model(
    client: TestClient,
    path: Path | None = None,
    name: str | None = None,
    *,
    filename: str | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    data = path.read_bytes() if content is None and path is not None else content or b""
    upload = filename or (path.name if path is not None else "model.onnx")
    form = {"name": name} if name is not None else None
    return client.post("/api/models", files={"file": (upload, data)}, data=form)


def post_dataset(
    client: TestClient,
    path: Path | None = None,
    name: str | None = None,
    kind: str | None = None,
    *,
    filename: str | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    data = path.read_bytes() if content is None and path is not None else content or b""
    upload = filename or (path.name if path is not None else "data.zip")
    form = {k: v for k, v in (("name", name), ("type", kind)) if v is not None}
    return client.post("/api/datasets", files={"file": (upload, data)}, data=form or None)


def snapshot(root: Path) -> set[str]:
    """Every path under ``root`` but the database's own files (which change on every write)."""
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith("workbench.db")
    }


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (28, 28), 128).save(out, format="PNG")
    return out.getvalue()


def hostile_tar(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("cls/a.png", png_bytes()), ("../../evil.txt", b"owned")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def hostile_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cls/a.png", png_bytes())
        archive.writestr("../evil.txt", b"owned")
    return path


def csrf_cookie(client: TestClient) -> str:
    """The form token: the server sets its cookie on any page."""
    assert client.get("/").status_code == 200
    token = client.cookies.get("calibench_csrf")
    assert token
    return str(token)


# servers ------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """A running server with the Fashion model, three datasets and two finished baselines."""

    client: TestClient
    workspace: Path
    model: dict[str, Any]
    val: dict[str, Any]
    cal: dict[str, Any]
    plain: dict[str, Any]
    created: dict[str, Any]
    """The project as POST /api/projects answered."""
    project: dict[str, Any]
    """The same project once its baseline has finished."""
    plain_project: dict[str, Any]


@pytest.fixture(scope="module")
def bench(
    tmp_path_factory: pytest.TempPathFactory, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> Iterator[Bench]:
    workspace = tmp_path_factory.mktemp("bench") / "ws"
    app = create_app(ServerSettings(workspace=workspace, perf_seconds=0.2))
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn), 201)
        val = ok(post_dataset(client, fashion_archives["val"]), 201)
        cal = ok(post_dataset(client, fashion_archives["cal"]), 201)
        plain = ok(post_dataset(client, fashion_archives["plain"]), 201)
        created = ok(
            client.post("/api/projects", json={"model_id": model["id"], "dataset_id": val["id"]}),
            201,
        )
        on_plain = ok(
            client.post("/api/projects", json={"model_id": model["id"], "dataset_id": plain["id"]}),
            201,
        )
        wait_done(client, created["job"]["id"])
        wait_done(client, on_plain["job"]["id"])
        project = ok(client.get(f"/api/projects/{created['id']}"))
        plain_project = ok(client.get(f"/api/projects/{on_plain['id']}"))
        yield Bench(client, workspace, model, val, cal, plain, created, project, plain_project)


@dataclass
class Calibrated:
    default: dict[str, Any]
    """The Default INT8 project as POST .../optimize answered."""
    accuracy_aware: dict[str, Any]
    default_job: dict[str, Any]
    accuracy_aware_job: dict[str, Any]


@pytest.fixture(scope="module")
def calibrated(bench: Bench) -> Calibrated:
    client, parent = bench.client, bench.project["id"]
    default = ok(
        client.post(f"/api/projects/{parent}/optimize", json={"dataset_id": bench.cal["id"]}), 201
    )
    accuracy_aware = ok(
        client.post(
            f"/api/projects/{parent}/optimize",
            json={
                "dataset_id": bench.cal["id"],
                "method": "accuracy-aware",
                "max_drop": 1,
                "drop_type": "relative",
            },
        ),
        201,
    )
    return Calibrated(
        default,
        accuracy_aware,
        wait_done(client, default["job"]["id"]),
        wait_done(client, accuracy_aware["job"]["id"]),
    )


@dataclass
class Idle:
    """A server whose jobs never start (no job runner): queued stays queued."""

    client: TestClient
    root: Path
    workspace: Path
    model: dict[str, Any]
    val: dict[str, Any]


@pytest.fixture(scope="module")
def idle(
    tmp_path_factory: pytest.TempPathFactory, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> Iterator[Idle]:
    root = tmp_path_factory.mktemp("idle")
    app = create_app(ServerSettings(workspace=root / "ws", perf_seconds=0.2), run_jobs=False)
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn), 201)
        val = ok(post_dataset(client, fashion_archives["val"]), 201)
        yield Idle(client, root, root / "ws", model, val)


def idle_project(idle: Idle) -> dict[str, Any]:
    body = {"model_id": idle.model["id"], "dataset_id": idle.val["id"]}
    project: dict[str, Any] = ok(idle.client.post("/api/projects", json=body), 201)
    return project


def wait_collected(client: TestClient, job_id: int, timeout: float = 30.0) -> None:
    """Wait until the server no longer counts the ended job's worker as running."""
    deadline = time.monotonic() + timeout
    while job_id in ok(client.get("/api/health"))["running_jobs"]:
        assert time.monotonic() < deadline, f"job {job_id}'s worker was never collected"
        time.sleep(0.05)


def start_calibration(bench: Bench, **settings: Any) -> dict[str, Any]:
    body = {"dataset_id": bench.cal["id"], **settings}
    child: dict[str, Any] = ok(
        bench.client.post(f"/api/projects/{bench.project['id']}/optimize", json=body), 201
    )
    return child


# health, schema, docs -----------------------------------------------------------------------------


def test_health(bench: Bench) -> None:
    health = ok(bench.client.get("/api/health"))
    assert health["status"] == "ok"
    assert isinstance(health["running_jobs"], list)
    assert refused(bench.client.post("/api/health"), 405) == "Method Not Allowed"


API_PATHS = {
    "/api/health": {"get"},
    "/api/models": {"get", "post"},
    "/api/models/{model_id}": {"get", "delete"},
    "/api/models/{model_id}/layers": {"get"},
    "/api/models/{model_id}/file": {"get"},
    "/api/datasets": {"get", "post"},
    "/api/datasets/{dataset_id}": {"get", "delete"},
    "/api/projects": {"get", "post"},
    "/api/projects/{project_id}": {"get", "delete"},
    "/api/projects/{project_id}/optimize": {"post"},
    "/api/projects/{project_id}/compare": {"get"},
    "/api/compare": {"get"},
    "/api/compare/timing": {"post"},
    "/api/jobs": {"get"},
    "/api/jobs/{job_id}": {"get"},
    "/api/jobs/{job_id}/log": {"get"},
    "/api/jobs/{job_id}/cancel": {"post"},
    "/api/jobs/{job_id}/retry": {"post"},
    "/api/targets": {"get", "post"},
    "/api/targets/{name}": {"get", "delete"},
    "/api/targets/{name}/check": {"post"},
    "/api/targets/{name}/setup": {"post"},
    "/api/models/{model_id}/fleet": {"get"},
}


def test_openapi_schema_lists_every_endpoint(bench: Bench) -> None:
    schema = ok(bench.client.get("/openapi.json"))
    assert schema["info"]["title"] == "calibench workbench"
    paths = {path: set(methods) for path, methods in schema["paths"].items()}
    assert paths == API_PATHS  # the pages and /api/docs stay out of the schema
    components = schema["components"]["schemas"]
    assert {"ProjectCreate", "OptimizeRequest"} <= set(components)
    method = components["OptimizeRequest"]["properties"]["method"]
    assert method["pattern"] == "^(default|accuracy-aware)$"
    # Wrong method on the schema: 405.
    assert refused(bench.client.post("/openapi.json"), 405) == "Method Not Allowed"


def test_api_docs_page_is_served_locally(bench: Bench) -> None:
    response = bench.client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for path in API_PATHS:
        assert path in page, path
    assert "OptimizeRequest" in page
    assert "cdn" not in page.lower()  # no Swagger UI from a CDN
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    detail = refused(bench.client.get("/api/docs/nothing"), 404)
    assert detail == "there is no page /api/docs/nothing"


# models -------------------------------------------------------------------------------------------


def test_upload_model_registers_an_fp32_model(bench: Bench, fashion_cnn: Path) -> None:
    model = bench.model
    assert model["name"] == "fashion_cnn"  # from the file name, without .onnx
    assert model["state"] == "ready"
    assert model["precision"] == "FP32"
    assert model["optimizable"] is True and model["reason"] is None
    assert model["parent_id"] is None
    assert model["size_bytes"] == fashion_cnn.stat().st_size
    assert model["info"]["inputs"] == [{"name": "input", "shape": ["batch", 1, 28, 28]}]
    assert model["info"]["outputs"][0]["shape"] == ["batch", 10]
    assert model["info"]["ops"]["Conv"] >= 1
    # A chosen name wins over the file's.
    named = ok(post_model(bench.client, fashion_cnn, name="Fashion (copy)"), 201)
    assert named["name"] == "Fashion (copy)" and named["id"] != model["id"]


def test_list_models(bench: Bench) -> None:
    models = ok(bench.client.get("/api/models"))
    assert [m["id"] for m in models] == sorted(m["id"] for m in models)
    first = next(m for m in models if m["id"] == bench.model["id"])
    assert first["name"] == bench.model["name"] and first["precision"] == "FP32"


def test_upload_model_of_the_wrong_type_is_415(idle: Idle, fashion_cnn: Path) -> None:
    before = ok(idle.client.get("/api/models"))
    detail = refused(post_model(idle.client, fashion_cnn, filename="model.txt"), 415)
    assert "must be a .onnx file" in detail and "model.txt" in detail
    detail = refused(post_model(idle.client, fashion_cnn, filename="model.onnx.zip"), 415)
    assert ".onnx" in detail
    assert ok(idle.client.get("/api/models")) == before
    assert list((idle.workspace / "uploads").iterdir()) == []


def test_upload_empty_model_is_400(idle: Idle) -> None:
    detail = refused(post_model(idle.client, filename="empty.onnx", content=b""), 400)
    assert detail == "the model is empty"
    assert list((idle.workspace / "uploads").iterdir()) == []


def test_upload_corrupt_onnx_is_400(idle: Idle) -> None:
    before = ok(idle.client.get("/api/models"))
    junk = b"this is not a protobuf \x00\xff" * 100
    detail = refused(post_model(idle.client, filename="broken.onnx", content=junk), 400)
    assert "'broken.onnx' is not a usable ONNX model" in detail
    # The server's temporary path stays private.
    assert str(idle.workspace) not in detail and "upload-" not in detail
    assert ok(idle.client.get("/api/models")) == before
    assert list((idle.workspace / "uploads").iterdir()) == []


def test_upload_model_with_bad_name_is_400(idle: Idle, fashion_cnn: Path) -> None:
    before = snapshot(idle.root)
    detail = refused(post_model(idle.client, fashion_cnn, name="../evil"), 400)
    assert "model name '../evil' is not allowed" in detail
    assert snapshot(idle.root) == before


def test_upload_model_without_a_file_is_422(idle: Idle) -> None:
    response = idle.client.post("/api/models", data={"name": "nothing"})
    detail = refused(response, 422)
    assert "file" in detail and "required" in detail.lower()


def test_upload_larger_than_the_limit_is_413(tmp_path: Path, fashion_cnn: Path) -> None:
    """The model (480 kB) is over a 50 kB limit, but within the multipart slack the guard allows
    before reading: the service refuses it while copying."""
    settings = ServerSettings(workspace=tmp_path / "ws", max_upload_mb=0.05)
    with TestClient(create_app(settings, run_jobs=False), base_url=BASE) as client:
        assert fashion_cnn.stat().st_size > 50_000
        detail = refused(post_model(client, fashion_cnn), 413)
        assert "the model is larger than the upload limit" in detail
        assert "--max-upload-mb" in detail
        detail = refused(post_dataset(client, content=b"x" * 60_000, filename="big.zip"), 413)
        assert "the dataset is larger than the upload limit" in detail
        assert ok(client.get("/api/models")) == [] and ok(client.get("/api/datasets")) == []
        assert list((tmp_path / "ws" / "uploads").iterdir()) == []
        # Within the limit the upload is read: this one is then refused for what it holds.
        response = post_dataset(client, content=b"y" * 1000, filename="small.zip")
        assert refused(response, 400).startswith("'small.zip' could not be imported")


def test_upload_limit_message_names_the_real_limit(tmp_path: Path, fashion_cnn: Path) -> None:
    settings = ServerSettings(workspace=tmp_path / "ws", max_upload_mb=0.05)
    with TestClient(create_app(settings, run_jobs=False), base_url=BASE) as client:
        detail = refused(post_model(client, fashion_cnn), 413)
        assert "0.05 MB" in detail, detail  # not "the upload limit of 0 MB"


def test_content_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    settings = ServerSettings(workspace=tmp_path / "ws", max_upload_mb=0.05)
    with TestClient(create_app(settings, run_jobs=False), base_url=BASE) as client:
        # A real body larger than the limit plus the multipart slack.
        body = b"z" * 1_200_000
        detail = refused(client.post("/api/models", files={"file": ("big.onnx", body)}), 413)
        assert detail.startswith("the upload is larger than the limit")
        # A declared length is enough: the guard answers before the body is read.
        response = client.post(
            "/api/datasets",
            content=b"--x--\r\n",
            headers={
                "content-type": "multipart/form-data; boundary=x",
                "content-length": "5000000000",
            },
        )
        assert refused(response, 413).startswith("the upload is larger than the limit")
        assert list((tmp_path / "ws" / "uploads").iterdir()) == []
        assert ok(client.get("/api/models")) == []


def test_get_model(bench: Bench) -> None:
    model = ok(bench.client.get(f"/api/models/{bench.model['id']}"))
    assert model == ok(bench.client.get("/api/models"))[0]
    assert model["name"] == "fashion_cnn"
    assert refused(bench.client.get("/api/models/999"), 404) == "there is no model 999"
    detail = refused(bench.client.get("/api/models/abc"), 422)
    assert "model_id" in detail and "integer" in detail


def test_model_layers_after_the_baseline(bench: Bench) -> None:
    layers = ok(bench.client.get(f"/api/models/{bench.model['id']}/layers"))
    assert layers, "the baseline makes the layer table"
    assert {"name", "op_type", "precision", "output_precision", "reason"} <= set(layers[0])
    assert {row["precision"] for row in layers} == {"FP32"}
    assert any(row["op_type"] == "Conv" for row in layers)
    assert refused(bench.client.get("/api/models/999/layers"), 404) == "there is no model 999"


def test_model_layers_before_any_inference_is_409(idle: Idle) -> None:
    detail = refused(idle.client.get(f"/api/models/{idle.model['id']}/layers"), 409)
    assert "layer table" in detail and "has not finished" in detail


def test_model_file_returns_the_uploaded_bytes(bench: Bench, fashion_cnn: Path) -> None:
    response = bench.client.get(f"/api/models/{bench.model['id']}/file")
    assert response.status_code == 200
    assert response.content == fashion_cnn.read_bytes()
    assert 'filename="fashion_cnn.onnx"' in response.headers["content-disposition"]
    assert refused(bench.client.get("/api/models/999/file"), 404) == "there is no model 999"


# datasets -----------------------------------------------------------------------------------------


def test_upload_datasets(bench: Bench) -> None:
    val, cal, plain = bench.val, bench.cal, bench.plain
    assert (val["name"], val["task"], val["annotated"]) == ("val", "classification", True)
    assert val["samples"] == 200 and val["format"] == "class-folders"
    assert val["summary"]["classes"] == 10 and val["summary"]["source"] == "val.tar.gz"
    assert "path" not in val["summary"]  # no server paths in views
    assert (cal["name"], cal["samples"], cal["annotated"]) == ("cal", 100, True)
    assert (plain["name"], plain["samples"], plain["annotated"]) == ("plain", 30, False)
    assert plain["task"] != "classification"


def test_list_and_get_datasets(bench: Bench) -> None:
    datasets = ok(bench.client.get("/api/datasets"))
    names = [d["name"] for d in datasets]
    assert names[:3] == ["val", "cal", "plain"]
    one = ok(bench.client.get(f"/api/datasets/{bench.cal['id']}"))
    assert one == next(d for d in datasets if d["id"] == bench.cal["id"])
    assert refused(bench.client.get("/api/datasets/999"), 404) == "there is no dataset 999"


def test_upload_dataset_of_the_wrong_type_is_415(idle: Idle) -> None:
    before = snapshot(idle.root)
    detail = refused(post_dataset(idle.client, content=b"Rar!", filename="data.rar"), 415)
    assert "the dataset must be a .zip, .tar, .tar.gz, .tgz, .npz file" in detail
    assert "data.rar" in detail
    assert snapshot(idle.root) == before


def test_upload_empty_dataset_is_400(idle: Idle) -> None:
    detail = refused(post_dataset(idle.client, content=b"", filename="empty.zip"), 400)
    assert detail == "the dataset is empty"


def test_upload_corrupt_archive_is_400(idle: Idle) -> None:
    before = snapshot(idle.root)
    response = post_dataset(idle.client, content=b"PK not really" * 50, filename="broken.zip")
    detail = refused(response, 400)
    assert detail.startswith("'broken.zip' could not be imported")
    assert str(idle.workspace) not in detail
    assert snapshot(idle.root) == before


def test_upload_dataset_of_an_unknown_type_is_400(idle: Idle, fashion_archives: dict) -> None:
    response = post_dataset(idle.client, fashion_archives["cal"], name="typed", kind="weird")
    detail = refused(response, 400)
    assert detail.startswith("unknown dataset type 'weird'") and "classification" in detail


def test_duplicate_dataset_name_is_409(idle: Idle, fashion_archives: dict) -> None:
    first = ok(post_dataset(idle.client, fashion_archives["cal"], name="dup"), 201)
    assert first["name"] == "dup"
    before = snapshot(idle.root)
    detail = refused(post_dataset(idle.client, fashion_archives["cal"], name="dup"), 409)
    assert detail == "a dataset named 'dup' exists already"
    assert snapshot(idle.root) == before
    assert [d["name"] for d in ok(idle.client.get("/api/datasets"))].count("dup") == 1


def test_dataset_name_with_path_traversal_is_400(idle: Idle, fashion_archives: dict) -> None:
    before = snapshot(idle.root)
    count = len(ok(idle.client.get("/api/datasets")))
    for name in ("../evil", "/tmp/evil", "..", "a/../../evil"):
        detail = refused(post_dataset(idle.client, fashion_archives["cal"], name=name), 400)
        assert f"dataset name {name!r} is not allowed" in detail
    assert snapshot(idle.root) == before
    assert not (idle.root / "evil").exists() and not (idle.workspace / "evil").exists()
    assert len(ok(idle.client.get("/api/datasets"))) == count


def test_upload_file_name_with_traversal_is_only_a_display_name(
    idle: Idle, fashion_archives: dict
) -> None:
    before = snapshot(idle.root)
    data = fashion_archives["cal"].read_bytes()
    dataset = ok(post_dataset(idle.client, content=data, filename="../../escape.zip"), 201)
    assert dataset["name"] == "escape" and dataset["samples"] == 100
    added = snapshot(idle.root) - before
    assert added and all(p.startswith("ws/datasets/ds-") for p in added), added
    assert not any("escape" in p for p in added)  # stored under a generated folder name


@pytest.mark.parametrize("make", [hostile_tar, hostile_zip], ids=["tar", "zip"])
def test_archive_with_a_parent_member_is_refused(idle: Idle, tmp_path: Path, make: Any) -> None:
    archive = make(tmp_path / ("hostile.tar.gz" if make is hostile_tar else "hostile.zip"))
    before = snapshot(idle.root)
    count = len(ok(idle.client.get("/api/datasets")))
    detail = refused(post_dataset(idle.client, archive, name=f"hostile {archive.suffix}"), 400)
    assert detail.startswith(f"{archive.name!r} could not be imported")
    assert "climbs out of the folder with '..'" in detail and "refusing to unpack" in detail
    assert str(idle.workspace) not in detail  # the upload's server path is hidden
    assert snapshot(idle.root) == before  # nothing unpacked, no half-made folder left
    assert not list(idle.root.parent.rglob("evil.txt"))
    assert len(ok(idle.client.get("/api/datasets"))) == count


# projects -----------------------------------------------------------------------------------------


def test_create_project_queues_its_baseline(bench: Bench) -> None:
    created = bench.created
    assert created["model"]["id"] == bench.model["id"]
    assert created["dataset"]["id"] == bench.val["id"]
    assert created["precision"] == "FP32" and created["parent_id"] is None
    assert created["settings"] == {
        "batch": 1, "streams": 1, "runtime": "onnxruntime", "preprocess": None, "metric": None,
    }  # fmt: skip
    assert created["job"]["kind"] == "baseline"
    assert created["status"] in ("queued", "running")
    assert [s["name"] for s in created["job"]["stages"]] == ["accuracy", "performance", "layers"]
    assert created["optimize"]["enabled"] is False
    assert "baseline" in created["optimize"]["reason"]


def test_get_project_after_its_baseline(bench: Bench) -> None:
    project = ok(bench.client.get(f"/api/projects/{bench.project['id']}"))
    assert project["status"] == "done" and project["job"]["percent"] == 100
    assert project["accuracy"]["metric"] == "top1"
    assert project["accuracy"]["figures"]["top1"] > 50  # a trained model on real images
    assert project["throughput"] > 0 and project["latency_ms"] > 0
    assert project["optimize"] == {"enabled": True, "reason": None}
    assert project["name"] == "fashion_cnn × val × this machine"
    assert refused(bench.client.get("/api/projects/999"), 404) == "there is no project 999"


def test_baseline_without_annotations_has_no_accuracy(bench: Bench) -> None:
    project = bench.plain_project
    assert project["status"] == "done"
    assert project["accuracy"] is None
    assert project["throughput"] > 0


def test_list_projects(bench: Bench) -> None:
    projects = ok(bench.client.get("/api/projects"))
    ids = [p["id"] for p in projects]
    assert bench.project["id"] in ids and bench.plain_project["id"] in ids
    assert ids == sorted(ids)


def test_create_project_with_unknown_ids_is_404(bench: Bench) -> None:
    client = bench.client
    body = {"model_id": 999, "dataset_id": bench.val["id"]}
    assert refused(client.post("/api/projects", json=body), 404) == "there is no model 999"
    body = {"model_id": bench.model["id"], "dataset_id": 998}
    assert refused(client.post("/api/projects", json=body), 404) == "there is no dataset 998"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"batch": 0}, "batch: Input should be greater than or equal to 1"),
        ({"batch": 2000}, "batch: Input should be less than or equal to 1024"),
        ({"streams": 0}, "streams: Input should be greater than or equal to 1"),
        ({"batch": "many"}, "batch: Input should be a valid integer"),
        ({"model_id": None}, "model_id: Input should be a valid integer"),
    ],
)
def test_create_project_with_invalid_settings_is_422(
    bench: Bench, change: dict[str, Any], words: str
) -> None:
    before = len(ok(bench.client.get("/api/projects")))
    body = {"model_id": bench.model["id"], "dataset_id": bench.val["id"], **change}
    response = bench.client.post("/api/projects", json=body)
    detail = refused(response, 422)
    assert words in detail
    assert response.json()["errors"]
    assert len(ok(bench.client.get("/api/projects"))) == before


def test_create_project_without_fields_is_422(bench: Bench) -> None:
    detail = refused(bench.client.post("/api/projects", json={}), 422)
    assert "model_id: Field required" in detail and "dataset_id: Field required" in detail
    detail = refused(bench.client.post("/api/projects", content=b"{not json"), 422)
    assert detail


def test_create_project_with_invalid_preprocessing_is_400(bench: Bench) -> None:
    body = {
        "model_id": bench.model["id"],
        "dataset_id": bench.val["id"],
        "preprocess": {"colour": "purple"},
    }
    detail = refused(bench.client.post("/api/projects", json=body), 400)
    assert detail.startswith("invalid preprocessing")


def test_create_project_with_the_documented_metric(bench: Bench) -> None:
    """ProjectCreate documents "top1" (the figure's name) as a metric it takes."""
    schema = ok(bench.client.get("/openapi.json"))
    described = schema["components"]["schemas"]["ProjectCreate"]["properties"]["metric"]
    assert "top1" in described["description"]
    body = {"model_id": bench.model["id"], "dataset_id": bench.val["id"], "metric": "top1"}
    project = ok(bench.client.post("/api/projects", json=body), 201)
    assert project["settings"]["metric"] == "topk"  # top1 names the figure; topk the metric
    wait_done(bench.client, project["job"]["id"])
    done = ok(bench.client.get(f"/api/projects/{project['id']}"))
    assert done["accuracy"]["metric"] == "top1"
    assert done["accuracy"]["figures"]["top1"] == bench.project["accuracy"]["figures"]["top1"]


@pytest.mark.parametrize("metric", ["bogus", "os:getcwd", "calibench.server.app:create_app"])
def test_create_project_with_a_metric_that_is_not_built_in_is_400(idle: Idle, metric: str) -> None:
    """The API takes the built-in metrics it documents; a 'module:function' is the command
    line's custom metric, which the server would import and run."""
    before = len(ok(idle.client.get("/api/projects")))
    body = {"model_id": idle.model["id"], "dataset_id": idle.val["id"], "metric": metric}
    detail = refused(idle.client.post("/api/projects", json=body), 400)
    assert "metric" in detail and repr(metric) in detail
    assert len(ok(idle.client.get("/api/projects"))) == before


def test_api_never_runs_a_python_file_named_as_metric(bench: Bench, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "metric_of_a_stranger.py"
    script.write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "def score(outputs, annotation):\n    return 1.0\n"
    )
    body = {
        "model_id": bench.model["id"],
        "dataset_id": bench.val["id"],
        "metric": f"{script}:score",
    }
    response = bench.client.post("/api/projects", json=body)
    if response.status_code == 201:  # accepted: then at least its job must not run the file
        wait_job(bench.client, response.json()["job"]["id"])
    assert not marker.exists(), "the server ran a Python file a client named"
    assert refused(response, 400)


def test_concurrent_uploads_of_one_dataset_name(tmp_path: Path, fashion_archives: dict) -> None:
    """Two uploads racing for one name: one wins, the other is told 409, and no half-registered
    dataset folder stays behind."""
    app = create_app(ServerSettings(workspace=tmp_path / "ws"), run_jobs=False)
    data = fashion_archives["val"].read_bytes()
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        answers: list[httpx.Response] = []

        def upload() -> None:
            answers.append(post_dataset(client, content=data, filename="v.tar.gz", name="race"))

        threads = [threading.Thread(target=upload) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201, 409, 409], [a.text[:200] for a in answers]
        for answer in answers:
            if answer.status_code == 409:
                assert refused(answer, 409) == "a dataset named 'race' exists already"
        assert len(ok(client.get("/api/datasets"))) == 1
        assert len(list((tmp_path / "ws" / "datasets").iterdir())) == 1


# optimize -----------------------------------------------------------------------------------------


def test_optimize_starts_calibration_projects(bench: Bench, calibrated: Calibrated) -> None:
    for child, method in (
        (calibrated.default, "default"),
        (calibrated.accuracy_aware, "accuracy-aware"),
    ):
        assert child["parent_id"] == bench.project["id"]
        assert child["precision"] == "INT8"
        assert child["model"]["parent_id"] == bench.model["id"]
        assert child["model"]["state"] == "pending"
        assert child["model"]["optimizable"] is False
        assert child["job"]["kind"] == "calibration"
        assert child["calibration"]["config"]["method"] == method
        assert child["calibration"]["dataset"] == {"id": bench.cal["id"], "name": "cal"}
        assert child["calibration"]["validation"]["id"] == bench.val["id"]
    assert "accuracy-aware" in [s["name"] for s in calibrated.accuracy_aware["job"]["stages"]]
    assert "accuracy-aware" not in [s["name"] for s in calibrated.default["job"]["stages"]]
    assert calibrated.accuracy_aware["calibration"]["config"]["max_drop"] == 1
    assert calibrated.accuracy_aware["calibration"]["config"]["drop_type"] == "relative"
    parent = ok(bench.client.get(f"/api/projects/{bench.project['id']}"))
    assert {calibrated.default["id"], calibrated.accuracy_aware["id"]} <= set(parent["children"])


def test_optimize_unknown_ids_is_404(bench: Bench) -> None:
    client, cal = bench.client, bench.cal["id"]
    detail = refused(client.post("/api/projects/999/optimize", json={"dataset_id": cal}), 404)
    assert detail == "there is no project 999"
    response = client.post(
        f"/api/projects/{bench.project['id']}/optimize", json={"dataset_id": 997}
    )
    assert refused(response, 404) == "there is no dataset 997"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"method": "fast"}, "method: String should match pattern"),
        ({"preset": "fastest"}, "preset: String should match pattern"),
        ({"drop_type": "percent"}, "drop_type: String should match pattern"),
        ({"subset_percent": 0}, "subset_percent: Input should be greater than 0"),
        ({"subset_percent": 150}, "subset_percent: Input should be less than or equal to 100"),
        ({"batch": 0}, "batch: Input should be greater than or equal to 1"),
        ({"max_drop": -1}, "max_drop: Input should be greater than or equal to 0"),
        ({"placement": "fast"}, "placement: String should match pattern '^(measured|rule)$'"),
        ({"placement_budget_s": 0}, "placement_budget_s: Input should be greater than 0"),
        ({"placement_budget_s": 1e7}, "placement_budget_s: Input should be less than or equal to"),
        ({"placement_budget_s": "soon"}, "placement_budget_s: Input should be a valid number"),
        ({"dataset_id": None}, "dataset_id: Input should be a valid integer"),
    ],
)
def test_optimize_with_invalid_settings_is_422(
    bench: Bench, change: dict[str, Any], words: str
) -> None:
    before = len(ok(bench.client.get("/api/projects")))
    body = {"dataset_id": bench.cal["id"], **change}
    response = bench.client.post(f"/api/projects/{bench.project['id']}/optimize", json=body)
    assert words in refused(response, 422)
    assert len(ok(bench.client.get("/api/projects"))) == before


def test_optimize_takes_the_placement_and_its_budget(bench: Bench) -> None:
    schema = ok(bench.client.get("/openapi.json"))["components"]["schemas"]["OptimizeRequest"]
    placement, budget = (schema["properties"][k] for k in ("placement", "placement_budget_s"))
    assert placement["default"] == "measured" and placement["pattern"] == "^(measured|rule)$"
    assert "timed against FP32" in placement["description"]
    assert (budget["default"], budget["exclusiveMinimum"], budget["maximum"]) == (30, 0, 3600)
    # Measured at the INT8 project's batch and one stream's threads, within the budget given.
    body = {"placement": "measured", "placement_budget_s": 12.5, "batch": 4, "streams": 2}
    child = start_calibration(bench, **body)
    config = child["calibration"]["config"]
    assert (config["placement"], config["placement_budget_s"]) == ("measured", 12.5)
    assert config["placement_batch"] == 4 and child["settings"]["batch"] == 4
    assert child["recipe"]["placement"] == "placement measured (batch 4)"
    assert "placement timing" in [s["name"] for s in child["job"]["stages"]]
    wait_done(bench.client, child["job"]["id"])
    report = ok(bench.client.get(f"/api/projects/{child['id']}"))["calibration"]["report"]
    threads = max(1, (os.cpu_count() or 1) // 2)
    timed = f"placement timing (batch 4, {threads} thread{'s' if threads > 1 else ''})"
    assert any(n.startswith(timed) for n in report["notes"]), report["notes"]


def test_accuracy_aware_without_annotations_is_400(bench: Bench) -> None:
    before = len(ok(bench.client.get("/api/projects")))
    body = {"dataset_id": bench.plain["id"], "method": "accuracy-aware", "max_drop": 1}
    response = bench.client.post(f"/api/projects/{bench.plain_project['id']}/optimize", json=body)
    detail = refused(response, 400)
    assert "AccuracyAware measures accuracy on the project's dataset, 'plain'" in detail
    assert "has no annotations" in detail
    assert len(ok(bench.client.get("/api/projects"))) == before


def test_accuracy_aware_without_max_drop_is_400(bench: Bench) -> None:
    body = {"dataset_id": bench.cal["id"], "method": "accuracy-aware"}
    response = bench.client.post(f"/api/projects/{bench.project['id']}/optimize", json=body)
    assert refused(response, 400) == "the AccuracyAware method needs a Maximum Accuracy Drop"


def test_optimize_before_the_baseline_finished_is_409(idle: Idle) -> None:
    project = idle_project(idle)
    response = idle.client.post(
        f"/api/projects/{project['id']}/optimize", json={"dataset_id": idle.val["id"]}
    )
    detail = refused(response, 409)
    assert detail.startswith("INT8 calibration is not available: the baseline inference")
    assert "must finish first" in detail
    assert ok(idle.client.get(f"/api/projects/{project['id']}"))["children"] == []


def token_npz(path: Path, samples: int = 4) -> Path:
    """Token ids for the tiny NLP model: one int64 array per input."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1000, (samples, 11), dtype=np.int64)
    np.savez(path, input_ids=ids, attention_mask=np.ones_like(ids))
    return path


def test_optimize_nlp_model_is_409(
    bench: Bench, fashion_archives: dict[str, Path], tmp_path: Path
) -> None:
    client = bench.client
    nlp = ok(post_model(client, fashion_archives["nlp"], name="tiny nlp"), 201)
    assert nlp["optimizable"] is False and nlp["precision"] == "FP32"
    assert "NLP" in nlp["reason"]
    # Images cannot feed token ids: refused where the project is made, not at its baseline.
    body = {"model_id": nlp["id"], "dataset_id": bench.val["id"]}
    detail = refused(client.post("/api/projects", json=body), 400)
    assert "'tiny nlp' takes input_ids, attention_mask as token ids: an NLP model" in detail
    assert f"{bench.val['name']!r} holds images" in detail
    tokens = ok(post_dataset(client, token_npz(tmp_path / "tokens.npz"), "tokens"), 201)
    project = ok(
        client.post("/api/projects", json={"model_id": nlp["id"], "dataset_id": tokens["id"]}),
        201,
    )
    assert project["optimize"]["enabled"] is False and "NLP" in project["optimize"]["reason"]
    response = client.post(
        f"/api/projects/{project['id']}/optimize", json={"dataset_id": bench.cal["id"]}
    )
    detail = refused(response, 409)
    assert detail.startswith("INT8 calibration is not available")
    assert "INT8 calibration is not available for NLP models" in detail
    wait_done(client, project["job"]["id"])  # token ids feed it: its baseline runs


def worker_pid(workspace: Path, job_id: int) -> int | None:
    """The process id of the live worker running this job of this workspace (Linux)."""
    wanted = [b"calibench.server.jobs.worker", str(job_id).encode(), str(workspace).encode()]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[2:5] == wanted:
            return int(entry.name)
    return None


def exited_unreaped(pid: int) -> bool | None:
    """True once the process has exited but its parent has not collected it (a zombie);
    None when it is gone altogether."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_retry_right_after_a_failure_runs_the_job_again(bench: Bench, tmp_path: Path) -> None:
    """Retry pressed as soon as a job shows "failed", while the server has not yet noticed that
    the attempt's worker process exited: the job must run again, not be failed by the runner
    ("the worker process ended unexpectedly") when it collects the earlier worker."""
    client = bench.client
    # A dataset whose samples are NaN: its layout fits the model, so the project is made, and
    # its baseline fails on the first sample, as fast as a job can. The pages offer no Retry
    # for it (it would fail the same way); the API retries any failed job.
    nan = tmp_path / "nan.npz"
    np.savez(nan, input=np.full((4, 1, 28, 28), np.nan, np.float32))
    poisoned = ok(post_dataset(client, nan, "all NaN"), 201)
    body = {"model_id": bench.model["id"], "dataset_id": poisoned["id"]}
    job_id = ok(client.post("/api/projects", json=body), 201)["job"]["id"]
    caught = 0  # retries sent while the server still counted the exited worker as running
    attempt = 0
    while caught < 2 and attempt < 8:
        attempt += 1
        deadline = time.monotonic() + TIMEOUT
        pid = None
        while pid is None and time.monotonic() < deadline:
            pid = worker_pid(bench.workspace, job_id)
            if pid is None and ok(client.get(f"/api/jobs/{job_id}"))["state"] in FINISHED:
                break  # ended before it was seen
            time.sleep(0.005)
        while pid is not None and exited_unreaped(pid) is False:
            assert time.monotonic() < deadline, job_log(client, job_id)
            time.sleep(0.002)
        # The worker has exited (its job says "failed"); the server may not have collected it.
        job = wait_job(client, job_id)
        assert job["state"] == "failed", job
        assert "holds NaN or infinite values" in job["message"], (attempt, job)
        assert job["permanent"] is True and job["retryable"] is False
        assert job["attempts"] == attempt
        caught += job_id in ok(client.get("/api/health"))["running_jobs"]
        assert ok(client.post(f"/api/jobs/{job_id}/retry"))["state"] == "queued"
    assert caught, "never retried before the server collected the worker: nothing was tested"
    final = wait_job(client, job_id)
    assert "holds NaN" in final["message"] and final["attempts"] == attempt + 1


def test_optimize_derived_int8_model_is_409(bench: Bench, calibrated: Calibrated) -> None:
    client = bench.client
    file = client.get(f"/api/models/{calibrated.default['model']['id']}/file")
    assert file.status_code == 200
    derived = ok(
        post_model(client, name="uploaded back", filename="back.onnx", content=file.content), 201
    )
    assert derived["precision"] == "INT8"
    assert derived["optimizable"] is False
    assert "derived" in derived["reason"] or "optimized" in derived["reason"]
    project = ok(
        client.post(
            "/api/projects", json={"model_id": derived["id"], "dataset_id": bench.val["id"]}
        ),
        201,
    )
    response = client.post(
        f"/api/projects/{project['id']}/optimize", json={"dataset_id": bench.cal["id"]}
    )
    detail = refused(response, 409)
    assert detail.startswith("INT8 calibration is not available")
    assert "optimized model derived from" in detail
    assert ok(client.get(f"/api/projects/{project['id']}"))["children"] == []
    wait_done(client, project["job"]["id"])  # an INT8 model still gets its baseline
    # The workbench's own INT8 project cannot be calibrated again either.
    response = client.post(
        f"/api/projects/{calibrated.default['id']}/optimize", json={"dataset_id": bench.cal["id"]}
    )
    assert "optimized model derived from fashion_cnn" in refused(response, 409)


def test_create_project_on_a_model_that_is_not_ready_is_409(bench: Bench) -> None:
    """A calibration's model is pending until its job is done, and failed when it is not."""
    client = bench.client
    child = start_calibration(bench, batch=4, streams=2, subset_percent=50)
    assert (child["settings"]["batch"], child["settings"]["streams"]) == (4, 2)
    assert child["calibration"]["config"]["subset"]["percent"] == 50
    model = child["model"]
    body = {"model_id": model["id"], "dataset_id": bench.val["id"]}
    detail = refused(client.post("/api/projects", json=body), 409)
    assert detail == f"model {model['name']!r} is not ready (pending)"
    ok(client.post(f"/api/jobs/{child['job']['id']}/cancel"))
    assert wait_job(client, child["job"]["id"])["state"] == "cancelled"
    detail = refused(client.post("/api/projects", json=body), 409)
    assert detail == f"model {model['name']!r} is not ready (failed)"


# compare ------------------------------------------------------------------------------------------


def test_compare_an_original_project_is_404(bench: Bench) -> None:
    detail = refused(bench.client.get(f"/api/projects/{bench.project['id']}/compare"), 404)
    assert "holds an original model" in detail
    assert refused(bench.client.get("/api/projects/999/compare"), 404) == "there is no project 999"


def test_full_happy_path(bench: Bench, calibrated: Calibrated) -> None:
    client = bench.client
    for child, job in (
        (calibrated.default, calibrated.default_job),
        (calibrated.accuracy_aware, calibrated.accuracy_aware_job),
    ):
        assert job["state"] == "done" and job["percent"] == 100 and job["message"] is None
        assert all(s["percent"] == 100 for s in job["stages"])
        project = ok(client.get(f"/api/projects/{child['id']}"))
        assert project["status"] == "done" and project["has_comparison"] is True
        assert project["model"]["state"] == "ready" and project["model"]["size_bytes"] > 0
        assert project["accuracy"]["figures"]["top1"] > 50

        comparison = ok(client.get(f"/api/projects/{child['id']}/compare"))
        accuracy = comparison["accuracy"]
        assert accuracy["metric"] == "top1"
        assert accuracy["fp32"]["top1"] == bench.project["accuracy"]["figures"]["top1"]
        assert accuracy["int8"]["top1"] > 50
        assert "top1" in accuracy["drop"]
        performance = comparison["performance"]
        assert performance["fp32"]["throughput"] > 0 and performance["int8"]["throughput"] > 0
        assert comparison["layers"] and {"name", "precision"} <= set(comparison["layers"][0])
        assert comparison["int8_layers"] > 0
        assert comparison["size_bytes"]["int8"] < comparison["size_bytes"]["fp32"]

        model_id = child["model"]["id"]
        layers = ok(client.get(f"/api/models/{model_id}/layers"))
        int8_rows = [r for r in layers if r["precision"] == "INT8"]
        assert int8_rows, layers
        assert any(r["output_precision"] == "U8" for r in int8_rows)
        assert any(r["op_type"] == "Conv" for r in int8_rows)

        file = client.get(f"/api/models/{model_id}/file")
        assert file.status_code == 200
        name = project["model"]["name"]
        assert name.startswith("fashion_cnn INT8")
        method = "Default" if job is calibrated.default_job else "AccuracyAware max drop 1%"
        assert name.startswith(f"fashion_cnn INT8 ({method}, performance, "), name
        download = f'filename="{re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")}.onnx"'
        assert download in file.headers["content-disposition"]
        proto = onnx.load_from_string(file.content)
        ops = {n.op_type for n in proto.graph.node}
        assert "QuantizeLinear" in ops or any(o.startswith("QLinear") for o in ops)
        assert DERIVED_KEY in {p.key for p in proto.metadata_props}
        assert len(file.content) == project["model"]["size_bytes"]

        log = job_log(client, job["id"])
        assert f"job {job['id']} (calibration) started" in log
        assert "INT8 model written" in log and f"job {job['id']} done" in log

    # AccuracyAware keeps the drop within the Maximum Accuracy Drop of 1 point.
    aa = ok(client.get(f"/api/projects/{calibrated.accuracy_aware['id']}/compare"))
    assert aa["accuracy"]["drop"]["top1"] <= 1.0


def test_one_story_of_speed_across_the_list_the_project_and_compare(
    bench: Bench, calibrated: Calibrated
) -> None:
    client = bench.client
    parent, default, aa = (
        bench.project["id"],
        calibrated.default["id"],
        calibrated.accuracy_aware["id"],
    )
    comparison = ok(client.get(f"/api/projects/{default}/compare"))
    fp32, int8 = comparison["performance"]["fp32"], comparison["performance"]["int8"]
    words = speed_words(int8["throughput"] / fp32["throughput"])
    # The INT8 figures come from the run that timed both models side by side, with its stamp.
    stamp = int8["measured"]
    assert stamp["timed_with"] == ["fp32", "int8"] and stamp["isa"] == host_cpu().isa.value
    assert stamp["runtime"].startswith("ONNX Runtime ") and stamp["at"].endswith("+00:00")
    project = ok(client.get(f"/api/projects/{default}"))
    assert project["gain"]["words"] == words and project["throughput"] == int8["throughput"]
    assert project["gain"]["against_id"] == parent
    assert f"({host_cpu().isa.label})" in project["speed"]["note"]
    listed = {p["id"]: p for p in ok(client.get("/api/projects"))}
    assert listed[default]["gain"] == project["gain"] and listed[parent]["gain"] is None
    assert "timed alone" in listed[parent]["speed"]["note"]  # the FP32 baseline
    recipe = listed[default]["recipe"]["words"]
    assert recipe.startswith("Default, performance preset, placement measured (batch 1), 100% of ")
    assert listed[aa]["recipe"]["method"] == "AccuracyAware, maximum drop 1% of FP32"
    # Compare an INT8 project with its parent, asked either way round: the parent is the
    # reference, and the speed-up is the same figure.
    for a, b in ((parent, default), (default, parent)):
        pair = ok(client.get("/api/compare", params={"a": a, "b": b}))
        assert (pair["a"]["id"], pair["b"]["id"], pair["together"]) == (parent, default, True)
        rows = {r["key"]: r for r in pair["rows"]}
        assert rows["throughput"]["change"] == words
    page = client.get("/compare", params={"a": parent, "b": default})
    assert page.status_code == 200 and words in page.text and "×1." not in page.text
    opened = client.get(f"/projects/{parent}/compare", follow_redirects=False)
    latest = max(p["id"] for p in listed.values() if p["parent_id"] == parent)
    assert opened.headers["location"] == f"/compare?a={parent}&b={latest}"  # its latest INT8
    # Two INT8 projects of one parent: no speed-up across two runs, each one's own against FP32.
    pair = ok(client.get("/api/compare", params={"a": default, "b": aa}))
    assert not pair["together"] and pair["comparison"] is None
    rows = {r["key"]: r for r in pair["rows"]}
    assert rows["throughput"]["change"] == "not timed together"
    assert (rows["gain"]["a"], rows["gain"]["b"]) == (words, listed[aa]["gain"]["words"])
    assert re.fullmatch(r"(drop|gain) \d+\.\d\d pt|no drop", rows["accuracy"]["change"])
    assert "'s speed-up is against its own FP32 parent" in pair["speed_note"]
    # Refused in words.
    same = refused(client.get("/api/compare", params={"a": aa, "b": aa}), 400)
    assert same == f"choose two different projects to compare (both are {aa})"
    assert refused(client.get("/api/compare", params={"a": aa, "b": 999}), 404) == (
        "there is no project 999"
    )


def test_two_int8_projects_timed_side_by_side(bench: Bench, calibrated: Calibrated) -> None:
    """Compare's button: a job times two INT8 projects of one parent in alternating windows,
    and Compare divides their speeds from that run alone (either way round)."""
    client = bench.client
    a, b = calibrated.default["id"], calibrated.accuracy_aware["id"]
    names = [ok(client.get(f"/api/projects/{p}"))["model"]["name"] for p in (a, b)]
    before = ok(client.get("/api/compare", params={"a": a, "b": b}))
    assert before["timing_refusal"] is None and before["timing_job"] is None
    page = client.get("/compare", params={"a": a, "b": b})
    assert 'id="time-pair-button">Time these two side by side<' in page.text

    job = ok(client.post("/api/compare/timing", json={"a": a, "b": b}), 202)
    assert (job["kind"], job["project_id"]) == ("side-by-side timing", None)
    assert [s["name"] for s in job["stages"]] == ["checking both models", "timing side by side"]
    again = ok(client.post("/api/compare/timing", json={"a": b, "b": a}), 202)
    live = ok(client.get(f"/api/jobs/{job['id']}"))["state"] in ("queued", "running")
    assert again["id"] == job["id"] or not live  # a live timing of the pair is answered
    if again["id"] != job["id"]:  # the first one had ended already: the second one is new
        wait_done(client, again["id"])
    done = wait_done(client, job["id"])
    assert all(s["percent"] == 100 for s in done["stages"])
    assert "samples/s, median latency" in job_log(client, job["id"])

    pair = ok(client.get("/api/compare", params={"a": a, "b": b}))
    timing = pair["timing"]
    assert pair["together"] is True and pair["comparison"] is None and timing["job_id"] in (
        job["id"], again["id"],
    )  # fmt: skip
    fa, fb = timing["a"], timing["b"]
    assert fa["throughput"] > 0 and fb["throughput"] > 0
    assert sorted(fa["timed_with"]) == sorted(fb["timed_with"]) == sorted(names)
    assert fa["at"] == fb["at"]  # one run
    assert (fa["batch"], fa["streams"]) == (1, 1) == (fb["batch"], fb["streams"])
    words = speed_words(fb["throughput"] / fa["throughput"])
    assert timing["words"] == words
    cpu = host_cpu()
    assert timing["sentence"].startswith(
        f"{names[1]} is {words} than {names[0]} (timed side by side, batch 1 × 1 stream, "
    ) or timing["sentence"].startswith(f"{names[1]} and {names[0]} run at the same speed (")
    assert "ONNX Runtime " in timing["sentence"] and f"({cpu.isa.label})" in timing["sentence"]
    assert timing["sentence"].endswith(" UTC)")
    rows = {r["key"]: r for r in pair["rows"]}
    assert rows["throughput"]["change"] == words
    assert (rows["throughput"]["a"], rows["throughput"]["b"]) == (
        f"{fa['throughput']:.1f}", f"{fb['throughput']:.1f}",
    )  # fmt: skip
    assert f"by job {timing['job_id']} (batch 1 × 1 stream" in pair["speed_note"]
    # Asked the other way round: the same run, the ratio turned over.
    turned = ok(client.get("/api/compare", params={"a": b, "b": a}))["timing"]
    assert (turned["a"], turned["b"]) == (fb, fa)
    assert turned["throughput"] == pytest.approx(1 / timing["throughput"])
    page = client.get("/compare", params={"a": a, "b": b})
    assert page.status_code == 200 and timing["sentence"] in page.text
    assert 'id="time-pair-button">Time them again<' in page.text

    # A timing cancelled keeps the figures of the last one, and says it was cancelled.
    second = ok(client.post("/api/compare/timing", json={"a": a, "b": b}), 202)
    assert second["id"] not in (job["id"], again["id"])
    # While it lives, the models it reads stay.
    assert refused(client.delete(f"/api/projects/{b}"), 409).startswith(
        f"project {b}'s model is used by job {second['id']} ("
    )
    ok(client.post(f"/api/jobs/{second['id']}/cancel"))
    assert wait_job(client, second["id"])["state"] == "cancelled"
    pair = ok(client.get("/api/compare", params={"a": a, "b": b}))
    assert pair["timing"] == timing and pair["timing_job"]["state"] == "cancelled"
    assert "The side-by-side timing (job" in client.get(f"/compare?a={a}&b={b}").text

    # Refused in words: a pair its calibration timed, one model twice, one project twice.
    parent, plain = bench.project["id"], bench.plain_project["id"]
    words_409 = refused(client.post("/api/compare/timing", json={"a": parent, "b": a}), 409)
    assert words_409 == (
        f"project {a} was timed side by side with its parent, project {parent}, by its "
        "calibration job: those are the figures shown"
    )
    assert "hold the same model" in refused(
        client.post("/api/compare/timing", json={"a": parent, "b": plain}), 409
    )
    assert "choose two different projects" in refused(
        client.post("/api/compare/timing", json={"a": a, "b": a}), 400
    )


def test_compare_refuses_projects_of_two_models(idle: Idle, tiny_cnn_path: Path) -> None:
    other = ok(post_model(idle.client, tiny_cnn_path, "other"), 201)
    body = {"model_id": other["id"], "dataset_id": idle.val["id"]}
    theirs = ok(idle.client.post("/api/projects", json=body), 201)
    ours = idle_project(idle)
    detail = refused(
        idle.client.get("/api/compare", params={"a": ours["id"], "b": theirs["id"]}), 400
    )
    assert detail == (
        f"projects {ours['id']} and {theirs['id']} hold different models: Compare takes two "
        "projects of one model (its FP32 project and its INT8 ones)"
    )


# jobs ---------------------------------------------------------------------------------------------


def test_list_jobs(bench: Bench) -> None:
    jobs = ok(bench.client.get("/api/jobs"))
    assert bench.project["job"]["id"] in [j["id"] for j in jobs]
    done = ok(bench.client.get("/api/jobs", params={"state": "done"}))
    assert done and {j["state"] for j in done} == {"done"}
    assert bench.project["job"]["id"] in [j["id"] for j in done]
    assert ok(bench.client.get("/api/jobs", params={"state": "no-such-state"})) == []


def test_get_job(bench: Bench) -> None:
    job = ok(bench.client.get(f"/api/jobs/{bench.project['job']['id']}"))
    assert job["kind"] == "baseline" and job["state"] == "done"
    assert job["project_id"] == bench.project["id"]
    assert job["attempts"] == 1 and job["percent"] == 100
    assert job["started_at"] and job["finished_at"]
    assert refused(bench.client.get("/api/jobs/999"), 404) == "there is no job 999"


def test_job_log(bench: Bench, idle: Idle) -> None:
    job_id = bench.project["job"]["id"]
    response = bench.client.get(f"/api/jobs/{job_id}/log")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert f"job {job_id} (baseline) started" in response.text
    assert "stage: accuracy" in response.text and f"job {job_id} done" in response.text
    assert refused(bench.client.get("/api/jobs/999/log"), 404) == "there is no job 999"
    # A job that never started has an empty log.
    queued = idle_project(idle)["job"]["id"]
    assert idle.client.get(f"/api/jobs/{queued}/log").text == ""


def test_cancel_finished_job_is_409(bench: Bench) -> None:
    job_id = bench.project["job"]["id"]
    detail = refused(bench.client.post(f"/api/jobs/{job_id}/cancel"), 409)
    assert detail == f"job {job_id} has ended (done): nothing to cancel"
    assert ok(bench.client.get(f"/api/jobs/{job_id}"))["state"] == "done"
    assert refused(bench.client.post("/api/jobs/999/cancel"), 404) == "there is no job 999"


def test_retry_done_job_is_409(bench: Bench) -> None:
    job_id = bench.project["job"]["id"]
    detail = refused(bench.client.post(f"/api/jobs/{job_id}/retry"), 409)
    assert detail == f"job {job_id} is done: only a failed or cancelled job can be retried"
    assert ok(bench.client.get(f"/api/jobs/{job_id}"))["state"] == "done"
    assert refused(bench.client.post("/api/jobs/999/retry"), 404) == "there is no job 999"


def test_cancel_and_retry_a_queued_job(idle: Idle) -> None:
    job_id = idle_project(idle)["job"]["id"]
    assert ok(idle.client.get(f"/api/jobs/{job_id}"))["state"] == "queued"
    cancelled = ok(idle.client.post(f"/api/jobs/{job_id}/cancel"))
    assert cancelled["state"] == "cancelled"
    assert cancelled["message"] == "cancelled by the user before it started"
    assert cancelled["finished_at"]
    retried = ok(idle.client.post(f"/api/jobs/{job_id}/retry"))
    assert retried["state"] == "queued" and retried["message"] is None
    assert retried["finished_at"] is None and retried["cancel_requested"] is False
    assert all(s["done"] == 0 for s in retried["stages"])
    detail = refused(idle.client.post(f"/api/jobs/{job_id}/retry"), 409)
    assert detail == f"job {job_id} is queued: only a failed or cancelled job can be retried"


def test_cancel_a_running_calibration(bench: Bench) -> None:
    client = bench.client
    child = start_calibration(bench)
    job_id, model_id = child["job"]["id"], child["model"]["id"]
    deadline = time.monotonic() + 60
    state = child["job"]["state"]
    while state == "queued" and time.monotonic() < deadline:
        time.sleep(0.02)
        state = ok(client.get(f"/api/jobs/{job_id}"))["state"]
    # The runner has started its worker; the calibration itself takes seconds more.
    assert state == "running", f"{state}\n{job_log(client, job_id)}"
    answer = ok(client.post(f"/api/jobs/{job_id}/cancel"))
    assert answer["state"] == "running" and answer["cancel_requested"] is True

    job = wait_job(client, job_id)
    assert job["state"] == "cancelled", f"{job}\n{job_log(client, job_id)}"
    assert job["message"] == "cancelled by the user"
    assert job_id not in ok(client.get("/api/health"))["running_jobs"]
    model = ok(client.get(f"/api/models/{model_id}"))
    assert model["state"] == "failed"
    assert not any(
        m["id"] == model_id and m["state"] == "ready" for m in ok(client.get("/api/models"))
    )
    detail = refused(client.get(f"/api/models/{model_id}/file"), 409)
    assert detail.startswith(f"model {model_id} was not made") and "no file" in detail
    assert not (bench.workspace / "models" / str(model_id)).exists()
    assert not (bench.workspace / "jobs" / str(job_id) / "work").exists()
    project = ok(client.get(f"/api/projects/{child['id']}"))
    assert project["status"] == "cancelled" and project["has_comparison"] is False
    detail = refused(client.get(f"/api/projects/{child['id']}/compare"), 409)
    assert "has no comparison: its calibration job cancelled" in detail
    detail = refused(client.get(f"/api/models/{model_id}/layers"), 409)
    assert "was not made" in detail
    # Nothing to cancel any more.
    assert "has ended (cancelled)" in refused(client.post(f"/api/jobs/{job_id}/cancel"), 409)


def test_retry_a_cancelled_calibration(bench: Bench) -> None:
    client = bench.client
    child = start_calibration(bench)
    job_id, model_id = child["job"]["id"], child["model"]["id"]
    ok(client.post(f"/api/jobs/{job_id}/cancel"))
    assert wait_job(client, job_id)["state"] == "cancelled"
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "failed"

    retried = ok(client.post(f"/api/jobs/{job_id}/retry"))
    assert retried["state"] == "queued" and retried["message"] is None
    assert ok(client.get(f"/api/models/{model_id}"))["state"] in ("pending", "ready")
    job = wait_done(client, job_id)
    assert job["attempts"] >= 1
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "ready"
    assert client.get(f"/api/models/{model_id}/file").status_code == 200
    comparison = ok(client.get(f"/api/projects/{child['id']}/compare"))
    assert comparison["accuracy"]["int8"]["top1"] > 50


# security -----------------------------------------------------------------------------------------


def test_wrong_host_header_is_400(bench: Bench) -> None:
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.nip.io"):
        response = bench.client.get("/api/health", headers={"host": host})
        detail = refused(response, 400)
        assert detail.startswith("unexpected Host header") and host.split(":")[0] in detail
    assert ok(bench.client.get("/api/health", headers={"host": "localhost:8765"}))["status"]
    response = bench.client.get("/", headers={"host": "evil.example"})
    assert response.status_code == 400 and "unexpected Host header" in response.text


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[TestClient]:
    settings = ServerSettings(workspace=tmp_path / "ws", token="s3cret")
    with TestClient(create_app(settings, run_jobs=False), base_url=BASE) as client:
        yield client


def test_token_is_required(guarded: TestClient) -> None:
    detail = refused(guarded.get("/api/health"), 401)
    assert "needs its access token" in detail and "Authorization: Bearer" in detail
    assert refused(guarded.get("/api/models", headers={"authorization": "Bearer nope"}), 401)
    assert refused(guarded.get("/api/models", params={"token": "s3cre"}), 401)
    assert refused(guarded.get("/openapi.json"), 401)
    page = guarded.get("/")
    assert page.status_code == 401 and "access token" in page.text
    assert "calibench_csrf" not in guarded.cookies


def test_bearer_token_is_accepted(guarded: TestClient) -> None:
    auth = {"authorization": "Bearer s3cret"}
    assert ok(guarded.get("/api/health", headers=auth))["status"] == "ok"
    assert ok(guarded.get("/api/models", headers=auth)) == []
    assert ok(guarded.get("/api/models", params={"token": "s3cret"})) == []  # no redirect in JSON


def test_token_in_the_query_of_a_page_sets_the_cookie(guarded: TestClient) -> None:
    response = guarded.get("/datasets?token=s3cret&x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/datasets?x=1"  # the token leaves the address
    cookie = response.headers["set-cookie"]
    assert "calibench_token=s3cret" in cookie
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    # The browser now carries the cookie.
    assert guarded.get("/").status_code == 200
    assert ok(guarded.get("/api/health"))["status"] == "ok"


def test_non_ascii_token_is_refused_not_an_error(tmp_path: Path) -> None:
    settings = ServerSettings(workspace=tmp_path / "ws", token="s3cret")
    app = create_app(settings, run_jobs=False)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        response = client.get("/api/health", params={"token": "sécret"})
        assert refused(response, 401).startswith("this workbench needs its access token")


def test_cross_site_post_is_403(bench: Bench, fashion_cnn: Path) -> None:
    before = ok(bench.client.get("/api/models"))
    response = bench.client.post(
        "/api/models",
        files={"file": ("x.onnx", fashion_cnn.read_bytes())},
        headers={"origin": "http://evil.example"},
    )
    assert refused(response, 403) == "cross-site request refused"
    for headers in (
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://127.0.0.1:9999"},
    ):
        response = bench.client.post(
            f"/api/jobs/{bench.project['job']['id']}/retry", headers=headers
        )
        assert refused(response, 403) == "cross-site request refused", headers
    assert ok(bench.client.get("/api/models")) == before
    # The same site's own origin passes the guard (and meets the service's 409).
    response = bench.client.post(
        f"/api/jobs/{bench.project['job']['id']}/retry",
        headers={"origin": BASE, "sec-fetch-site": "same-origin"},
    )
    assert response.status_code == 409


def test_form_post_needs_the_csrf_token(idle: Idle) -> None:
    client = idle.client
    body = {"model_id": str(idle.model["id"]), "dataset_id": str(idle.val["id"])}
    before = len(ok(client.get("/api/projects")))
    token = csrf_cookie(client)

    response = client.post("/projects/new", data=body, follow_redirects=False)
    assert response.status_code == 403 and "security token" in response.text
    response = client.post(
        "/projects/new", data={**body, "csrf_token": "forged"}, follow_redirects=False
    )
    assert response.status_code == 403 and "security token" in response.text
    assert len(ok(client.get("/api/projects"))) == before

    response = client.post(
        "/projects/new", data={**body, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/projects/")
    project_id = int(response.headers["location"].rsplit("/", 1)[1])
    project = ok(client.get(f"/api/projects/{project_id}"))
    assert len(ok(client.get("/api/projects"))) == before + 1

    job_id = project["job"]["id"]
    response = client.post(f"/jobs/{job_id}/cancel", follow_redirects=False)
    assert response.status_code == 403 and "security token" in response.text
    assert ok(client.get(f"/api/jobs/{job_id}"))["state"] == "queued"
    response = client.post(
        f"/jobs/{job_id}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job_id}"
    assert ok(client.get(f"/api/jobs/{job_id}"))["state"] == "cancelled"


def test_non_ascii_csrf_token_is_refused_not_an_error(tmp_path: Path) -> None:
    app = create_app(ServerSettings(workspace=tmp_path / "ws"), run_jobs=False)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        csrf_cookie(client)
        response = client.post("/jobs/1/cancel", data={"csrf_token": "é"}, follow_redirects=False)
        assert response.status_code == 403 and "security token" in response.text


# review fixes -------------------------------------------------------------------------------------


def test_a_server_beyond_loopback_needs_a_real_token(tmp_path: Path) -> None:
    from calibench.cli import main

    with pytest.raises(ConfigError, match="needs an access token"):
        create_app(ServerSettings(workspace=tmp_path / "ws", host="0.0.0.0", token=None))
    with pytest.raises(ConfigError, match="needs an access token"):
        create_app(ServerSettings(workspace=tmp_path / "ws", host="0.0.0.0", token=""))
    # The command line refuses a short token before it binds anything.
    assert main(["serve", "--host", "0.0.0.0", "--token", "", "--workspace", str(tmp_path)]) == 5
    assert main(["serve", "--token", "short", "--workspace", str(tmp_path)]) == 5


def test_other_loopback_addresses_are_served(tmp_path: Path) -> None:
    app = create_app(ServerSettings(workspace=tmp_path / "ws", host="127.0.0.2"), run_jobs=False)
    with TestClient(app, base_url="http://127.0.0.2:8765") as client:
        assert client.get("/api/health").status_code == 200
        assert refused(client.get("/api/health", headers={"host": "evil.example"}), 400)


def test_a_chunked_upload_past_the_limit_is_413(tmp_path: Path) -> None:
    """No Content-Length to check up front: the body is counted as it arrives."""
    app = create_app(ServerSettings(workspace=tmp_path / "ws", max_upload_mb=0.05), run_jobs=False)
    boundary = "calibench-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(40):  # 40 × 64 KiB, far past 2 × 0.05 MB
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    with TestClient(app, base_url=BASE) as client:
        response = client.post(
            "/api/models",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert "larger than the limit of 0.05 MB" in refused(response, 413)
        assert ok(client.get("/api/models")) == []


def test_browsers_get_pages_for_errors(bench: Bench) -> None:
    response = bench.client.get("/no/such/page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "there is no page /no/such/page" in response.text
    response = bench.client.get("/projects/999")
    assert response.status_code == 404 and "there is no project 999" in response.text


def test_detection_dataset_needs_its_map_metric_up_front(tmp_path: Path, fashion_cnn: Path) -> None:
    from zoo.text_detection import write_text_coco

    write_text_coco(tmp_path / "det", 3, seed=0)
    archive = shutil.make_archive(str(tmp_path / "det"), "zip", tmp_path, "det")
    app = create_app(ServerSettings(workspace=tmp_path / "ws"), run_jobs=False)
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn), 201)
        det = ok(post_dataset(client, Path(archive), name="boxes"), 201)
        assert det["task"] == "detection"
        body = {"model_id": model["id"], "dataset_id": det["id"]}
        detail = refused(client.post("/api/projects", json=body), 400)
        assert "detection dataset" in detail and "map:yolox" in detail
        assert ok(client.get("/api/projects")) == []
        refused(client.post("/api/projects", json={**body, "metric": "top1"}), 400)
        ok(client.post("/api/projects", json={**body, "metric": "map:yolox"}), 201)


def test_unlabelled_npz_is_not_annotated_and_its_baseline_runs(
    tmp_path: Path, fashion_cnn: Path
) -> None:
    rng = np.random.default_rng(0)
    images = rng.random((12, 1, 28, 28), dtype=np.float32)
    np.savez(tmp_path / "plain.npz", input=images)
    np.savez(tmp_path / "labelled.npz", input=images, labels=np.arange(12) % 10)
    app = create_app(ServerSettings(workspace=tmp_path / "ws", perf_seconds=0.2))
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn), 201)
        plain = ok(post_dataset(client, tmp_path / "plain.npz"), 201)
        labelled = ok(post_dataset(client, tmp_path / "labelled.npz"), 201)
        assert (plain["task"], plain["annotated"]) == ("tensors", False)
        assert (labelled["task"], labelled["annotated"]) == ("tensors", True)
        project = ok(
            client.post("/api/projects", json={"model_id": model["id"], "dataset_id": plain["id"]}),
            201,
        )
        wait_done(client, project["job"]["id"])
        done = ok(client.get(f"/api/projects/{project['id']}"))
        assert done["accuracy"] is None and done["throughput"] > 0


def test_children_are_listed_under_their_parent(bench: Bench, calibrated: Calibrated) -> None:
    order = [p["id"] for p in ok(bench.client.get("/api/projects"))]
    parent = order.index(bench.project["id"])
    children = {calibrated.default["id"], calibrated.accuracy_aware["id"]}
    assert set(order[parent + 1 : parent + 1 + len(children)]) == children


def test_the_fp32_layer_table_has_times(bench: Bench) -> None:
    """The baseline profiles the model: each layer with a kernel of its own gets its time."""
    layers = ok(bench.client.get(f"/api/models/{bench.model['id']}/layers"))
    timed = [row for row in layers if row.get("time_ms")]
    assert any(row["op_type"] == "Conv" for row in timed)
    assert all(row["time_ms"] > 0 for row in timed)


def test_zero_is_a_value_on_the_optimize_form(bench: Bench) -> None:
    token = csrf_cookie(bench.client)
    before = len(ok(bench.client.get("/api/projects")))
    url = f"/projects/{bench.project['id']}/optimize"
    form = {"csrf_token": token, "dataset_id": str(bench.cal["id"]), "method": "default"}
    response = bench.client.post(url, data={**form, "subset": "0"})
    assert response.status_code == 400 and "subset size must be" in response.text
    response = bench.client.post(url, data={**form, "subset": "100", "batch": "0"})
    assert response.status_code == 400 and "batch size must be between 1" in response.text
    assert len(ok(bench.client.get("/api/projects"))) == before


def test_deleting_projects_datasets_and_models(
    tmp_path: Path, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> None:
    workspace = tmp_path / "ws"
    app = create_app(ServerSettings(workspace=workspace, perf_seconds=0.2))
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn), 201)
        val = ok(post_dataset(client, fashion_archives["val"]), 201)
        spare = ok(post_dataset(client, fashion_archives["plain"], name="spare"), 201)
        parent = ok(
            client.post("/api/projects", json={"model_id": model["id"], "dataset_id": val["id"]}),
            201,
        )
        # A project whose job has not ended cannot go.
        detail = refused(client.delete(f"/api/projects/{parent['id']}"), 409)
        assert "has not ended: cancel it first" in detail
        wait_done(client, parent["job"]["id"])
        child = ok(
            client.post(f"/api/projects/{parent['id']}/optimize", json={"dataset_id": val["id"]}),
            201,
        )
        wait_done(client, child["job"]["id"])
        int8_folder = workspace / "models" / str(child["model"]["id"])
        assert (int8_folder / "model.onnx").is_file()

        detail = refused(client.delete(f"/api/projects/{parent['id']}"), 409)
        assert detail == (
            f"project {parent['id']} was calibrated into INT8 project {child['id']}: "
            "delete it first"
        )
        detail = refused(client.delete(f"/api/datasets/{val['id']}"), 409)
        assert f"is used by projects {parent['id']}, {child['id']}: delete them first" in detail
        detail = refused(client.delete(f"/api/models/{model['id']}"), 409)
        assert detail.endswith(f"is used by project {parent['id']}: delete it first")

        # The INT8 project goes with its model, its report and its job's log.
        assert client.delete(f"/api/projects/{child['id']}").status_code == 204
        refused(client.get(f"/api/projects/{child['id']}"), 404)
        refused(client.get(f"/api/models/{child['model']['id']}"), 404)
        assert not int8_folder.exists()
        assert not (workspace / "projects" / str(child["id"])).exists()
        assert not (workspace / "jobs" / str(child["job"]["id"])).exists()

        assert client.delete(f"/api/projects/{parent['id']}").status_code == 204
        assert ok(client.get(f"/api/models/{model['id']}"))["state"] == "ready"  # stays
        assert client.delete(f"/api/datasets/{spare['id']}").status_code == 204
        assert [d["id"] for d in ok(client.get("/api/datasets"))] == [val["id"]]
        assert len(list((workspace / "datasets").iterdir())) == 1
        assert client.delete(f"/api/models/{model['id']}").status_code == 204
        assert ok(client.get("/api/models")) == []
        assert refused(client.delete("/api/projects/999"), 404) == "there is no project 999"
        assert refused(client.delete("/api/datasets/999"), 404) == "there is no dataset 999"
        assert refused(client.delete("/api/models/999"), 404) == "there is no model 999"
        # A page form needs its token.
        response = client.post(f"/datasets/{val['id']}/delete", data={})
        assert response.status_code == 403


def test_job_page_follows_its_log(bench: Bench) -> None:
    job_id = bench.project["job"]["id"]
    page = bench.client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and f"/fragments/jobs/{job_id}/log" in page.text
    fragment = bench.client.get(f"/fragments/jobs/{job_id}/log")
    assert fragment.status_code == 200
    assert f"job {job_id} done" in fragment.text
    assert "data-active" not in fragment.text  # a finished job's log stops refreshing
    assert bench.client.get("/fragments/jobs/999/log").status_code == 404


def test_every_link_on_the_pages_answers(bench: Bench, calibrated: Calibrated) -> None:
    """Follow every link from the projects page (finished, AccuracyAware and baseline-only
    projects, datasets, models, jobs, comparisons): none is broken, none fails."""
    seen: set[str] = set()
    queue = ["/"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        response = bench.client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        for link in re.findall(r'(?:href|src)="(/[^"#]*)"', response.text):
            if not link.startswith("//") and link not in seen:
                queue.append(link.replace("&amp;", "&"))
    assert len(seen) > 25, sorted(seen)
    assert any(p.endswith("/compare") for p in seen) and any(p.startswith("/jobs/") for p in seen)


def test_optimize_keeps_the_layers_the_user_names_in_fp32(bench: Bench) -> None:
    child = start_calibration(bench, keep_fp32=["Gemm"])
    wait_done(bench.client, child["job"]["id"])
    project = ok(bench.client.get(f"/api/projects/{child['id']}"))
    layers = ok(bench.client.get(f"/api/models/{project['model']['id']}/layers"))
    gemms = [row for row in layers if row["op_type"] == "Gemm"]
    assert gemms and all(row["precision"] == "FP32" for row in gemms)
    assert all(row["reason"].startswith("kept FP32 by you") for row in gemms)
    assert any(row["precision"] == "INT8" for row in layers)
