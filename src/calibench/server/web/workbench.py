"""The workbench: what the pages and the JSON API do, each action written once in its domain's
service and joined here over one set of sessions, workspace and limits."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from sqlalchemy import select

from calibench.server.db import JobRow
from calibench.server.jobs.states import LIVE
from calibench.server.web.datasets.service import DatasetService
from calibench.server.web.jobs.service import JobService
from calibench.server.web.models.service import ModelService
from calibench.server.web.projects.optimize import OptimizeService
from calibench.server.web.projects.service import ProjectService
from calibench.server.web.targets.fleet import FleetService

LEFTOVERS = (("uploads", "upload-*"), ("datasets", ".ds-*.partial"))
"""What a killed server can leave behind: uploads being received, datasets being imported."""


class Workbench(
    ProjectService, OptimizeService, DatasetService, ModelService, JobService, FleetService
):
    """Models, datasets, projects and their calibration, jobs, and the targets they run on,
    over one workspace."""

    def sweep_leftovers(self, before: float) -> list[Path]:
        """Remove what a killed server left: uploads being received and datasets being
        imported, untouched since ``before`` (this server's start), that no live job names."""
        with self.sessions() as session:
            live = [
                json.dumps(d)
                for d in session.scalars(select(JobRow.description).where(JobRow.state.in_(LIVE)))
            ]
        removed = []
        for folder, pattern in LEFTOVERS:
            for path in sorted((self.workspace / folder).glob(pattern)):
                try:
                    if any(path.name in text for text in live) or _newest(path) >= before:
                        continue
                except OSError:  # gone meanwhile, or unreadable: not ours to judge
                    continue
                shutil.rmtree(path, ignore_errors=True)
                if not path.exists():
                    removed.append(path)
        return removed


def _newest(path: Path) -> float:
    """The latest modification time of a folder or of anything in it."""
    newest = path.lstat().st_mtime
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            try:
                newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
            except OSError:
                continue
    return newest
