"""The Ray executor (``calibench serve --ray ADDRESS|auto``): each job runs whole on a Ray
cluster, as a :class:`~calibench.server.jobs.ray_actor.JobActor`, through a driver process of
its own on this machine (``ray_driver``, which says why it is a process).

This module runs in the server and never imports Ray: it finds the cluster's address, checks at
start that the cluster answers and runs calibench (``check_cluster``), starts one driver per job
and reads what the driver says (progress, where the job runs, why it failed). A finished job's
files and JSON lie in its work folder, as with a remote target, and the runner commits them in
the server's transaction. A cancel sends the driver SIGTERM; it kills the job's actor and waits
until it is gone. An import (which writes into the workspace itself) runs here.

Every node needs this calibench (``pip install 'calibench[ray]'``): the driver checks the
version the actor runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from calibench.errors import ConfigError
from calibench.server.jobs.executor import Assignment, Execution, Executor, Failed, Finished
from calibench.server.jobs.kinds import ImportJob
from calibench.server.jobs.local import LocalProcess
from calibench.server.jobs.ray_driver import DESCRIPTION, RESULT
from calibench.server.jobs.states import ProgressEvent, Waiting
from calibench.server.settings import is_loopback
from calibench.server.workspace import Workspace

DRIVER_MODULE = "calibench.server.jobs.ray_driver"
CONNECT_TIMEOUT = 5.0
PROBE_TIMEOUT = 180.0
RECONNECT_S = "10"
"""A driver whose cluster has not answered for this many seconds ends (Ray's default is 60)."""
INSTALL = "pip install 'calibench[ray]'"
REFUSED_TOKEN = "Authentication token is missing or incorrect"
"""What Ray logs, retry after retry, when the cluster refuses the token it was given."""


@dataclass(frozen=True)
class Cluster:
    """The cluster ``check_cluster`` found."""

    address: str
    nodes: int
    cpus: int

    def __str__(self) -> str:
        return f"the Ray cluster at {self.address} ({self.nodes} node(s), {self.cpus} CPU(s))"


def resolve_address(address: str) -> str:
    """``HOST:PORT`` as given, or for ``auto`` the cluster Ray itself would find: ``RAY_ADDRESS``,
    else the one ``ray start --head`` last started on this machine."""
    if address != "auto":
        return address
    given = os.environ.get("RAY_ADDRESS", "").strip()
    if given:
        return given
    temp = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir())
    try:
        found = (temp / "ray" / "ray_current_cluster").read_text().strip()
    except OSError:
        found = ""
    if not found:
        raise ConfigError(
            "--ray auto found no Ray cluster on this machine: start one (`ray start --head "
            "--node-ip-address 127.0.0.1`), or give its address (--ray HOST:PORT, RAY_ADDRESS)"
        )
    return found


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray {address!r} is not a Ray cluster's address (HOST:PORT or auto)")
    return host.strip("[]"), int(port)


def driver_env(address: str) -> dict[str, str]:
    """The driver's environment: the server's, no usage statistics, no colour codes in the
    job's log, and a cluster that stops answering noticed in seconds. With a token at hand
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) token
    authentication is on, as ``ray start`` decides it (a Ray client does not, and would be
    refused). For a cluster on
    127.0.0.1, Ray is told not to turn that address into the machine's other one (it would,
    and then neither reach the cluster nor stay on loopback)."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_COLOR_PREFIX": "0"}
    env.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", RECONNECT_S)
    if "RAY_AUTH_MODE" not in env and _token_at_hand(env):
        env["RAY_AUTH_MODE"] = "token"
    if is_loopback(_split(address)[0]):
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    return env


def _token_at_hand(env: dict[str, str]) -> bool:
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return True
    given = env.get("RAY_AUTH_TOKEN_PATH", "").strip()
    return Path(given).is_file() if given else (Path.home() / ".ray" / "auth_token").is_file()


def check_cluster(address: str) -> Cluster:
    """The cluster ``--ray`` names, checked: Ray is installed, the address answers, the cluster
    accepts this machine and its nodes run calibench. A ConfigError in words otherwise."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(f"--ray needs Ray, which is not installed here: {INSTALL}")
    resolved = resolve_address(address)
    host, port = _split(resolved)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ConfigError(
            f"cannot reach the Ray cluster at {resolved}: {error.strerror or error}. Is it "
            "started (`ray start --head`), and is this its address?"
        ) from error
    argv = [sys.executable, "-m", DRIVER_MODULE, "--probe", resolved]
    try:
        done = subprocess.run(
            argv, env=driver_env(resolved), capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )
    except subprocess.TimeoutExpired as error:
        raise ConfigError(
            f"the Ray cluster at {resolved} did not answer within {PROBE_TIMEOUT:.0f} s"
        ) from error
    said = _last_json(done.stdout)
    if REFUSED_TOKEN in done.stderr:
        raise ConfigError(
            f"the Ray cluster at {resolved} refused this machine's token ({REFUSED_TOKEN}): "
            "give the server the cluster's token in ~/.ray/auth_token, RAY_AUTH_TOKEN or "
            "RAY_AUTH_TOKEN_PATH (on its head node, `ray get-auth-token` prints it)"
        )
    if "failed" in said:
        raise ConfigError(str(said["failed"]))
    if done.returncode != 0 or "nodes" not in said:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"cannot use the Ray cluster at {resolved}: {last[:300]}")
    return Cluster(resolved, int(said["nodes"]), int(said["cpus"]))


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        with contextlib.suppress(ValueError):
            found = json.loads(line)
            if isinstance(found, dict):
                return found
    return {}


