"""A throw-away real PostgreSQL server for tests.

`running_postgres()` runs initdb in a fresh temporary directory, starts the server on a free port
of 127.0.0.1, creates the database `calibench_test`, yields its SQLAlchemy URL, and on exit stops
the server and deletes everything. It needs the server binaries (`apt-get install -y postgresql`,
which `make test` does). PostgreSQL refuses to run as root, so under root the server runs as the
`postgres` system user.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

DATABASE = "calibench_test"
USER = "calibench"
INSTALL_HINT = "install it with `apt-get install -y postgresql` (which `make test` does)"


def _bindir() -> Path:
    """The newest /usr/lib/postgresql/*/bin with the server tools, else `pg_config --bindir`."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if bindir:
            candidates.append(Path(bindir))
    for candidate in candidates:
        if all((candidate / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise RuntimeError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a scratch PostgreSQL server; yield `postgresql+psycopg://...` for `calibench_test`."""
    bindir = _bindir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="calibench-pg-"))
    data, log, sockets = base / "data", base / "server.log", base / "sockets"
    sockets.mkdir()
    if as_root:
        for path in (base, sockets):
            shutil.chown(path, "postgres", "postgres")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *args], cwd=base, capture_output=True, text=True, check=False, timeout=120
        )

    try:
        init = run(
            str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}{init.stderr}")
        port = _free_port()
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        start = run(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip
        if start.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            raise RuntimeError(
                f"PostgreSQL did not start:\n{start.stdout}{start.stderr}\nserver log:\n{tail}"
            )
        with psycopg.connect(
            host="127.0.0.1", port=port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if (data / "postmaster.pid").exists():
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
