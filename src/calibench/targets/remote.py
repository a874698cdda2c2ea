"""One calibench command run on a target: its inputs uploaded by hash, the command run in the
target's environment in its own process group with its progress streamed back, its output
files downloaded, the remote working folder removed, whatever happens.

Stages, as events: ``preparing assets`` → ``uploading`` (bytes) → the command's own stages
(``statistics``, ``bias correction``… under the phase, e.g. calibration) → ``downloading
results``. Nothing is written to the local outputs until every file has come back: they are
downloaded beside their destinations under temporary names and renamed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from calibench._files import temp_beside
from calibench.errors import RemoteCommandError, TargetError
from calibench.targets.assets import Input, Output, Prepared, prepare
from calibench.targets.connect import Connection
from calibench.targets.protocol import JSON_LINES, PROGRESS_ENV, parse_progress
from calibench.targets.setup import QUIET_STEPS, Step, setup, venv_python
from calibench.targets.transfer import ROOT, download, upload

Arg = str | Input | Output


@dataclass(frozen=True)
class Event:
    """Progress (``done`` of ``total`` in ``stage``) or, with ``text``, a line the command
    printed on stderr that is not progress (a warning)."""

    stage: str
    done: int = 0
    total: int = 0
    text: str | None = None
    phase: str = ""
    """The coarse stage it belongs to, for a staged progress bar: ``preparing assets``,
    ``checking the target's setup``, ``uploading``, the run's phase (``calibration``…) or
    ``downloading results``."""


Emit = Callable[[Event], None]


@dataclass
class RunResult:
    stdout: str
    files: list[Path]
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each stage took."""


_SWEEP = (
    f'for d in {ROOT}/runs/*/; do [ -f "$d/pid" ] || continue; '
    's=$(sed \'s/.*) //\' "/proc/$(cat "$d/pid")/stat" 2>/dev/null | cut -c1); '
    'if [ -z "$s" ] || [ "$s" = Z ]; then rm -rf "$d"; fi; done'
)
"""Remove the folders of earlier runs whose process is gone, or a zombie (a host that lost the
connection could not remove them)."""


def _kill(run: str) -> str:
    """Stop the run's process group (TERM, then KILL after 3 s) and remove its folder."""
    return (
        f'p=$(cat {run}/pid 2>/dev/null); if [ -n "$p" ]; then kill -TERM -"$p" 2>/dev/null; '
        'for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 -"$p" 2>/dev/null || break; sleep 0.3; '
        f'done; kill -KILL -"$p" 2>/dev/null; fi; rm -rf {run}'
    )


