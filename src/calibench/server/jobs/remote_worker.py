"""The worker that runs on a target: ``python -m calibench.server.jobs.remote_worker JOB_ID
DESCRIPTION RESULT [RELATIVE INPUT]...``, started by the :class:`RemoteExecutor` in a run folder
that ``targets.remote`` laid out (the inputs under ``in/``, the result's folder under ``out/``).

It runs the very job body a local worker runs (``run_job``), in a workspace of its own (``ws/``)
where each input appears at the path the description names, so a remote result is made by the
same code as a local one. It never touches a database: its progress goes to stderr as the
targets' JSON lines, and its result, the JSON plus the files it names, into RESULT's folder,
which the host downloads and commits.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from calibench.errors import CalibenchError
from calibench.server.jobs.context import JobContext
from calibench.server.jobs.registry import read_description
from calibench.server.jobs.states import ProgressEvent
from calibench.server.jobs.worker import run_job
from calibench.server.paths import shown
from calibench.server.workspace import Workspace
from calibench.targets.protocol import progress_line
from calibench.targets.transfer import ROOT


class StderrProgress:
    """A :class:`~calibench.server.jobs.progress.ProgressSink` that the host reads back: one
    JSON line per event (``stage|detail`` as the stage, as a library's callback says it)."""

    def report(self, event: ProgressEvent) -> None:
        stage = f"{event.stage}|{event.detail}" if event.detail else str(event.stage)
        print(progress_line(stage, event.done, event.total), file=sys.stderr, flush=True)

    def waiting(self, on: bool) -> None:
        return None  # the job's log says it waits; the host's bars stay on the stage


def lay_out(workspace: Workspace, relative: str, local: Path) -> None:
    """Make ``relative`` (as the description names it) lead to the uploaded ``local``: a folder
    is linked as it is; a file's siblings come along (a model's external data)."""
    place = workspace.path(relative)
    if place.is_symlink():
        return  # named twice (a dataset that both calibrates and validates)
    place.parent.mkdir(parents=True, exist_ok=True)
    if local.is_dir():
        place.symlink_to(local.resolve(), target_is_directory=True)
        return
    for sibling in local.parent.iterdir():
        link = place.parent / (place.name if sibling.name == local.name else sibling.name)
        if not link.exists():
            link.symlink_to(sibling.resolve())


def run(job_id: int, description_file: Path, result_file: Path, pairs: list[str]) -> int:
    workspace = Workspace(Path("ws").resolve())
    workspace.create()
    # One speed measurement at a time on the target too, whichever server's job it is.
    shared = Path.home() / ROOT / "measure.lock"
    shared.touch()
    workspace.measure_lock.symlink_to(shared)
    for relative, local in zip(pairs[::2], pairs[1::2], strict=True):
        lay_out(workspace, relative, Path(local))
    stored = json.loads(description_file.read_text(encoding="utf-8"))
    kind = stored["kind"]
    logger = logging.getLogger(f"calibench.job.{job_id}")
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    context = JobContext(job_id, workspace, StderrProgress(), logger)
    try:
        description = read_description(kind, stored["description"])
        result: dict[str, Any] = run_job(context, kind, description)
    except CalibenchError as error:
        print(f"calibench: error: {shown(str(error), workspace.root)}", file=sys.stderr)
        return error.exit_code or 1
    out = result_file.parent
    for name in (result.get("files") or {}).values():
        os.replace(context.work / name, out / name)
    result_file.write_text(json.dumps(result), encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    job_id, description_file, result_file, *pairs = argv
    return run(int(job_id), Path(description_file), Path(result_file), pairs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
