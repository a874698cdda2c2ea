"""The workbench's targets, against a real loopback sshd (tests/sshd.py): the targets API (an
unknown host key answered 409 with its fingerprint, then accepted; the check; a changed key
refused; removal), and jobs on a target through the server's runner: a project's baseline and
its INT8 calibration run there and commit here, a cancel kills the remote run, a killed remote
process fails the job with nothing committed, and Retry runs it again. The fleet comparison
then shows the target beside this machine.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from calibench.server.app import create_app
from calibench.server.settings import ServerSettings
from calibench.targets.registry import Registry, Target
from tests.conftest import TEST_WHEELHOUSE
from tests.sshd import Machines
from tests.test_server_api import (
    BASE,
    job_log,
    ok,
    post_dataset,
    post_model,
    refused,
    wait_done,
    wait_job,
)


@dataclass
class Fleet:
    client: TestClient
    workspace: Path
    machines: Machines
    model: dict[str, Any]
    val: dict[str, Any]
    cal: dict[str, Any]


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    ready_target: Path,
    machines: Machines,
    fashion_cnn: Path,
    fashion_archives: dict[str, Path],
) -> Iterator[Fleet]:
    """A server whose workspace shares the session's wheelhouse (so the target, set up once by
    ``ready_target``, is reused) and knows no target yet."""
    workspace = tmp_path_factory.mktemp("fleet") / "ws"
    workspace.mkdir()
    (workspace / "wheelhouse").symlink_to(TEST_WHEELHOUSE.resolve())
    app = create_app(ServerSettings(workspace=workspace, perf_seconds=0.2))
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn), 201)
        val = ok(post_dataset(client, fashion_archives["val"]), 201)
        cal = ok(post_dataset(client, fashion_archives["cal"]), 201)
        yield Fleet(client, workspace, machines, model, val, cal)


def _edge(fleet: Fleet, **more: Any) -> dict[str, Any]:
    server = fleet.machines.servers[0]
    return {
        "name": "edge",
        "host": "127.0.0.1",
        "port": server.port,
        "user": fleet.machines.user,
        "key_file": str(fleet.machines.key),
        **more,
    }


@pytest.fixture(scope="module")
def edge(fleet: Fleet) -> dict[str, Any]:
    """The target ``edge`` (the first sshd), added through the API."""
    client = fleet.client
    question = ok(client.post("/api/targets", json=_edge(fleet)), 409)
    fingerprint = fleet.machines.servers[0].host_key
    assert question["fingerprint"] == fingerprint and question["which"] == "target"
    assert "is not known yet" in question["detail"] and fingerprint in question["detail"]
    assert ok(client.get("/api/targets")) == []  # nothing stored before the key is accepted
    added = ok(client.post("/api/targets", json=_edge(fleet, accept_host_key=fingerprint)), 201)
    assert added["host_key"] == fingerprint and added["status"] == "not checked"
    return added


def _wait_stage(client: TestClient, job_id: int, stages: set[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while ok(client.get(f"/api/jobs/{job_id}"))["stage"] not in stages:
        assert time.monotonic() < deadline, job_log(client, job_id)
        time.sleep(0.05)


def _gone(pid: int, timeout: float = 30) -> None:
    """Wait until the process has ended (a zombie has)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError(f"the remote process {pid} still runs")


# the targets API ----------------------------------------------------------------------------------


def test_a_target_is_stored_only_with_the_host_key_the_user_accepted(
    fleet: Fleet, edge: dict[str, Any]
) -> None:
    client = fleet.client
    stored = Registry(fleet.workspace).get("edge")  # the file `calibench target` reads
    assert stored.host_key == fleet.machines.servers[0].host_key
    assert [t["name"] for t in ok(client.get("/api/targets"))] == ["edge"]
    # Accepting another key than the machine's is refused, and stores nothing.
    other = fleet.machines.servers[1].host_key
    detail = refused(
        client.post("/api/targets", json=_edge(fleet, name="x", accept_host_key=other)), 409
    )
    assert f"not {other} that you accepted" in detail
    assert refused(client.post("/api/targets", json=_edge(fleet)), 409) == (
        "a target named 'edge' exists; remove it first"
    )
    # What SSH cannot carry is refused in words, before (422) or by SSH (400).
    assert "user: String should match pattern" in refused(
        client.post("/api/targets", json=_edge(fleet, name="y", user="a\x1f")), 422
    )
    assert "Prohibited character" in refused(
        client.post("/api/targets", json=_edge(fleet, name="y", user="a\x85")), 400
    )
    assert [t.name for t in Registry(fleet.workspace).all()] == ["edge"]


def test_the_check_shows_the_findings_and_the_verdict(fleet: Fleet, edge: dict[str, Any]) -> None:
    checked = ok(fleet.client.post("/api/targets/edge/check"))
    assert checked["status"] == "available", checked
    findings = checked["findings"]
    assert findings["verdict"] and findings["isa"] and findings["cores"] >= 1
    assert findings["setup"].startswith("calibench ")
    assert ("verdict", findings["verdict"]) in [tuple(r) for r in findings["rows"]]
    page = fleet.client.get("/targets/edge").text
    assert findings["verdict"] in page and "available" in page


