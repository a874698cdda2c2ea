"""``calibench target setup``: a private virtual environment on the target, made from this
host's wheels, with no internet there.

Layout on the target, under ``~/.calibench-target/<version>/``: ``venv/`` (made by the target's
``python3 -m venv``), ``wheels/`` (links into the asset store, named as pip needs them) and
``installed.json`` (the version and the sha256 of every wheel installed). The environment is
reused while ``installed.json`` names exactly this host's wheels and its Python still imports
calibench; a changed wheel (calibench edited here, say) is reinstalled alone. A failed setup
leaves ``failed.json`` with the reason, which the check reports as "setup failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calibench import __version__
from calibench.errors import TargetError
from calibench.targets.assets import Asset
from calibench.targets.check import run_probe, setup_problem
from calibench.targets.connect import Connection
from calibench.targets.transfer import ROOT, BytesProgress, upload
from calibench.targets.wheelhouse import Wheel, build_wheelhouse


@dataclass(frozen=True)
class Step:
    name: str
    outcome: str
    seconds: float


StepReport = Callable[[Step], None]
CHECK, BUILD, COMPARE = (
    "check the target's Python",
    "build the wheelhouse here",
    "compare with the target's environment",
)
QUIET_STEPS = frozenset({CHECK, BUILD, COMPARE})
"""The steps of a setup that finds everything in place."""


def folder(version: str = __version__) -> str:
    """The setup's folder, relative to the target user's home (the commands run there)."""
    return f"{ROOT}/{version}"


def venv_python(version: str = __version__) -> str:
    return f"{folder(version)}/venv/bin/python"


class _Steps:
    def __init__(self, report: StepReport | None) -> None:
        self.report = report
        self.done: list[Step] = []
        self.current = ""
        self.started = time.monotonic()

    def begin(self, name: str) -> None:
        self.current, self.started = name, time.monotonic()

    def end(self, outcome: str) -> None:
        step = Step(self.current, outcome, time.monotonic() - self.started)
        self.done.append(step)
        if self.report:
            self.report(step)


async def _sh(connection: Connection, command: str, what: str) -> str:
    done = await connection.ssh.run(command)
    if done.exit_status != 0:
        tail = (str(done.stderr) or str(done.stdout)).strip().splitlines()[-6:]
        raise TargetError(f"{what} failed (exit {done.exit_status}): " + " | ".join(tail))
    return str(done.stdout)


def _manifest(wheels: list[Wheel]) -> dict[str, str]:
    return {w.filename: w.sha256 for w in wheels}


async def _installed(connection: Connection) -> dict[str, object] | None:
    """installed.json, when the venv's Python still imports calibench."""
    base = folder()
    done = await connection.ssh.run(
        f"cat {base}/installed.json && {venv_python()} -c 'import calibench' 2>/dev/null"
    )
    if done.exit_status != 0:
        return None
    try:
        data: dict[str, object] = json.loads(str(done.stdout))
    except ValueError:
        return None
    return data


async def setup(
    connection: Connection,
    wheelhouse: Path,
    report: StepReport | None = None,
    progress: BytesProgress | None = None,
    force: bool = False,
) -> list[Step]:
    """Make (or reuse) the target's environment; every step's outcome goes to ``report``.
    Raises ``TargetError`` naming the step that failed, and leaves the reason on the target."""
    steps = _Steps(report)
    base = folder()
    try:
        steps.begin(CHECK)
        found = await run_probe(connection)
        problem = setup_problem(found)
        if problem:
            raise TargetError(problem)
        steps.end(f"Python {found['python']} at ~/{base}")

        steps.begin(BUILD)
        wheels = await asyncio.to_thread(build_wheelhouse, wheelhouse)
        size = sum(w.size for w in wheels) / 2**20
        steps.end(f"{len(wheels)} wheels, {size:.1f} MB")

        steps.begin(COMPARE)
        installed = None if force else await _installed(connection)
        before = installed.get("wheels") if installed else None
        wanted = _manifest(wheels)
        if before == wanted:
            steps.end(f"calibench {__version__} is installed and up to date: reused")
            return steps.done
        changed = (
            [n for n, h in wanted.items() if isinstance(before, dict) and before.get(n) != h]
            if before
            else None
        )
        steps.end("not set up yet" if changed is None else f"{len(changed)} wheel(s) changed")

        steps.begin("upload the wheels")
        sent = await upload(
            connection, [Asset(wheelhouse / w.filename, w.sha256, w.size) for w in wheels], progress
        )
        steps.end(f"{sent.sent / 2**20:.1f} MB sent, {sent.skipped / 2**20:.1f} MB already there")

        links = " && ".join(
            f"ln -s {shlex.quote(sent.remote[w.sha256])} {base}/wheels/{shlex.quote(w.filename)}"
            for w in wheels
        )
        pip = f"PIP_DISABLE_PIP_VERSION_CHECK=1 {base}/venv/bin/pip install -q --no-index"
        pip += f" --find-links {base}/wheels"
        if changed is None:
            steps.begin("create the virtual environment")
            await _sh(
                connection,
                f"rm -rf {base}/venv {base}/wheels && mkdir -p {base}/wheels && {links} && "
                f"python3 -m venv {base}/venv",
                "python3 -m venv",
            )
            steps.end(f"~/{base}/venv")
            steps.begin("install offline")
            await _sh(connection, f"{pip} calibench=={__version__}", "pip install")
            steps.end(f"{len(wheels)} wheels installed with --no-index")
        else:
            steps.begin("install the changed wheels offline")
            again = " ".join(f"{base}/wheels/{shlex.quote(n)}" for n in changed)
            await _sh(
                connection,
                f"rm -rf {base}/wheels && mkdir -p {base}/wheels && {links} && "
                f"{pip} --force-reinstall --no-deps {again} && {pip} calibench=={__version__}",
                "pip install",
            )
            steps.end(", ".join(changed))

        steps.begin("verify")
        await _sh(connection, f"{venv_python()} -m calibench.cli --help > /dev/null", "calibench")
        record = {"version": __version__, "python": found["python"], "wheels": wanted}
        await _sh(
            connection,
            f"rm -f {base}/failed.json && printf %s {shlex.quote(json.dumps(record))} "
            f"> {base}/installed.json",
            "writing installed.json",
        )
        steps.end(f"calibench {__version__} runs there")
    except TargetError as exc:
        reason = f"{steps.current}: {exc}"
        failed = json.dumps({"step": steps.current, "reason": reason})
        with contextlib.suppress(Exception):  # the connection itself may be what failed
            await connection.ssh.run(
                f"mkdir -p {base} && printf %s {shlex.quote(failed)} > {base}/failed.json"
            )
        raise TargetError(f"setup of target {connection.target.name} failed at {reason}") from None
    return steps.done
