"""Who else uses the CPU while we measure: the benchmark may share its machine.

Busy CPU time comes from ``/proc/stat`` (all CPUs, including time stolen by the hypervisor);
our own is this process's plus its waited-for children's (``getrusage``). The difference over a
wall-clock window, divided by the window, is the *foreign load* in cores: 0 on a quiet machine,
1.0 when another process kept a whole core busy. Timing phases record it, wait for a quiet
machine before starting, and are retried when it was disturbed.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

QUIET_CORES = 0.25
"""Foreign load under which a measurement counts as undisturbed."""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_s() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def _own_cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class CpuMonitor:
    """``with CpuMonitor() as m: ...`` then ``m.foreign_cores``."""

    def __init__(self) -> None:
        self.foreign_cores = 0.0
        self.wall_s = 0.0

    def __enter__(self) -> CpuMonitor:
        self._start = (time.perf_counter(), _busy_s(), _own_cpu_s())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall0, busy0, own0 = self._start
        self.wall_s = time.perf_counter() - wall0
        foreign = (_busy_s() - busy0) - (_own_cpu_s() - own0)
        self.foreign_cores = max(0.0, foreign / self.wall_s) if self.wall_s > 0 else 0.0


class QuietWaiter:
    """Waits, within an overall budget, until the machine is quiet before a measurement."""

    def __init__(self, budget_s: float, log: Callable[[str], None]) -> None:
        self.budget_s = budget_s
        self.waited_s = 0.0
        self._log = log

    def wait(self, max_s: float = 60.0) -> float:
        """Sample 1 s windows until one is quiet; return the last window's foreign load."""
        start = time.perf_counter()
        while True:
            with CpuMonitor() as monitor:
                time.sleep(1.0)
            load = monitor.foreign_cores
            spent = time.perf_counter() - start
            if load < QUIET_CORES or spent >= max_s or self.waited_s + spent >= self.budget_s:
                self.waited_s += spent
                if spent > 1.5:
                    self._log(f"  waited {spent:.0f} s for a quiet machine (now {load:.2f} cores)")
                return load
