"""A workbench server killed while a calibration runs, and started again on the same workspace.

Through the real CLI (``python -m calibench.cli serve``) and the JSON API: MobileNetV2 calibrated
on its own unannotated photos lasts long enough to be caught in the middle. The server and its
worker die with SIGKILL (no shutdown code runs); the restarted server must show the job as
interrupted, keep nothing the job had half made, keep everything else, and let Retry finish it.
On SQLite (the default, in the workspace) and on a real PostgreSQL server (``--database-url``);
and once stopped by Ctrl-C instead, when the server itself stops its workers and says so.
"""

from __future__ import annotations

import io
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import onnx
import pytest

from calibench.server.db import JobRow, make_engine, session_factory
from calibench.server.jobs.runner import STOPPED
from tests.server_helpers import Server, alive, free_port, reset_postgres

JOB_TIMEOUT = 150.0


def _workers(workspace: Path) -> set[int]:
    """Live worker processes (``calibench.server.jobs.worker``) of this workspace's servers."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        mine = b"calibench.server.jobs.worker" in argv and str(workspace).encode() in argv
        if mine and alive(int(proc.name)):
            found.add(int(proc.name))
    return found


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(
    params=[
        ("sqlite", "group"),
        ("sqlite", "server only"),
        ("sqlite", "ctrl-c"),
        ("postgresql", "group"),
    ],
    ids=["sqlite", "sqlite-server-only", "sqlite-ctrl-c", "postgresql"],
)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(database URL, what the SIGKILL hits): the server's process group, or its process only
    (its workers must then notice and stop by themselves)."""
    database, kill = request.param
    if database == "sqlite":
        yield f"sqlite:///{tmp_path / 'workspace' / 'workbench.db'}", kill
        return
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    yield url, kill
    reset_postgres(url)