def test_a_changed_host_key_is_refused_and_a_target_can_be_removed(fleet: Fleet) -> None:
    client = fleet.client
    machines = fleet.machines
    # "moved": the second machine answers where the first one's key was accepted.
    Registry(fleet.workspace).put(
        Target("moved", "127.0.0.1", machines.user, machines.servers[1].port,
               str(machines.key), machines.servers[0].host_key)
    )  # fmt: skip
    detail = refused(client.post("/api/targets/moved/check"), 409)
    assert "has CHANGED" in detail and machines.servers[1].host_key in detail
    assert client.delete("/api/targets/moved").status_code == 204
    # A machine that does not answer is unreachable, with the reason.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    Registry(fleet.workspace).put(
        Target("down", "127.0.0.1", machines.user, port, str(machines.key), "SHA256:x")
    )
    down = ok(client.post("/api/targets/down/check"))
    assert down["status"] == "unreachable" and "connection refused" in down["reason"]
    assert client.delete("/api/targets/down").status_code == 204
    assert refused(client.get("/api/targets/moved"), 404).startswith("no target named 'moved'")
    assert refused(client.delete("/api/targets/moved"), 404).startswith("no target named")


def test_setup_reports_each_step(fleet: Fleet, edge: dict[str, Any]) -> None:
    done = ok(fleet.client.post("/api/targets/edge/setup"))
    assert done["ok"] is True and done["reason"] is None
    names = [s["name"] for s in done["steps"]]
    assert names[0] == "check the target's Python"
    assert "up to date: reused" in done["steps"][-1]["outcome"]  # ready_target installed it


# jobs on the target -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def on_edge(fleet: Fleet, edge: dict[str, Any]) -> dict[str, Any]:
    """A project on ``edge`` whose baseline ran there."""
    body = {"model_id": fleet.model["id"], "dataset_id": fleet.val["id"], "target": "edge"}
    project = ok(fleet.client.post("/api/projects", json=body), 201)
    assert project["target"] == "edge"
    job = wait_done(fleet.client, project["job"]["id"])
    stages = [s["name"] for s in job["stages"]]
    assert stages[:2] == ["preparing assets", "uploading"] and stages[-1] == "downloading results"
    assert "runs on target edge" in job_log(fleet.client, job["id"])
    found: dict[str, Any] = ok(fleet.client.get(f"/api/projects/{project['id']}"))
    return found


def _optimize(fleet: Fleet, project: dict[str, Any], **more: Any) -> dict[str, Any]:
    body = {"dataset_id": fleet.cal["id"], **more}
    child: dict[str, Any] = ok(
        fleet.client.post(f"/api/projects/{project['id']}/optimize", json=body), 201
    )
    return child


def test_a_calibration_on_the_target_commits_here(fleet: Fleet, on_edge: dict[str, Any]) -> None:
    client = fleet.client
    assert on_edge["throughput"] and on_edge["accuracy"]
    child = _optimize(fleet, on_edge)
    assert child["target"] == "edge"  # the parent's target by default
    wait_done(client, child["job"]["id"])
    child = ok(client.get(f"/api/projects/{child['id']}"))
    assert child["has_comparison"] and child["throughput"]
    # Measured placement (the default) timed the layers where the calibration ran: on edge.
    notes = child["calibration"]["report"]["notes"]
    assert any(n.startswith("placement timing (batch 1, ") for n in notes), notes
    model = ok(client.get(f"/api/models/{child['model']['id']}"))
    assert model["state"] == "ready" and model["precision"] == "INT8"
    assert (fleet.workspace / f"models/{model['id']}/model.onnx").is_file()
    assert (fleet.workspace / f"projects/{child['id']}/compare.html").is_file()
    assert fleet.machines.run_folders() == []  # the remote folder went with the run
    # The fleet comparison: this machine (no project there yet) beside edge.
    view = ok(client.get(f"/api/models/{fleet.model['id']}/fleet"))
    rows = {r["target"]: r for r in view["rows"]}
    assert list(rows) == ["this machine", "edge"]
    assert rows["edge"]["int8_project"] == child["id"] and rows["edge"]["speedup"]
    assert rows["edge"]["verdict"] and rows["this machine"]["verdict"]
    assert rows["this machine"]["fp32_throughput"] is None
    page = client.get(f"/models/{fleet.model['id']}/fleet").text
    assert 'data-target="edge"' in page and "fleet-bar int8" in page


