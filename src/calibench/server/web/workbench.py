"""The workbench: what the pages and the JSON API do, each action written once in its domain's
service and joined here over one set of sessions, workspace and limits."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from sqlalchemy import select

from calibench.server.db import DatasetRow, JobRow
from calibench.server.jobs.kinds import LOCAL
from calibench.server.jobs.states import LIVE
from calibench.server.web.compare.service import CompareService
from calibench.server.web.datasets.service import DatasetService
from calibench.server.web.jobs.service import JobService
from calibench.server.web.models.service import ModelService, get_model
from calibench.server.web.projects.calibration_data import Candidate, suggested_dataset
from calibench.server.web.projects.compatible import unfit_datasets
from calibench.server.web.projects.figures import layer_summary
from calibench.server.web.projects.optimize import PRESET_HELP, OptimizeService
from calibench.server.web.projects.schemas import ModelPage, OptimizePage
from calibench.server.web.projects.service import ProjectService
from calibench.server.web.targets.fleet import FleetService
from calibench.server.web.targets.service import target_names


class Workbench(
    ProjectService,
    OptimizeService,
    CompareService,
    DatasetService,
    ModelService,
    JobService,
    FleetService,
):
    """Models, datasets, projects and their calibration, jobs, and the targets they run on,
    over one workspace."""

    def optimize_page(self, project_id: int) -> OptimizePage:
        project = self.project_view(project_id)
        datasets = self.datasets()
        with self.sessions() as session:
            rows = session.scalars(select(DatasetRow).where(DatasetRow.state == "ready")).all()
            unfit = unfit_datasets(
                self.workspace,
                get_model(session, project.model.id),
                list(rows),
                project.settings.get("preprocess"),
            )
        candidates = [Candidate(d.id, d.state == "ready", d.samples) for d in datasets]
        return OptimizePage(
            project=project,
            datasets=datasets,
            accuracy_aware_refusal=self.accuracy_aware_refusal(project_id),
            presets=PRESET_HELP,
            targets=[LOCAL, *target_names(self.workspace)],
            suggested_dataset_id=suggested_dataset(project.dataset.id, candidates, unfit),
            unfit=unfit,
        )

    def model_page(self, model_id: int) -> ModelPage:
        detail = self.model_detail(model_id)
        return ModelPage(
            model=detail.model,
            layers=detail.layers,
            summary=layer_summary(detail.layers),
            parent=detail.parent,
            projects=self.projects(model_id=model_id),
        )

    def sweep_leftovers(self, before: float) -> list[Path]:
        """Remove what a killed server left: uploads being received and datasets being
        imported, untouched since ``before`` (this server's start), that no live job names."""
        with self.sessions() as session:
            live = [
                json.dumps(d)
                for d in session.scalars(select(JobRow.description).where(JobRow.state.in_(LIVE)))
            ]
        removed = []
        for path in self.paths.leftovers():
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