@pytest.fixture(scope="module")
def photos_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 natural crops (256×256), archived as a user uploads them."""
    from zoo.photos import write_image_folder

    root = tmp_path_factory.mktemp("photos")
    write_image_folder(root / "photos", 64, size=256)
    return Path(shutil.make_archive(str(root / "photos"), "zip", root, "photos"))


def _job(client: httpx.Client, job_id: int) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _finish(client: httpx.Client, job_id: int) -> dict[str, Any]:
    _wait(lambda: _job(client, job_id)["state"] in ("done", "failed", "cancelled"),
          JOB_TIMEOUT, f"job {job_id} to end")  # fmt: skip
    job = _job(client, job_id)
    if job["state"] != "done":
        log = client.get(f"/api/jobs/{job_id}/log").text
        raise AssertionError(f"job {job_id} {job['state']}: {job['message']}\n{log[-3000:]}")
    return job


def _is_int8(data: bytes) -> bool:
    ops = {node.op_type for node in onnx.load_model_from_string(data).graph.node}
    return "QuantizeLinear" in ops or any(op.startswith("QLinear") for op in ops)


def test_a_restarted_server_fails_the_interrupted_job_and_retry_finishes_it(
    setup: tuple[str, str], tmp_path: Path, mobilenet_path: Path, photos_zip: Path
) -> None:
    database_url, kill = setup
    workspace = tmp_path / "workspace"
    extra = [] if database_url.startswith("sqlite") else ["--database-url", database_url]
    port = free_port()
    first = Server(workspace, port, extra, tmp_path / "server-1.log")
    second = Server(workspace, port, extra, tmp_path / "server-2.log")
    engine = None
    try:
        client = first.start()
        fp32_bytes = mobilenet_path.read_bytes()
        response = client.post(
            "/api/models",
            files={"file": ("mobilenet_v2.onnx", io.BytesIO(fp32_bytes))},
            data={"name": "mobilenet"},
        )
        assert response.status_code == 201, response.text
        fp32 = response.json()
        assert fp32["optimizable"] and fp32["state"] == "ready"
        with photos_zip.open("rb") as f:
            response = client.post(
                "/api/datasets",
                files={"file": ("photos.zip", f)},
                data={"name": "photos", "type": "not-annotated"},
            )
        assert response.status_code == 201, response.text
        photos = response.json()
        assert (photos["task"], photos["samples"], photos["annotated"]) == (
            "not-annotated", 64, False,
        )  # fmt: skip
        response = client.post(
            "/api/projects", json={"model_id": fp32["id"], "dataset_id": photos["id"]}
        )
        assert response.status_code == 201, response.text
        project = response.json()
        baseline = _finish(client, project["job"]["id"])

        response = client.post(
            f"/api/projects/{project['id']}/optimize",
            json={"dataset_id": photos["id"], "subset_percent": 100, "method": "default"},
        )
        assert response.status_code == 201, response.text
        child = response.json()
        int8_id, job_id = child["model"]["id"], child["job"]["id"]
        assert child["model"]["state"] == "pending"

        # Everything that must survive the crash, as the API shows it now.
        before = {
            "project": client.get(f"/api/projects/{project['id']}").json(),
            "datasets": client.get("/api/datasets").json(),
            "fp32": client.get(f"/api/models/{fp32['id']}").json(),
            "layers": client.get(f"/api/models/{fp32['id']}/layers").json(),
            "baseline": _job(client, baseline["id"]),
        }
        assert before["project"]["status"] == "done"
        assert before["project"]["inference"]["performance"]["throughput"] > 0
        assert before["project"]["children"] == [child["id"]]
        assert before["layers"]

        _wait(lambda: _job(client, job_id)["stage"] is not None, 60, "the calibration to start")
        job = _job(client, job_id)
        assert job["state"] == "running", job
        assert job["stage"] in ("statistics", "quantization", "bias correction"), job
        engine = make_engine(database_url)
        sessions = session_factory(engine)
        with sessions() as session:
            row = session.get(JobRow, job_id)
            assert row is not None and row.worker_pid is not None
            worker = row.worker_pid
        assert worker in _workers(workspace)

        if kill == "ctrl-c":  # a person stops the server: it stops its workers itself
            first.kill(signal.SIGINT, group=False)
        else:
            first.kill(signal.SIGKILL, group=kill == "group")
        assert first.proc is not None
        first.proc.wait(timeout=30)
        with sessions() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            if kill == "ctrl-c":
                assert (row.state, row.message) == ("failed", STOPPED)
            else:  # nothing ran at the kill: the row still says running
                assert row.state == "running"
        # Its workers do not outlive it, even when only the server process was killed.
        _wait(lambda: not alive(worker), 5, f"worker {worker} of the killed server to end")
        client.close()

        client = second.start()
        job = _job(client, job_id)
        assert job["state"] == "failed", job
        expected = STOPPED if kill == "ctrl-c" else "interrupted"
        assert job["message"].startswith(expected), job["message"]
        assert job["finished_at"] is not None
        assert not alive(worker)
        assert _workers(workspace) == set()

        int8 = client.get(f"/api/models/{int8_id}").json()
        assert int8["state"] != "ready"
        assert int8["state"] == "failed"
        assert client.get(f"/api/models/{int8_id}/file").status_code == 409
        int8_file = workspace / "models" / str(int8_id) / "model.onnx"
        assert not int8_file.exists()
        assert not (workspace / "jobs" / str(job_id) / "work").exists()
        interrupted = client.get(f"/api/projects/{child['id']}").json()
        assert interrupted["status"] == "failed"
        assert interrupted["inference"] is None and not interrupted["has_comparison"]
        assert client.get(f"/api/projects/{child['id']}/compare").status_code == 409

        assert client.get(f"/api/projects/{project['id']}").json() == before["project"]
        assert client.get("/api/datasets").json() == before["datasets"]
        assert client.get(f"/api/models/{fp32['id']}").json() == before["fp32"]
        assert client.get(f"/api/models/{fp32['id']}/layers").json() == before["layers"]
        assert _job(client, baseline["id"]) == before["baseline"]
        download = client.get(f"/api/models/{fp32['id']}/file")
        assert download.status_code == 200 and download.content == fp32_bytes

        response = client.post(f"/api/jobs/{job_id}/retry")
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "queued"
        assert client.get(f"/api/models/{int8_id}").json()["state"] == "pending"
        job = _finish(client, job_id)
        assert (job["message"], job["attempts"]) == (None, 2)
        int8 = client.get(f"/api/models/{int8_id}").json()
        assert int8["state"] == "ready"
        assert int8_file.is_file() and int8_file.stat().st_size == int8["size_bytes"]
        download = client.get(f"/api/models/{int8_id}/file")
        assert download.status_code == 200
        assert download.content == int8_file.read_bytes() and _is_int8(download.content)
        done = client.get(f"/api/projects/{child['id']}").json()
        assert done["status"] == "done" and done["has_comparison"]
        assert done["inference"]["performance"]["throughput"] > 0
        assert client.get(f"/api/projects/{child['id']}/compare").status_code == 200
        client.close()
    finally:
        if engine is not None:
            engine.dispose()
        second.stop()
        first.stop()
    for pid in _workers(workspace):  # outside `finally`: only when the test itself passed
        raise AssertionError(f"worker process {pid} outlived both servers")