def test_a_calibration_here_from_a_project_on_the_target(
    fleet: Fleet, on_edge: dict[str, Any]
) -> None:
    child = _optimize(fleet, on_edge, target="this machine")
    assert child["target"] == "this machine"
    job = wait_done(fleet.client, child["job"]["id"])
    assert "uploading" not in [s["name"] for s in job["stages"]]
    detail = refused(
        fleet.client.post(
            f"/api/projects/{on_edge['id']}/optimize",
            json={"dataset_id": fleet.cal["id"], "target": "nowhere"},
        ),
        404,
    )
    assert detail.startswith("no target named 'nowhere'; known targets: edge")


def test_cancel_stops_the_remote_run(fleet: Fleet, on_edge: dict[str, Any]) -> None:
    client = fleet.client
    child = _optimize(fleet, on_edge)
    job_id = child["job"]["id"]
    pid = fleet.machines.wait_run_pid()
    busy = ok(client.get("/api/targets/edge"))
    assert busy["status"] == "busy" and busy["reason"] == "running 1 job(s) from here"
    ok(client.post(f"/api/jobs/{job_id}/cancel"))
    job = wait_job(client, job_id)
    assert job["state"] == "cancelled" and job["message"] == "cancelled by the user"
    _gone(pid)
    assert fleet.machines.run_folders() == []
    model = ok(client.get(f"/api/models/{child['model']['id']}"))
    assert model["state"] == "failed"
    assert not (fleet.workspace / f"models/{model['id']}/model.onnx").exists()


def test_a_killed_remote_process_fails_the_job_and_retry_runs_it_again(
    fleet: Fleet, on_edge: dict[str, Any]
) -> None:
    client = fleet.client
    child = _optimize(fleet, on_edge)
    job_id = child["job"]["id"]
    pid = fleet.machines.wait_run_pid()
    os.kill(pid, signal.SIGKILL)
    job = wait_job(client, job_id)
    assert job["state"] == "failed"
    assert "on target edge was killed (SIGKILL) during calibration" in job["message"]
    assert not ok(client.get(f"/api/projects/{child['id']}"))["has_comparison"]
    model_id = child["model"]["id"]
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "failed"
    assert not (fleet.workspace / f"models/{model_id}/model.onnx").exists()
    assert not (fleet.workspace / "jobs" / str(job_id) / "work").exists()
    ok(client.post(f"/api/jobs/{job_id}/retry"))
    wait_done(client, job_id)
    assert ok(client.get(f"/api/models/{model_id}"))["state"] == "ready"
    assert ok(client.get(f"/api/projects/{child['id']}"))["has_comparison"]


def test_the_fleet_compares_two_targets_and_this_machine(
    fleet: Fleet, on_edge: dict[str, Any]
) -> None:
    """The second sshd stands for a second machine: a baseline there, one here."""
    client = fleet.client
    second = fleet.machines.servers[1]
    body = _edge(fleet, name="edge2", port=second.port, accept_host_key=second.host_key)
    ok(client.post("/api/targets", json=body), 201)
    for target in ("edge2", "this machine"):
        create = {"model_id": fleet.model["id"], "dataset_id": fleet.val["id"], "target": target}
        wait_done(client, ok(client.post("/api/projects", json=create), 201)["job"]["id"])
    ok(client.post("/api/targets/edge2/check"))
    rows = ok(client.get(f"/api/models/{fleet.model['id']}/fleet"))["rows"]
    assert [r["target"] for r in rows] == ["this machine", "edge", "edge2"]
    assert all(r["fp32_throughput"] and r["verdict"] for r in rows)
    projects = ok(client.get("/api/projects"))
    assert {p["target"] for p in projects} == {"this machine", "edge", "edge2"}


def test_two_projects_on_the_target_are_timed_side_by_side_there(
    fleet: Fleet, on_edge: dict[str, Any]
) -> None:
    """Compare's side-by-side timing of two INT8 projects on ``edge`` runs there; a pair on two
    machines is refused in words."""
    client = fleet.client
    first, second = _optimize(fleet, on_edge), _optimize(fleet, on_edge, subset_percent=50)
    here = _optimize(fleet, on_edge, target="this machine")
    for child in (first, second, here):
        wait_done(client, child["job"]["id"])
    job = ok(client.post("/api/compare/timing", json={"a": first["id"], "b": second["id"]}), 202)
    stages = [s["name"] for s in wait_done(client, job["id"])["stages"]]
    assert stages == [
        "preparing assets", "uploading", "checking both models", "timing side by side",
        "downloading results",
    ]  # fmt: skip
    assert "runs on target edge" in job_log(client, job["id"])
    timing = ok(client.get("/api/compare", params={"a": first["id"], "b": second["id"]}))["timing"]
    assert timing["job_id"] == job["id"] and timing["a"]["throughput"] > 0
    assert "(timed side by side, batch 1 × 1 stream" in timing["sentence"]
    detail = refused(
        client.post("/api/compare/timing", json={"a": first["id"], "b": here["id"]}), 409
    )
    assert detail == (
        f"project {first['id']} runs its jobs on target 'edge' and project {here['id']} on this "
        "machine: two models are timed side by side on one machine, so both projects must name "
        "the same target"
    )
