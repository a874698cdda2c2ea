from pathlib import Path

import pytest

from calibench.server.settings import ServerSettings


def test_arguments_win_and_the_environment_fills_what_they_leave_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALIBENCH_TOKEN", "from-the-environment-16")
    monkeypatch.setenv("CALIBENCH_MAX_WORKERS", "3")
    settings = ServerSettings(workspace=tmp_path, max_workers=1)
    assert settings.token == "from-the-environment-16"
    assert settings.max_workers == 1
    assert ServerSettings(workspace=tmp_path, token=None).token is None


def test_defaults_and_derived_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALIBENCH_TOKEN", raising=False)
    settings = ServerSettings(workspace=tmp_path, max_upload_mb=0.05)
    assert settings.url == f"sqlite:///{tmp_path / 'workbench.db'}"
    assert settings.max_upload_bytes == 50_000
    assert settings.import_job_bytes == 64_000_000
    assert settings.loopback_only and settings.token is None
    assert not ServerSettings(workspace=tmp_path, host="0.0.0.0").loopback_only