class RemoteRun:
    """Run ``python -m MODULE ARGV`` (the calibench CLI unless told) in the target's
    environment. ``phase`` names the work for messages ("calibration", "inference",
    "comparison"). Every file the command writes in an output's folder comes back beside that
    output, under its own name: a module that writes several files can be given one output."""

    def __init__(
        self,
        connection: Connection,
        argv: list[Arg],
        phase: str,
        wheelhouse: Path,
        emit: Emit,
        module: str = "calibench.cli",
    ) -> None:
        self.connection = connection
        self.module = module
        self.argv = argv
        self.phase = phase
        self.wheelhouse = wheelhouse
        self._emit = emit
        self.run_dir = f"{ROOT}/runs/{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        self.stage = "preparing assets"
        self.seconds: dict[str, float] = {}
        self._started = time.monotonic()

    @property
    def name(self) -> str:
        return self.connection.target.name

    def emit(self, event: Event) -> None:
        self._emit(dataclasses.replace(event, phase=self.stage))

    def _enter(self, stage: str) -> None:
        now = time.monotonic()
        self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + now - self._started
        self.stage, self._started = stage, now

    async def run(self) -> RunResult:
        created = False
        try:
            with tempfile.TemporaryDirectory(prefix="calibench-assets-") as scratch:
                self.emit(Event("preparing assets", 0, 1))
                prepared = await asyncio.to_thread(self._prepare, Path(scratch))
                self.emit(Event("preparing assets", 1, 1))
                self._enter("checking the target's setup")
                await setup(
                    self.connection,
                    self.wheelhouse,
                    self._setup_step,
                    lambda done, total: self.emit(Event("uploading the wheels", done, total)),
                )
                self._enter("uploading")
                assets = [a for p in prepared.values() for a in p.assets]
                sent = await upload(
                    self.connection,
                    assets,
                    lambda done, total: self.emit(Event("uploading", done, total)),
                )
            created = True
            remote_argv = await self._lay_out(prepared, sent.remote)
            self._enter(self.phase)
            stdout = await self._execute(remote_argv)
            self._enter("downloading results")
            files = await self._fetch()
            self._enter("done")
            return RunResult(self._localize(stdout), files, self.seconds)
        except asyncio.CancelledError:
            if created:
                await self._cleanup(kill=True)
                created = False
            raise
        finally:
            if created:
                await self._cleanup(kill=False)

    def _setup_step(self, step: Step) -> None:
        """Say what a setup did when it did more than find the environment valid (a first run,
        or calibench changed here)."""
        if step.name not in QUIET_STEPS:
            self.emit(Event(self.stage, text=f"✓ setup: {step.name}: {step.outcome}"))

    def _prepare(self, scratch: Path) -> dict[int, Prepared]:
        prepared = {}
        for index, arg in enumerate(self.argv):
            if isinstance(arg, Input):
                own = scratch / str(index)
                own.mkdir()
                prepared[index] = prepare(arg, own)
        return prepared

    async def _lay_out(self, prepared: dict[int, Prepared], stored: dict[str, str]) -> list[str]:
        """Make the run's folder: inputs linked (or unpacked) under ``in/N/``, one folder per
        output under ``out/N/``, so every file keeps its local name (an ONNX model finds its
        external data by that name)."""
        q = shlex.quote
        commands = [_SWEEP, f"mkdir -p {self.run_dir}/ws"]
        argv: list[str] = []
        for index, arg in enumerate(self.argv):
            if isinstance(arg, str):
                argv.append(arg)
                continue
            folder = f"{'in' if isinstance(arg, Input) else 'out'}/{index}"
            commands.append(f"mkdir -p {self.run_dir}/{folder}")
            argv.append(f"{folder}/{arg.path.name}")
            if isinstance(arg, Output):
                continue
            item = prepared[index]
            for asset in item.assets:
                source = stored[asset.sha256]
                if item.folder:
                    commands.append(f"tar -xf {q(source)} -C {self.run_dir}/{folder}")
                else:
                    commands.append(
                        f"ln -s {q(source)} {self.run_dir}/{folder}/{q(asset.local.name)}"
                    )
        done = await self.connection.ssh.run(" && ".join(commands))
        if done.exit_status != 0:
            raise TargetError(
                f"target {self.name}: cannot lay out the run's folder: "
                f"{str(done.stderr).strip()[-400:]}"
            )
        return argv

    async def _execute(self, argv: list[str]) -> str:
        command = (
            f"cd {self.run_dir} && echo $$ > pid && {PROGRESS_ENV}={JSON_LINES} "
            f'CALIBENCH_WORKSPACE="$PWD/ws" exec "$HOME/{venv_python()}" -m {self.module} '
            + " ".join(shlex.quote(a) for a in argv)
        )
        errors: list[str] = []
        try:
            # Not ``async with``: leaving it waits for the channel to close, which a frozen
            # remote process never lets happen; a cancel must reach ``_cleanup`` at once.
            process = await self.connection.ssh.create_process(command)
        except (asyncssh.Error, OSError) as exc:
            raise self._silent(exc) from None

        async def read_stderr() -> None:
            async for line in process.stderr:
                text = str(line).rstrip("\n")
                parsed = parse_progress(text)
                if parsed:
                    self.emit(Event(*parsed))
                elif text:
                    errors.append(text)
                    self.emit(Event(self.stage, text=text))

        try:
            reader = asyncio.ensure_future(read_stderr())
            try:
                stdout = str(await process.stdout.read())
                await reader
            finally:
                reader.cancel()
            done = await process.wait()
        except (asyncssh.Error, OSError) as exc:
            raise self._silent(exc) from None
        finally:
            process.close()
        if done.exit_signal:
            signal = done.exit_signal[0]
            raise TargetError(
                f"the calibench process on target {self.name} was killed (SIG{signal}) during "
                f"{self.phase}; nothing was written here"
            )
        if done.exit_status is None:
            raise TargetError(
                f"the target {self.name} stopped responding during {self.phase} (the "
                "connection closed without an exit status); nothing was written here"
            )
        if done.exit_status != 0:
            said = [e for e in errors if e.startswith("calibench: ")] or errors or ["no message"]
            message = self._localize(said[-1].removeprefix("calibench: error: "), names=True)
            raise RemoteCommandError(f"on target {self.name}: {message}", done.exit_status)
        return stdout

    def _silent(self, exc: BaseException) -> TargetError:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return TargetError(
            f"the target {self.name} stopped responding during {self.phase} ({reason}); "
            "nothing was written here"
        )

    async def _fetch(self) -> list[Path]:
        """Every file under each output's folder, to a temporary name beside its destination;
        then all are renamed into place (or, on a failure, all removed)."""
        pairs: list[tuple[str, Path]] = []
        places: list[tuple[Path, Path]] = []
        try:
            async with self.connection.ssh.start_sftp_client() as sftp:
                for index, arg in enumerate(self.argv):
                    if not isinstance(arg, Output):
                        continue
                    folder = f"{self.run_dir}/out/{index}"
                    for name in sorted(await sftp.listdir(folder)):
                        if name in (".", ".."):
                            continue
                        final = arg.path.parent / name
                        temp = temp_beside(final)
                        pairs.append((f"{folder}/{name}", temp))
                        places.append((temp, final))
            await download(
                self.connection,
                pairs,
                lambda done, total: self.emit(Event("downloading results", done, total)),
            )
            for temp, final in places:
                os.replace(temp, final)
        except BaseException as exc:
            for temp, _ in places:
                with contextlib.suppress(OSError):
                    temp.unlink()
            if isinstance(exc, (asyncssh.Error, OSError)):
                raise TargetError(
                    f"target {self.name}: downloading the results failed ({exc}); nothing was "
                    "written here"
                ) from None
            raise
        return [final for _, final in places]

    def _localize(self, text: str, names: bool = False) -> str:
        """The command's output with the run's paths put back to the local ones (``names``:
        to the bare file names, for an error that happened there, not here)."""
        for index, arg in enumerate(self.argv):
            if not isinstance(arg, str):
                folder = "in" if isinstance(arg, Input) else "out"
                local = arg.path.name if names else str(arg.path)
                text = text.replace(f"{folder}/{index}/{arg.path.name}", local)
        return text

    async def _cleanup(self, kill: bool) -> None:
        """Remove the run's folder (killing its process group first when cancelled); shielded
        from a second cancel, and bounded, since the target may be gone."""
        command = _kill(self.run_dir) if kill else f"rm -rf {self.run_dir}"
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(asyncio.wait_for(self.connection.ssh.run(command), 15))
