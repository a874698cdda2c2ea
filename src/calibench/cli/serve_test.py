from pathlib import Path

import pytest

from calibench.cli import build_parser
from calibench.cli.serve import settings_from
from calibench.errors import ConfigError
from calibench.server.settings import ServerSettings


def _settings(tmp_path: Path, *argv: str) -> ServerSettings:
    return settings_from(build_parser().parse_args(["serve", "--workspace", str(tmp_path), *argv]))


def test_the_command_line_wins_and_the_environment_fills_what_it_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALIBENCH_PORT", "9000")
    monkeypatch.setenv("CALIBENCH_MAX_WORKERS", "3")
    monkeypatch.setenv("CALIBENCH_PERF_SECONDS", "0.5")
    settings = _settings(tmp_path, "--workers", "1")
    assert (settings.port, settings.max_workers, settings.perf_seconds) == (9000, 1, 0.5)
    assert _settings(tmp_path, "--port", "8001").port == 8001


def test_defaults_without_arguments_or_variables(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert (settings.host, settings.port, settings.max_workers) == ("127.0.0.1", 8765, 2)
    assert settings.workspace == tmp_path.resolve()


def test_a_short_token_from_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALIBENCH_TOKEN", "short")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        _settings(tmp_path)


def test_ray_comes_from_the_flag_or_calibench_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _settings(tmp_path).ray is None
    assert _settings(tmp_path, "--ray", "127.0.0.1:6379").ray == "127.0.0.1:6379"
    monkeypatch.setenv("CALIBENCH_RAY", "auto")
    assert _settings(tmp_path).ray == "auto"
