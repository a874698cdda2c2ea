"""The Ray executor's server side, without a cluster: the address ``--ray`` names, the driver's
environment, and what a driver's lines and its end become (the real cluster's tests are in
tests/test_server_ray.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from calibench.errors import ConfigError
from calibench.server.jobs import ray_executor
from calibench.server.jobs.executor import Failed, Finished
from calibench.server.jobs.ray_executor import (
    RESULT,
    RayExecution,
    check_cluster,
    driver_env,
    resolve_address,
)
from calibench.server.jobs.states import ProgressEvent, Stage, Waiting


def test_auto_is_ray_address_else_the_cluster_ray_start_left_else_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(ConfigError, match="found no Ray cluster on this machine: start one"):
        resolve_address("auto")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:6379\n")
    assert resolve_address("auto") == "127.0.0.1:6379"
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:7000")
    assert resolve_address("auto") == "127.0.0.1:7000"
    assert resolve_address("10.0.0.5:1234") == "10.0.0.5:1234"


def test_a_token_at_hand_turns_token_authentication_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert "RAY_AUTH_MODE" not in driver_env("127.0.0.1:1")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("a" * 32)  # as `ray get-auth-token --generate`
    assert driver_env("127.0.0.1:1")["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    assert "RAY_AUTH_MODE" not in driver_env("127.0.0.1:1")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "b" * 32)
    assert driver_env("127.0.0.1:1")["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the person's choice stays
    assert driver_env("127.0.0.1:1")["RAY_AUTH_MODE"] == "disabled"


def test_a_loopback_cluster_keeps_the_driver_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_gcs_rpc_server_reconnect_timeout_s", raising=False)
    env = driver_env("127.0.0.1:6379")
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["RAY_gcs_rpc_server_reconnect_timeout_s"] == ray_executor.RECONNECT_S
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in driver_env("10.0.0.5:6379")
    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "30")
    assert driver_env("10.0.0.5:6379")["RAY_gcs_rpc_server_reconnect_timeout_s"] == "30"


def test_what_check_cluster_refuses_before_any_ray_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="is not a Ray cluster's address"):
        check_cluster("nonsense")
    with socket_closed() as port, pytest.raises(ConfigError) as raised:
        check_cluster(f"127.0.0.1:{port}")
    assert str(raised.value).startswith(
        f"cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused. Is it started"
    )
    monkeypatch.setattr(ray_executor.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=re.escape("pip install 'calibench[ray]'")):
        check_cluster("auto")


class socket_closed:
    """A port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def _driver(tmp_path: Path, lines: list[object], code: int = 0) -> RayExecution:
    """A stand-in driver that says ``lines`` (JSON, or text as it is) and exits with ``code``."""
    said = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
    script = f"import os, sys; sys.stdout.write({said + chr(10)!r}); sys.stdout.flush(); "
    script += f"os._exit({code})" if code >= 0 else f"os.kill(os.getpid(), {-code})"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    execution = RayExecution(7, proc, tmp_path)
    proc.wait(timeout=60)
    return execution


LOST = "the Ray cluster at 127.0.0.1:1 was lost during statistics: it no longer answers."


def test_a_drivers_lines_become_progress_where_and_its_words(tmp_path: Path) -> None:
    execution = _driver(
        tmp_path,
        [
            {"waiting": True},
            {"waiting": False},
            {"where": {"pid": 42, "node": "127.0.0.1", "host": "h", "version": "0"}},
            "a library printing to stdout",
            {"stage": "statistics", "done": 1, "total": 4, "detail": ""},
            {"stage": "no such stage", "done": 1, "total": 1},
            {"failed": LOST},
        ],
        code=1,
    )
    assert execution.outcome() == Failed(LOST)
    assert execution.events() == [
        Waiting(True),
        Waiting(False),
        ProgressEvent(Stage.STATISTICS, 1, 4),
    ]
    assert execution.where is not None and execution.where["pid"] == 42
    assert execution.worker_pid == execution.proc.pid


def test_a_driver_that_ends_well_brings_the_result_back(tmp_path: Path) -> None:
    (tmp_path / RESULT).write_text(json.dumps({"inference": {}, "files": {}}))
    assert _driver(tmp_path, []).outcome() == Finished({"inference": {}, "files": {}})


def test_a_driver_that_dies_without_words_fails_the_job_with_how(tmp_path: Path) -> None:
    outcome = _driver(tmp_path, [], code=-9).outcome()
    assert isinstance(outcome, Failed)
    assert outcome.message.startswith("the job's Ray driver was killed (SIGKILL) before the job")
    outcome = _driver(tmp_path, [], code=3).outcome()
    assert isinstance(outcome, Failed) and "driver exited (3)" in outcome.message
