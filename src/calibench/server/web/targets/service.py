"""Targets: add (the host key accepted once), check, set up, list with their status, remove.

The list is the workspace's ``targets.json``, the one ``calibench target`` writes, so the pages
and the command line see the same targets. A check and a setup run inside the request: a check
is one SSH login and a probe (about a second; 15 s at most for a target that does not answer),
and a setup that is up to date is reused in a few seconds. The first setup of a target (the
wheels sent, the venv made: a minute on a slow link) is the one slow request, and the page says
so; a job kind for it would show its steps as they pass, and is left for later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from calibench.errors import ConfigError, HostKeyError, TargetError, WorkbenchError
from calibench.server.db import JobRow, ProjectRow
from calibench.server.jobs.kinds import LOCAL
from calibench.server.jobs.states import LIVE, JobState
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.targets.schemas import (
    FindingsView,
    SetupView,
    StepView,
    TargetView,
)
from calibench.targets.check import Findings, Status, check
from calibench.targets.connect import connect
from calibench.targets.registry import JumpHost, Registry, Target
from calibench.targets.setup import Step, setup

NOT_CHECKED = "not checked"


class HostKeyUnknown(WorkbenchError):
    """Adding a target whose host key (or its jump host's) nobody accepted yet: 409, with the
    fingerprint to accept."""

    def __init__(self, message: str, fingerprint: str, which: str) -> None:
        super().__init__(message, 409)
        self.fingerprint = fingerprint
        self.which = which


@dataclass(frozen=True)
class _Checked:
    findings: Findings
    at: datetime


def findings_view(checked: _Checked) -> FindingsView:
    f = checked.findings
    return FindingsView(
        status=f.status.value,
        reason=f.reason,
        os=f.os,
        python=f.python,
        cpu=f.cpu.describe() if f.cpu else None,
        isa=f.cpu.isa.value if f.cpu else None,
        cores=f.cores,
        memory_total=f.memory_total,
        memory_available=f.memory_available,
        disk_free=f.disk_free,
        verdict=f.verdict,
        setup=f.setup,
        rows=f.lines(),
        checked_at=checked.at.isoformat(timespec="seconds"),
    )


def target_choice(workspace: Path, name: str | None) -> str | None:
    """The target a project's jobs run on: None for this machine, else a registered name (a
    name nobody registered is refused, naming those that are)."""
    if name is None or name.strip() in ("", LOCAL):
        return None
    try:
        return Registry(workspace).get(name.strip()).name
    except ConfigError as error:
        raise WorkbenchError(str(error), 404) from error


def target_names(workspace: Path) -> list[str]:
    """The registered targets' names (none when ``targets.json`` is unreadable: the targets
    page says why)."""
    try:
        return [t.name for t in Registry(workspace).all()]
    except ConfigError:
        return []


class TargetService(WorkbenchBase):
    @property
    def _checks(self) -> dict[str, _Checked]:
        """The last check of each target, kept while the server runs."""
        found: dict[str, _Checked] = self.__dict__.setdefault("_target_checks", {})
        return found

    @property
    def registry(self) -> Registry:
        return Registry(self.workspace)

    def _busy(self) -> dict[str, int]:
        """Running jobs per target, from the database (a target's own probe sees them too)."""
        with self.sessions() as session:
            rows = session.execute(
                select(ProjectRow.target)
                .join(JobRow, JobRow.project_id == ProjectRow.id)
                .where(JobRow.state == JobState.RUNNING)
            ).all()
        busy: dict[str, int] = {}
        for (name,) in rows:
            busy[name] = busy.get(name, 0) + 1
        return busy

    def _view(self, target: Target, busy: dict[str, int]) -> TargetView:
        checked = self._checks.get(target.name)
        status, reason = NOT_CHECKED, None
        if checked is not None:
            status, reason = checked.findings.status.value, checked.findings.reason
        if busy.get(target.name) and status != Status.UNREACHABLE.value:
            status, reason = Status.BUSY.value, f"running {busy[target.name]} job(s) from here"
        return TargetView(
            name=target.name,
            address=target.address,
            host=target.host,
            port=target.port,
            user=target.user,
            key_file=target.key_file,
            jump_host=str(target.jump) if target.jump else None,
            host_key=target.host_key,
            status=status,
            reason=reason,
            findings=findings_view(checked) if checked and checked.findings.os else None,
        )

    def targets(self) -> list[TargetView]:
        busy = self._busy()
        return [self._view(t, busy) for t in self._registered()]

    def _registered(self) -> list[Target]:
        try:
            return self.registry.all()
        except ConfigError as error:
            raise WorkbenchError(str(error), 500) from error

    def _get(self, name: str) -> Target:
        try:
            return self.registry.get(name)
        except ConfigError as error:
            raise WorkbenchError(str(error), 404) from error

    def target_view(self, name: str) -> TargetView:
        return self._view(self._get(name), self._busy())

    def add_target(
        self,
        name: str,
        host: str,
        user: str,
        port: int = 22,
        key_file: str | None = None,
        jump_host: str | None = None,
        accept_host_key: str | None = None,
        accept_jump_host_key: str | None = None,
    ) -> TargetView:
        """Log in once, checking the host key against the one accepted; store the target only
        then. Without an accepted key the answer is :class:`HostKeyUnknown` with its
        fingerprint, and nothing is stored."""
        if name == LOCAL or any(t.name == name for t in self._registered()):
            raise WorkbenchError(f"a target named {name!r} exists; remove it first", 409)
        try:
            jump = JumpHost.parse(jump_host) if jump_host else None
            key = str(Path(key_file).expanduser()) if key_file else None
            target = Target(name, host, user, port, key, jump=jump)
        except ConfigError as error:
            raise WorkbenchError(str(error)) from error

        async def login() -> tuple[str | None, str | None]:
            connection = await connect(target, accept_host_key, accept_jump_host_key)
            await connection.close()
            return connection.host_key, connection.jump_key

        try:
            host_key, jump_key = asyncio.run(login())
        except HostKeyError as error:
            raise _refusal(error) from error
        except (TargetError, ValueError) as error:  # ValueError: what SSH refuses to send
            raise WorkbenchError(str(error), 400) from error
        assert host_key is not None
        stored = target.with_host_keys(host_key, jump_key)
        self.registry.put(stored)
        return self._view(stored, {})

    def check_target(self, name: str) -> TargetView:
        """The target's findings and verdict (a changed host key: 409, nothing run)."""
        target = self._get(name)
        try:
            findings = asyncio.run(check(target))
        except HostKeyError as error:
            raise WorkbenchError(str(error), 409) from error
        self._checks[name] = _Checked(findings, datetime.now(timezone.utc))
        return self.target_view(name)

    def setup_target(self, name: str, force: bool = False) -> SetupView:
        """Install (or reuse) calibench on the target, each step's outcome in the answer; a
        failed step is in it too, with the reason, and the target shows ``setup failed``."""
        target = self._get(name)
        steps: list[Step] = []

        async def run() -> None:
            connection = await connect(target)
            try:
                await setup(connection, self.workspace / "wheelhouse", steps.append, force=force)
            finally:
                await connection.close()

        reason = None
        try:
            asyncio.run(run())
        except HostKeyError as error:
            raise WorkbenchError(str(error), 409) from error
        except TargetError as error:
            reason = str(error)
            moment = datetime.now(timezone.utc)
            self._checks[name] = _Checked(Findings(name, Status.SETUP_FAILED, reason), moment)
        return SetupView(
            target=name,
            ok=reason is None,
            steps=[StepView(name=s.name, outcome=s.outcome, seconds=s.seconds) for s in steps],
            reason=reason,
        )

    def remove_target(self, name: str) -> None:
        """Forget a target (its folder there stays); refused while a job runs or waits on it.
        Its projects keep its name, and their figures."""
        self._get(name)
        with self.sessions() as session:
            live = session.scalars(
                select(JobRow.id)
                .join(ProjectRow, JobRow.project_id == ProjectRow.id)
                .where(ProjectRow.target == name, JobRow.state.in_(LIVE))
            ).first()
        if live is not None:
            raise WorkbenchError(f"target {name}: job {live} has not ended; cancel it first", 409)
        self.registry.remove(name)
        self._checks.pop(name, None)


def _refusal(error: HostKeyError) -> WorkbenchError:
    """A key nobody accepted yet as a question (its fingerprint to accept); a key other than
    the one accepted or stored as a plain refusal."""
    if error.unknown:
        return HostKeyUnknown(str(error), error.presented, error.which)
    return WorkbenchError(str(error), 409)
