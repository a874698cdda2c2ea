"""Whole jobs on a real Ray cluster (tests/ray_cluster.py: a head and a worker node on
127.0.0.1, token authentication on), through the server's runner, as ``calibench serve --ray``
runs them: a project's baseline and its INT8 calibration run on the cluster and commit here; a
cancel kills the job's actor; the cluster gone mid-job fails the job in words with nothing
committed, and Retry runs it once the cluster is back. And the edges: without ``--ray`` nothing
of Ray is imported (nor with it: the server only starts drivers), an unreachable cluster or a
missing Ray is refused at start in words.

The mid-job faults hold the cluster's measurement lock (``ray_actor.MEASURE_LOCK``), so the job
is certainly running, waiting at its speed measurement, when the fault comes.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from calibench.errors import ConfigError
from calibench.server.app import create_app
from calibench.server.jobs.ray_actor import MEASURE_LOCK
from calibench.server.jobs.ray_executor import check_cluster
from calibench.server.settings import ServerSettings
from tests.ray_cluster import RayCluster, listening, loopback_only
from tests.server_helpers import Server, alive, free_port
from tests.test_server_api import (
    BASE,
    job_log,
    ok,
    post_dataset,
    post_model,
    wait_done,
    wait_job,
)

WAITING = "waiting for the machine"


@pytest.fixture(scope="module")
def cluster_env(ray_cluster: RayCluster) -> Iterator[RayCluster]:
    """The cluster's variables (its token, ``RAY_ADDRESS``) in this process's environment, as
    a person exports them before ``calibench serve --ray auto``."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in ray_cluster.env.items():
            patch.setenv(key, value)
        yield ray_cluster


@dataclass
class OnRay:
    client: TestClient
    workspace: Path
    cluster: RayCluster
    project: dict[str, Any]
    cal: dict[str, Any]


@pytest.fixture(scope="module")
def on_ray(
    tmp_path_factory: pytest.TempPathFactory,
    cluster_env: RayCluster,
    fashion_cnn: Path,
    fashion_archives: dict[str, Path],
) -> Iterator[OnRay]:
    """A server whose jobs run on the cluster, with a project whose baseline ran there."""
    workspace = tmp_path_factory.mktemp("on-ray") / "ws"
    app = create_app(ServerSettings(workspace=workspace, perf_seconds=0.2, ray="auto"))
    assert str(app.state.cluster) == (
        f"the Ray cluster at {cluster_env.address} (2 node(s), {2 * cluster_env.cpus} CPU(s))"
    )
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn), 201)
        val = ok(post_dataset(client, fashion_archives["val"]), 201)
        cal = ok(post_dataset(client, fashion_archives["cal"]), 201)
        body = {"model_id": model["id"], "dataset_id": val["id"]}
        created = ok(client.post("/api/projects", json=body), 201)
        wait_done(client, created["job"]["id"])
        project = ok(client.get(f"/api/projects/{created['id']}"))
        yield OnRay(client, workspace, cluster_env, project, cal)


def _optimize(on_ray: OnRay) -> dict[str, Any]:
    # By rule: the faults are injected while the job waits at its inference measurement, and
    # measured placement would wait for the same lock earlier, during calibration.
    body = {"dataset_id": on_ray.cal["id"], "placement": "rule"}
    child: dict[str, Any] = ok(
        on_ray.client.post(f"/api/projects/{on_ray.project['id']}/optimize", json=body), 201
    )
    return child


