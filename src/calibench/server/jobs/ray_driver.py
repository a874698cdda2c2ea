"""The Ray driver of one job: ``python -m calibench.server.jobs.ray_driver JOB_ID ADDRESS
WORKSPACE PARENT_PID``, started by the :class:`~calibench.server.jobs.ray_executor.RayExecutor`;
and ``… ray_driver --probe ADDRESS``, the server's check of its cluster at start.

Why a process of its own rather than ``ray.init`` in the server: a Ray driver whose cluster goes
away ends its process (Ray's core worker exits once the cluster's GCS has not answered for
``gcs_rpc_server_reconnect_timeout_s``); here that ends one job, which fails in words, and the
server goes on. The server itself never imports Ray.

It sends the job's inputs through the object store to a :class:`JobActor` on the cluster,
relays the actor's progress, writes the files the actor brings back into the job's work folder
with the result's JSON, and exits; the server commits them. It tells the server what happens on
stdout, one JSON object per line (``stage``/``done``/``total``/``detail``, ``waiting``, ``where``,
``failed``); what it logs goes to stderr, the job's log. SIGTERM (a cancel, the server stopping)
kills the actor and waits until it is gone.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from calibench import __version__
from calibench.server.jobs.ray_actor import JobActor, pack
from calibench.server.jobs.registry import read_description
from calibench.server.jobs.worker import _exit_with_parent
from calibench.server.workspace import Workspace

DESCRIPTION = "description.json"
RESULT = "result.json"
NAMESPACE = "calibench"
POLL = 0.25
"""Seconds between two progress relays."""
WAITING_AFTER = 10.0
"""Seconds after which an actor the cluster has not placed yet shows the job as waiting."""
LOST_WITHIN = 3.0
"""Seconds the GCS must keep answering after an actor is lost for the cluster to count as up."""


class Stopped(Exception):
    """SIGTERM: the job is cancelled, or the server stops."""


class Unreachable(Exception):
    """``ray.init`` failed; the words say why."""


def say(**line: Any) -> None:
    print(json.dumps(line), flush=True)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _connect(address: str) -> Any:
    import ray

    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            log_to_driver=True,  # the actor's log lines land in the job's log
            logging_level=logging.WARNING,
        )
    except Exception as error:  # ray.init's own: a refused token, another Ray version, …
        raise Unreachable(f"cannot connect to the Ray cluster at {address}: "
                          f"{_first_line(error)}") from error  # fmt: skip
    return ray


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip(": ")


def lost(address: str, stage: str | None, error: BaseException) -> str:
    """Words for a Ray error that ended the job: the whole cluster gone (its GCS no longer
    takes connections), or only the job's actor (its process or node ended)."""
    log(f"Ray: {error}")
    during = f" during {stage}" if stage else ""
    if not _answers(address, LOST_WITHIN):
        return (
            f"the Ray cluster at {address} was lost{during}: it no longer answers. Nothing the "
            "job had produced was kept; Retry runs it again once the cluster is back."
        )
    return (
        f"the job's actor on the Ray cluster at {address} ended{during} "
        f"({_first_line(error)[:200]}). Nothing the job had produced was kept; Retry runs it "
        "again."
    )


