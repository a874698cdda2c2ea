"""What runs on the Ray cluster for one whole job: a :class:`JobActor` in a worker process on
some node, which runs the very job body a local worker runs (``run_job``).

The job's inputs reach it through Ray's object store, not a shared disk: the driver packs each
input the description names (``input_paths()``: a model with its sibling files, a dataset
folder) as an uncompressed tar, ``ray.put``s it, and the actor unpacks it into a workspace of its
own, in a temporary folder of its node, at the path the description names. The result's JSON and
the bytes of the files it names travel back as the method's return value; the server commits
them. The actor never touches the server's database or workspace.

Progress is kept in the actor and handed over when asked (``progress()``, served by a second
thread of the actor while ``run()`` works: ``max_concurrency=2``), so a cancel, which kills the
actor, stops the job where it is. This module does not import Ray: the driver wraps the class.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

from calibench import __version__
from calibench.errors import CalibenchError
from calibench.server.jobs.context import JobContext
from calibench.server.jobs.registry import read_description
from calibench.server.jobs.states import ProgressEvent
from calibench.server.jobs.worker import run_job
from calibench.server.paths import shown
from calibench.server.workspace import Workspace

MEASURE_LOCK = Path(tempfile.gettempdir()) / "calibench-ray-measure.lock"
"""One speed measurement at a time on each node, whichever server's job it is."""


def pack(workspace: Workspace, relative: str) -> bytes:
    """An input as the description names it, as a tar: a folder whole; a file with the files
    beside it (a model's external data)."""
    place = workspace.path(relative)
    folder = place if place.is_dir() else place.parent
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=workspace.relative(folder))
    return buffer.getvalue()


def unpack(workspace: Workspace, blob: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        tar.extractall(workspace.root, filter="data")


class _Relay:
    """A :class:`~calibench.server.jobs.progress.ProgressSink` that keeps what the job reports
    until the driver asks for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []

    def report(self, event: ProgressEvent) -> None:
        with self._lock:
            self._pending.append(event.to_json())

    def waiting(self, on: bool) -> None:
        with self._lock:
            self._pending.append({"waiting": on})

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            taken, self._pending = self._pending, []
        return taken


class JobActor:
    """One job on the cluster (wrapped by ``ray.remote`` in the driver)."""

    def __init__(self) -> None:
        self._relay = _Relay()

    def hello(self) -> dict[str, Any]:
        """Where the job runs, and which calibench runs it (the driver checks it is its own)."""
        import ray

        return {
            "pid": os.getpid(),
            "node": ray.util.get_node_ip_address(),
            "host": socket.gethostname(),
            "version": __version__,
        }

    def progress(self) -> list[dict[str, Any]]:
        return self._relay.take()

    def run(
        self, job_id: int, kind: str, stored: dict[str, Any], *archives: bytes
    ) -> dict[str, Any]:
        """Run the job; ``{"result", "files": {name: bytes}}``, or ``{"error": words}``."""
        root = Path(tempfile.mkdtemp(prefix=f"calibench-job-{job_id}-"))
        workspace = Workspace(root / "ws")
        workspace.create()
        MEASURE_LOCK.touch()
        workspace.measure_lock.symlink_to(MEASURE_LOCK)
        logger = logging.getLogger(f"calibench.job.{job_id}")
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)  # Ray sends it to the driver's log
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
        context = JobContext(job_id, workspace, self._relay, logger)
        try:
            for blob in archives:
                unpack(workspace, blob)
            result = run_job(context, kind, read_description(kind, stored))
            names = (result.get("files") or {}).values()
            files = {name: (context.work / name).read_bytes() for name in names}
            return {"result": result, "files": files}
        except CalibenchError as error:
            logger.error("%s", error)
            return {"error": shown(str(error), workspace.root)}
        except Exception as error:  # the log keeps the traceback; the page shows the words
            logger.error("%s", traceback.format_exc())
            words = f"internal error ({type(error).__name__}: {error}); the job's log has details"
            return {"error": shown(words, workspace.root)}
        finally:
            shutil.rmtree(root, ignore_errors=True)