class RayExecution(Execution):
    """One job's driver process, and what it has said."""

    def __init__(self, job_id: int, proc: subprocess.Popen[bytes], work: Path) -> None:
        self.job_id = job_id
        self.proc = proc
        self.worker_pid = proc.pid
        self.work = work
        self.where: dict[str, Any] | None = None
        """Where the job runs: the actor's ``pid``, ``node``, ``host`` (once it has started)."""
        self._said: queue.Queue[ProgressEvent | Waiting] = queue.Queue()
        self._failed: str | None = None
        assert proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(proc.stdout,), daemon=True, name=f"ray-job-{job_id}"
        )
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # not the driver's: a library printing to stdout
            if "stage" in line:
                with contextlib.suppress(ValueError, KeyError):
                    self._said.put(ProgressEvent.from_json(line))
            elif "waiting" in line:
                self._said.put(Waiting(bool(line["waiting"])))
            elif "where" in line:
                self.where = dict(line["where"])
            elif "failed" in line:
                self._failed = str(line["failed"])

    def events(self) -> list[ProgressEvent | Waiting]:
        found = []
        with contextlib.suppress(queue.Empty):
            while True:
                found.append(self._said.get_nowait())
        return found

    def outcome(self) -> Finished | Failed | None:
        code = self.proc.poll()
        if code is None:
            return None
        self._reader.join(timeout=5)
        if self._failed is not None:
            return Failed(self._failed)
        if code == 0:
            try:
                return Finished(json.loads((self.work / RESULT).read_text(encoding="utf-8")))
            except (OSError, ValueError) as error:
                return Failed(f"the result that came back from the Ray cluster is unreadable "
                              f"({error})")  # fmt: skip
        how = f"was killed ({signal.Signals(-code).name})" if code < 0 else f"exited ({code})"
        return Failed(
            f"the job's Ray driver {how} before the job ended; the job's log has its last "
            "words. Retry runs it again."
        )

    def stop(self) -> None:
        # As a local worker is stopped: SIGTERM (the driver kills the actor and ends), then
        # SIGKILL after a grace (its actor then dies with it, as the actors of a gone driver do).
        LocalProcess(self.job_id, self.proc).stop()
        self._reader.join(timeout=5)


class RayExecutor(Executor):
    """Runs each job on the Ray cluster at ``address`` (an import: on ``local``)."""

    def __init__(self, address: str, workspace: Workspace, local: Executor) -> None:
        self.address = address
        self.workspace = workspace
        self.local = local

    def start(self, job: Assignment) -> Execution:
        if job.kind == ImportJob.KIND:
            return self.local.start(job)
        ws = self.workspace
        work = ws.work_dir(job.job_id)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        stored = ws.job_dir(job.job_id) / DESCRIPTION
        stored.write_text(json.dumps({"kind": job.kind, "description": job.description}))
        log = ws.log_path(job.job_id)
        with log.open("ab") as sink:
            sink.write(f"job {job.job_id} ({job.kind}) goes to the Ray cluster at "
                       f"{self.address}\n".encode())  # fmt: skip
            sink.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", DRIVER_MODULE, str(job.job_id), self.address,
                 str(ws.root), str(os.getpid())],
                env=driver_env(self.address),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=sink,
                start_new_session=True,
            )  # fmt: skip
        return RayExecution(job.job_id, proc, work)

    def kill_orphan(self, job_id: int, worker_pid: int | None) -> None:
        """A driver left by a server that is gone (it also ends by itself when its server has
        gone, and its actor with it); else a local worker's."""
        if worker_pid and _is_driver_of(worker_pid, job_id):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(worker_pid, signal.SIGKILL)
            return
        self.local.kill_orphan(job_id, worker_pid)


def _is_driver_of(pid: int, job_id: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return DRIVER_MODULE.encode() in argv and str(job_id).encode() in argv