@contextmanager
def measurement_held() -> Iterator[None]:
    """Hold the cluster's measurement slot: a job that reaches its speed measurement waits."""
    MEASURE_LOCK.touch()
    with MEASURE_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _actor_pid(client: TestClient, job_id: int, timeout: float = 120) -> int:
    """The pid of the job's actor on the cluster, as the job's log names it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"runs on the Ray cluster at \S+ node \S+ \(.*\), process (\d+)",
                          job_log(client, job_id))  # fmt: skip
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never started on the cluster:\n{job_log(client, job_id)}")


def _wait_stage(client: TestClient, job_id: int, stage: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while ok(client.get(f"/api/jobs/{job_id}"))["stage"] != stage:
        job = ok(client.get(f"/api/jobs/{job_id}"))
        assert job["state"] == "running", f"{job}\n{job_log(client, job_id)}"
        assert time.monotonic() < deadline, job_log(client, job_id)
        time.sleep(0.05)


def _gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.05)


def _job_actors(cluster: RayCluster) -> list[int]:
    """The cluster's processes that are a job's actor (Ray titles them ``ray::JobActor…``)."""
    found = []
    for pid in cluster.processes():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if argv.startswith(b"ray::JobActor"):
            found.append(pid)
    return found


def test_a_baseline_and_a_calibration_run_on_the_cluster_and_commit_here(on_ray: OnRay) -> None:
    client = on_ray.client
    assert on_ray.project["accuracy"] and on_ray.project["throughput"]
    baseline_log = job_log(client, on_ray.project["job"]["id"])
    assert f"runs on the Ray cluster at {on_ray.cluster.address}: node 127.0.0.1" in baseline_log
    child = _optimize(on_ray)
    job = wait_done(client, child["job"]["id"])
    assert [s["name"] for s in job["stages"]][:1] == ["statistics"]
    assert all(s["done"] == s["total"] > 0 for s in job["stages"])
    log = job_log(client, job["id"])
    assert "runs on the Ray cluster" in log and "(JobActor pid=" in log  # the actor's own lines
    assert "\x1b[" not in log  # no terminal colours in the log page
    model = ok(client.get(f"/api/models/{child['model']['id']}"))
    assert model["state"] == "ready" and model["precision"] == "INT8"
    assert (on_ray.workspace / f"models/{model['id']}/model.onnx").is_file()
    child = ok(client.get(f"/api/projects/{child['id']}"))
    assert child["has_comparison"] and child["accuracy"]
    assert not (on_ray.workspace / "jobs" / str(job["id"]) / "work").exists()
    assert loopback_only(on_ray.cluster) == []
    assert _job_actors(on_ray.cluster) == []  # the finished job's actor is gone too


def test_cancel_kills_the_jobs_actor_on_the_cluster(on_ray: OnRay) -> None:
    client = on_ray.client
    with measurement_held():
        child = _optimize(on_ray)
        job_id = child["job"]["id"]
        pid = _actor_pid(client, job_id)
        assert alive(pid) and pid in _job_actors(on_ray.cluster)
        _wait_stage(client, job_id, WAITING)
        # The job's driver (a Ray client of the cluster) listens on 127.0.0.1 only, too.
        driver = ok(client.get(f"/api/jobs/{job_id}"))["worker_pid"]
        sockets = listening([driver])
        assert sockets and {ip for ip, _, _ in sockets} == {"127.0.0.1"}, sockets
        assert loopback_only(on_ray.cluster) == []
        ok(client.post(f"/api/jobs/{job_id}/cancel"))
        job = wait_job(client, job_id)
    assert job["state"] == "cancelled" and job["message"] == "cancelled by the user"
    _gone(pid)
    _gone(driver)
    assert _job_actors(on_ray.cluster) == []
    assert "its actor on the Ray cluster was killed" in job_log(client, job_id)
    model_id = child["model"]["id"]
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "failed"
    assert not (on_ray.workspace / f"models/{model_id}").exists()
    assert not (on_ray.workspace / "jobs" / str(job_id) / "work").exists()


def test_the_cluster_gone_mid_job_fails_it_in_words_and_retry_runs_it_once_back(
    on_ray: OnRay,
) -> None:
    client, cluster = on_ray.client, on_ray.cluster
    try:
        with measurement_held():
            child = _optimize(on_ray)
            job_id, model_id = child["job"]["id"], child["model"]["id"]
            _actor_pid(client, job_id)
            _wait_stage(client, job_id, WAITING)
            cluster.stop()  # every process of the cluster, as a crash or `ray stop` would
            job = wait_job(client, job_id)
        assert job["state"] == "failed", job
        assert job["message"] == (
            f"the Ray cluster at {cluster.address} was lost during inference: it no longer "
            "answers. Nothing the job had produced was kept; Retry runs it again once the "
            "cluster is back."
        )
        assert ok(client.get(f"/api/models/{model_id}"))["state"] == "failed"
        assert not (on_ray.workspace / f"models/{model_id}").exists()
        assert not ok(client.get(f"/api/projects/{child['id']}"))["has_comparison"]
        assert not (on_ray.workspace / "jobs" / str(job_id) / "work").exists()
    finally:
        if not cluster.running():
            cluster.start()
    ok(client.post(f"/api/jobs/{job_id}/retry"))
    wait_done(client, job_id)
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "ready"
    assert ok(client.get(f"/api/projects/{child['id']}"))["has_comparison"]


def test_a_killed_actor_fails_the_job_in_words_and_retry_runs_it_again(on_ray: OnRay) -> None:
    client = on_ray.client
    with measurement_held():
        child = _optimize(on_ray)
        job_id, model_id = child["job"]["id"], child["model"]["id"]
        pid = _actor_pid(client, job_id)
        _wait_stage(client, job_id, WAITING)
        os.kill(pid, signal.SIGKILL)  # the actor's process only: the cluster stays
        job = wait_job(client, job_id)
    assert job["state"] == "failed", job
    assert job["message"].startswith(
        f"the job's actor on the Ray cluster at {on_ray.cluster.address} ended during inference ("
    ), job["message"]
    assert job["message"].endswith("Nothing the job had produced was kept; Retry runs it again.")
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "failed"
    ok(client.post(f"/api/jobs/{job_id}/retry"))
    wait_done(client, job_id)
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "ready"


# the edges ----------------------------------------------------------------------------------------


def test_nothing_of_ray_is_imported_by_the_server_with_or_without_ray(
    cluster_env: RayCluster, tmp_path: Path
) -> None:
    script = (
        "import sys\n"
        "from calibench.server.app import create_app\n"
        "from calibench.server.settings import ServerSettings\n"
        f"create_app(ServerSettings(workspace={str(tmp_path / 'a')!r}))\n"
        "assert 'ray' not in sys.modules, 'ray imported without --ray'\n"
        f"app = create_app(ServerSettings(workspace={str(tmp_path / 'b')!r}, ray='auto'))\n"
        "assert 'ray' not in sys.modules, 'ray imported with --ray'\n"
        "print(app.state.cluster)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert f"the Ray cluster at {cluster_env.address} (2 node(s)" in done.stdout


def test_serve_ray_auto_names_the_cluster(cluster_env: RayCluster, tmp_path: Path) -> None:
    server = Server(tmp_path / "ws", free_port(), ["--ray", "auto"], tmp_path / "serve.log")
    try:
        client = server.start()
        assert ok(client.get("/api/health"))["status"] == "ok"
    finally:
        server.stop()
    said = (tmp_path / "serve.log").read_text()
    assert f"jobs run on the Ray cluster at {cluster_env.address} (2 node(s)" in said


def test_an_unreachable_cluster_is_refused_at_start_in_words(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(ConfigError) as raised:
        check_cluster(f"127.0.0.1:{port}")
    assert str(raised.value).startswith(
        f"cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused. Is it started"
    )
    done = subprocess.run(
        [sys.executable, "-m", "calibench.cli", "serve", "--workspace", str(tmp_path / "ws"),
         "--ray", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "RAY_ADDRESS": ""},
    )  # fmt: skip
    assert done.returncode != 0
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_cluster_that_refuses_this_machines_token_is_refused_in_words(
    cluster_env: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tmp_path / "token"
    wrong.write_text("0" * 64)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(wrong))
    monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", "3")  # Ray retries ~20 s otherwise
    with pytest.raises(ConfigError) as raised:
        check_cluster(cluster_env.address)
    assert str(raised.value) == (
        f"the Ray cluster at {cluster_env.address} refused this machine's token (Authentication "
        "token is missing or incorrect): give the server the cluster's token in "
        "~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH (on its head node, "
        "`ray get-auth-token` prints it)"
    )
