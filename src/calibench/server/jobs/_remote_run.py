"""An adapter over ``targets.remote`` and ``targets.job``: they run ``python -m calibench.cli``
on the target, and a job's worker is another module of the same calibench. ``_execute`` is
``RemoteRun._execute`` with the module named (kept in step with it); the targets API would
take the module as a parameter and this file would go."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import asyncssh

from calibench.errors import RemoteCommandError, TargetError
from calibench.targets.connect import Connection, connect
from calibench.targets.job import RemoteJob
from calibench.targets.protocol import JSON_LINES, PROGRESS_ENV, parse_progress
from calibench.targets.registry import Target
from calibench.targets.remote import Arg, Emit, Event, RemoteRun, RunResult
from calibench.targets.setup import venv_python


class ModuleRun(RemoteRun):
    """A :class:`RemoteRun` of ``python -m MODULE ARGV`` instead of the calibench CLI."""

    def __init__(
        self,
        module: str,
        connection: Connection,
        argv: list[Arg],
        phase: str,
        wheelhouse: Path,
        emit: Emit,
    ) -> None:
        super().__init__(connection, argv, phase, wheelhouse, emit)
        self.module = module

    async def _execute(self, argv: list[str]) -> str:
        command = (
            f"cd {self.run_dir} && echo $$ > pid && {PROGRESS_ENV}={JSON_LINES} "
            f'CALIBENCH_WORKSPACE="$PWD/ws" exec "$HOME/{venv_python()}" -m {self.module} '
            + " ".join(shlex.quote(a) for a in argv)
        )
        errors: list[str] = []
        try:
            async with self.connection.ssh.create_process(command) as process:

                async def read_stderr() -> None:
                    async for line in process.stderr:
                        text = str(line).rstrip("\n")
                        parsed = parse_progress(text)
                        if parsed:
                            self.emit(Event(*parsed))
                        elif text:
                            errors.append(text)
                            self.emit(Event(self.stage, text=text))

                reader = asyncio.ensure_future(read_stderr())
                stdout = str(await process.stdout.read())
                await reader
                done = await process.wait()
        except (asyncssh.Error, OSError) as exc:
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            raise TargetError(
                f"the target {self.name} stopped responding during {self.phase} ({reason}); "
                "nothing was committed"
            ) from None
        if done.exit_signal:
            raise TargetError(
                f"the target {self.name} stopped responding during {self.phase}: its calibench "
                f"process was killed (SIG{done.exit_signal[0]}); nothing was committed"
            )
        if done.exit_status is None:
            raise TargetError(
                f"the target {self.name} stopped responding during {self.phase} (the "
                "connection closed without an exit status); nothing was committed"
            )
        if done.exit_status != 0:
            said = [e for e in errors if e.startswith("calibench: ")] or errors or ["no message"]
            message = said[-1].removeprefix("calibench: error: ")
            raise RemoteCommandError(f"on target {self.name}: {message}", done.exit_status)
        return stdout


class WorkerJob(RemoteJob):
    """A :class:`RemoteJob` whose run is a :class:`ModuleRun`."""

    def __init__(
        self, module: str, target: Target, argv: list[Arg], phase: str, wheelhouse: Path
    ) -> None:
        super().__init__(target, argv, phase, wheelhouse)
        self.module = module

    async def _run(self) -> RunResult:
        connection = await connect(self.target)
        try:
            run = ModuleRun(
                self.module, connection, self.argv, self.phase, self.wheelhouse, self._emit
            )
            return await run.run()
        finally:
            await connection.close()
