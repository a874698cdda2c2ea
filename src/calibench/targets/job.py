"""A remote run driven from a synchronous caller (the CLI, a server's executor): the run's
asyncio loop lives in a thread of its own; the caller polls ``events()`` and ``outcome()`` and
may ``stop()`` it, which kills the remote process group and removes the remote folder before it
returns. The shape is the server's ``Execution`` (``server/jobs/executor.py``), so a
RemoteExecutor can wrap a ``RemoteJob`` as it is.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

from calibench.errors import CalibenchError, TargetError
from calibench.targets.connect import connect
from calibench.targets.registry import Target
from calibench.targets.remote import Arg, Event, RemoteRun, RunResult


@dataclass(frozen=True)
class JobFailed:
    """The run ended without a result; ``error`` says why (its ``exit_code`` too)."""

    error: CalibenchError


class RemoteJob:
    def __init__(
        self,
        target: Target,
        argv: list[Arg],
        phase: str,
        wheelhouse: Path,
        module: str = "calibench.cli",
    ) -> None:
        self.target = target
        self.module = module
        self.argv = argv
        self.phase = phase
        self.wheelhouse = wheelhouse
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._outcome: RunResult | JobFailed | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[RunResult] | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        """Set when the run has ended. Waiting on it, not on ``Thread.join``: a join that Ctrl-C
        interrupts can leave the thread marked finished while it still cleans up."""
        self._thread = threading.Thread(target=self._main, name=f"target-{target.name}")

    def start(self) -> RemoteJob:
        self._thread.start()
        self._ready.wait()
        return self

    def events(self) -> list[Event]:
        """The events since the last call."""
        with self._lock:
            taken, self._events = self._events, []
        return taken

    def outcome(self) -> RunResult | JobFailed | None:
        return self._outcome

    def wait(self, timeout: float | None = None) -> RunResult | JobFailed | None:
        self._done.wait(timeout)
        return self._outcome

    def stop(self) -> None:
        """Cancel the run and wait until the target is cleaned up (bounded by the cleanup's own
        timeout when the target no longer answers)."""
        if self._loop is not None and self._task is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._done.wait()

    def _emit(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._run())
            self._ready.set()
            self._outcome = loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            stopped = f"stopped; the run's folder on target {self.target.name} was removed"
            self._outcome = JobFailed(TargetError(stopped))
        except CalibenchError as exc:
            self._outcome = JobFailed(exc)
        except Exception as exc:  # a bug: still an outcome, never a hung caller
            self._outcome = JobFailed(CalibenchError(f"{type(exc).__name__}: {exc}"))
        finally:
            loop.close()
            self._ready.set()
            self._done.set()

    async def _run(self) -> RunResult:
        connection = await connect(self.target)
        try:
            run = RemoteRun(
                connection, self.argv, self.phase, self.wheelhouse, self._emit, self.module
            )
            return await run.run()
        finally:
            await connection.close()
