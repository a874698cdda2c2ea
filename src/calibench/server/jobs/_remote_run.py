"""An adapter over ``targets.job``: a ``RemoteJob`` runs ``python -m calibench.cli ARGV`` on the
target, and a job's worker is another module of the same calibench (``remote_worker``).

The connection handed to the run starts that one command with the worker's module instead;
everything else (uploads, the process group, progress, cleanup) is the targets' own code, as
it is. When ``RemoteRun`` and ``RemoteJob`` take the module as a parameter, this file goes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import asyncssh

from calibench.targets.connect import connect
from calibench.targets.job import RemoteJob
from calibench.targets.registry import Target
from calibench.targets.remote import Arg, RemoteRun, RunResult

CLI = " -m calibench.cli "


class _StartsModule:
    """The SSH client, but the command that starts the calibench CLI starts ``module``."""

    def __init__(self, ssh: asyncssh.SSHClientConnection, module: str) -> None:
        self._ssh = ssh
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssh, name)

    def create_process(self, command: str, *args: Any, **kwargs: Any) -> Any:
        if CLI in command:
            command = command.replace(CLI, f" -m {self._module} ", 1)
        return self._ssh.create_process(command, *args, **kwargs)


class WorkerJob(RemoteJob):
    """A :class:`RemoteJob` of ``python -m MODULE ARGV`` instead of the calibench CLI."""

    def __init__(
        self, module: str, target: Target, argv: list[Arg], phase: str, wheelhouse: Path
    ) -> None:
        super().__init__(target, argv, phase, wheelhouse)
        self.module = module

    async def _run(self) -> RunResult:
        connection = await connect(self.target)
        ssh = cast(asyncssh.SSHClientConnection, _StartsModule(connection.ssh, self.module))
        try:
            run = RemoteRun(
                dataclasses.replace(connection, ssh=ssh),
                self.argv,
                self.phase,
                self.wheelhouse,
                self._emit,
            )
            return await run.run()
        finally:
            await connection.close()