def _answers(address: str, within: float) -> bool:
    """Whether the cluster's GCS keeps taking connections for ``within`` seconds (a cluster
    that is going down loses its actors' processes and its GCS about together)."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
        except (OSError, ValueError):
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.25)


def run(job_id: int, address: str, workspace: Workspace) -> int:
    stored = json.loads((workspace.job_dir(job_id) / DESCRIPTION).read_text(encoding="utf-8"))
    kind, description = stored["kind"], stored["description"]
    inputs = dict.fromkeys(read_description(kind, description).input_paths())
    stage: str | None = None
    actor: Any = None
    from ray.exceptions import RayError

    try:
        ray = _connect(address)
        signal.signal(signal.SIGTERM, _stop)  # after ray.init, which sets its own
        refs = [ray.put(pack(workspace, relative)) for relative in inputs]
        actor = (
            ray.remote(JobActor)
            .options(
                name=f"job-{job_id}-{os.getpid()}",
                num_cpus=1,
                max_concurrency=2,  # progress() answers while run() works
                max_restarts=0,
            )
            .remote()
        )
        where = _placed(ray, actor)
        if where["version"] != __version__:
            say(failed=f"node {where['node']} of the Ray cluster runs calibench "
                       f"{where['version']}, this server {__version__}: install the same "
                       "version on every node")  # fmt: skip
            return 1
        say(where=where)
        log(f"job {job_id} ({kind}) runs on the Ray cluster at {address}: node {where['node']} "
            f"({where['host']}), process {where['pid']}")  # fmt: skip
        done = actor.run.remote(job_id, kind, description, *refs)
        while True:
            _check_stop()
            ready, _ = ray.wait([done], timeout=POLL)
            for event in ray.get(actor.progress.remote(), timeout=60):
                stage = event.get("stage", stage)
                say(**event)
            if ready:
                break
        out = ray.get(done)
    except Stopped:
        _kill(actor)
        log(f"job {job_id}: stopped; its actor on the Ray cluster was killed")
        return 0
    except Unreachable as error:
        say(failed=str(error))
        return 1
    except RayError as error:
        say(failed=lost(address, stage, error))
        return 1
    except Exception as error:  # the log keeps the traceback; the page shows the words
        log(traceback.format_exc())
        say(failed=f"internal error in the job's Ray driver ({_first_line(error)[:200]}); the "
                   "job's log has the details")  # fmt: skip
        return 1
    if "error" in out:
        say(failed=out["error"])
        return 1
    work = workspace.work_dir(job_id)
    for name, data in out["files"].items():
        (work / name).write_bytes(data)
    (work / RESULT).write_text(json.dumps(out["result"]), encoding="utf-8")
    _kill(actor)
    return 0


def _placed(ray: Any, actor: Any) -> dict[str, Any]:
    """The actor's ``hello()`` once the cluster has placed it; the job shows as waiting while
    the cluster has no free CPU for it."""
    answer = actor.hello.remote()
    started = time.monotonic()
    waiting = False
    while not ray.wait([answer], timeout=POLL)[0]:
        _check_stop()
        if not waiting and time.monotonic() - started > WAITING_AFTER:
            waiting = True
            say(waiting=True)
            log("waiting for a free CPU on the Ray cluster")
    if waiting:
        say(waiting=False)
    found: dict[str, Any] = ray.get(answer)
    return found


def _kill(actor: Any) -> None:
    """Kill the job's actor and wait until Ray reports it dead (its process is gone)."""
    if actor is None:
        return
    import ray
    from ray.exceptions import RayError

    try:
        ray.kill(actor, no_restart=True)
    except Exception as error:  # the cluster is gone: the actor with it
        log(f"could not kill the job's actor ({_first_line(error)})")
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            ray.get(actor.hello.remote(), timeout=2)
        except RayError:
            return
        time.sleep(0.1)


def probe(address: str) -> int:
    """Connect, and run one task that imports calibench: the cluster answers, accepts this
    machine's token, and its nodes have calibench. One JSON line: its nodes and CPUs."""
    from ray.exceptions import RayError

    try:
        ray = _connect(address)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = int(ray.cluster_resources().get("CPU", 0))
        version = ray.get(ray.remote(_version).options(num_cpus=0).remote(), timeout=120)
    except Unreachable as error:
        say(failed=str(error))
        return 1
    except RayError as error:
        say(failed=f"the Ray cluster at {address} cannot run calibench: {_first_line(error)}")
        return 1
    say(nodes=len(nodes), cpus=cpus, version=version)
    return 0


def _version() -> str:
    return __version__


_STOPPING = threading.Event()


def _stop(signum: int, frame: object) -> None:
    # Only a flag: an exception raised in a signal handler would surface inside Ray's own
    # (Cython) calls as a SystemError; the loops below look at the flag every POLL seconds.
    _STOPPING.set()


def _check_stop() -> None:
    if _STOPPING.is_set():
        raise Stopped()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        return probe(argv[1])
    job_id, address, workspace, parent = argv
    # A driver does not outlive its server; its end ends its actor (Ray kills a gone driver's).
    _exit_with_parent(int(parent))
    return run(int(job_id), address, Workspace(Path(workspace)))


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: Ray's shutdown at exit may wait on a cluster that is gone.
    os._exit(code)
