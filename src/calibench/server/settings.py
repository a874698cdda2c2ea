"""How a workbench server is set up: where it keeps things, who may reach it, its limits.

One validated object, read from the arguments it is given and, for what they leave out, from
``CALIBENCH_<FIELD>`` environment variables (``CALIBENCH_TOKEN``, ``CALIBENCH_DATABASE_URL``,
``CALIBENCH_PORT``, …: one per field below), then the defaults."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from calibench._files import write_text_atomic
from calibench.server.workspace import Workspace

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALIBENCH_", frozen=True, extra="forbid")

    workspace: Path
    database_url: str | None = None
    """Default: SQLite in the workspace (``workbench.db``)."""
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    """Required on every request when set; always set when bound beyond loopback."""
    max_upload_mb: float = Field(default=2048, gt=0)
    max_workers: int = Field(default=2, ge=1)
    perf_seconds: float = Field(default=3.0, gt=0)
    """How long each performance measurement lasts."""
    import_job_mb: float = Field(default=64, gt=0)
    """A dataset upload larger than this, or an archive declaring more bytes than this once
    unpacked, is imported by a job in a worker process instead of inside the request."""
    ray: str | None = None
    """The Ray cluster that runs the jobs (``HOST:PORT`` or ``auto``); None: worker processes
    on this machine, and nothing of Ray is imported."""

    @property
    def url(self) -> str:
        return self.database_url or Workspace(self.workspace).database_url

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def import_job_bytes(self) -> int:
        return int(self.import_job_mb * 1_000_000)

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host)


def server_token(workspace: Path) -> str:
    """The token of this workspace's server: made at first start, kept (mode 0600) after."""
    path = Workspace(workspace).token_file
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    workspace.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    write_text_atomic(path, token + "\n", mode=0o600)
    return token
