"""How a workbench server is set up: where it keeps things, who may reach it, its limits."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServerSettings:
    workspace: Path
    database_url: str | None = None
    """Default: SQLite in the workspace (``workbench.db``)."""
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    """Required on every request when set; always set when bound beyond loopback."""
    max_upload_mb: float = 2048
    max_workers: int = 2
    perf_seconds: float = 3.0
    """How long each performance measurement lasts."""
    import_job_mb: float = 64
    """A dataset upload larger than this, or an archive declaring more bytes than this once
    unpacked, is imported by a job in a worker process instead of inside the request."""

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.workspace / 'workbench.db'}"

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
    path = workspace / "server-token"
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    workspace.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token
