from __future__ import annotations

from pathlib import Path

from calibench.server.workspace import Workspace


def test_every_path_lies_in_the_workspace_where_the_rows_say(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.create()
    assert ws.relative(ws.model_file(3)) == "models/3/model.onnx"
    assert ws.relative(ws.report_file(4)) == "projects/4/compare.html"
    assert ws.relative(ws.log_path(5)) == "jobs/5/job.log"
    assert ws.work_dir(5).parent == ws.job_dir(5)
    assert ws.path(ws.dataset_path("ds-1")) == ws.datasets / "ds-1"
    assert ws.database_url == f"sqlite:///{tmp_path / 'workbench.db'}"
    assert all(p.is_dir() for p in (ws.models, ws.datasets, ws.projects, ws.uploads))


def test_only_the_workspace_s_own_uploads_are_an_upload_folder(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert ws.upload_folder("uploads/upload-abc/upload.zip") == ws.uploads / "upload-abc"
    assert ws.upload_folder("datasets/ds-1/upload.zip") is None
    assert ws.upload_folder("uploads/upload.zip") is None


def test_an_import_s_staging_folders_are_found_by_its_folder(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    (ws.datasets / ".ds-1.x7.partial").mkdir(parents=True)
    (ws.datasets / ".ds-2.x7.partial").mkdir()
    assert ws.dataset_staging("ds-1") == [ws.datasets / ".ds-1.x7.partial"]
