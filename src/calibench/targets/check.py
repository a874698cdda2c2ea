"""What a target offers INT8: its findings (OS, Python, CPU and INT8 flags, cores, memory, disk),
the verdict on INT8 speed there, and its status.

The CPU is classed by ``runtime.isa`` from the target's own /proc/cpuinfo, the same way calibench
classes this machine's, so ``--isa auto`` on the target and the verdict agree.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from calibench import __version__
from calibench.errors import HostKeyError, TargetError
from calibench.runtime.isa import CpuInfo, Isa, parse_cpuinfo
from calibench.targets import probe
from calibench.targets.connect import Connection, connect
from calibench.targets.registry import Target

MIN_PYTHON = (3, 10)


class Status(str, Enum):
    AVAILABLE = "available"
    BUSY = "busy"
    UNREACHABLE = "unreachable"
    SETUP_FAILED = "setup failed"


def verdict(isa: Isa) -> str:
    """One line on whether INT8 pays off on a CPU of this class (see ``runtime.isa``)."""
    return {
        Isa.AMX: "INT8 will be faster here: AMX and VNNI compute INT8 dot products natively",
        Isa.VNNI: "INT8 will be faster here: VNNI computes INT8 dot products in one instruction",
        Isa.ARM_DOT: "INT8 will be faster here: the ARM dot-product instructions run INT8",
        Isa.AVX512: "no VNNI: expect little or no INT8 gain (AVX-512BW only); calibrate with "
        "--isa avx512 so that no layer saturates",
        Isa.AVX2: "no VNNI: expect little or no INT8 gain, INT8 may even be slower than FP32 "
        "(AVX2 only); calibrate with --isa avx2 so that no layer saturates",
        Isa.ARM: "no ARM dot product: expect little INT8 gain",
        Isa.OTHER: "no AVX2 and no VNNI: INT8 is unlikely to be faster here",
    }[isa]


@dataclass(frozen=True)
class Findings:
    target: str
    status: Status
    reason: str | None = None
    """Why the target is unreachable, busy or its setup failed."""
    os: str | None = None
    python: str | None = None
    python_tag: str | None = None
    cpu: CpuInfo | None = None
    cores: int = 0
    memory_total: int = 0
    memory_available: int = 0
    disk_free: int = 0
    setup: str | None = None
    """What ``target setup`` left there: ``installed <version>``, or None when never set up."""
    busy: tuple[str, ...] = field(default=())

    @property
    def verdict(self) -> str | None:
        return verdict(self.cpu.isa) if self.cpu else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "status": self.status.value,
            "reason": self.reason,
            "os": self.os,
            "python": self.python,
            "cpu": self.cpu.to_dict() if self.cpu else None,
            "cores": self.cores,
            "memory_total": self.memory_total,
            "memory_available": self.memory_available,
            "disk_free": self.disk_free,
            "verdict": self.verdict,
            "setup": self.setup,
            "busy": list(self.busy),
        }

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows for a person."""
        rows = [("status", self.status.value + (f" ({self.reason})" if self.reason else ""))]
        if self.os is None:
            return rows
        gib = 1 << 30
        rows += [
            ("OS", self.os),
            ("Python", self.python or "?"),
            ("CPU", self.cpu.describe() if self.cpu else "?"),
            ("cores", str(self.cores)),
            (
                "memory",
                f"{self.memory_total / gib:.1f} GiB ({self.memory_available / gib:.1f} free)",
            ),
            ("free disk", f"{self.disk_free / gib:.1f} GiB"),
            ("verdict", self.verdict or "?"),
            ("setup", self.setup or "not set up yet (calibench target setup NAME)"),
        ]
        return rows


def setup_problem(found: dict[str, Any]) -> str | None:
    """Why calibench cannot be set up there, or None."""
    version = tuple(int(p) for p in str(found["python"]).split(".")[:2])
    if version < MIN_PYTHON:
        return f"python3 is {found['python']}; calibench needs 3.10 or newer"
    here = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    if found["python_tag"] != here:
        return (
            f"python3 there is {found['python']} and this host's wheels are for {here}: set the "
            "target up from a host with the same Python version"
        )
    problem: str | None = found.get("venv_problem")
    return problem


def _setup_state(found: dict[str, Any]) -> tuple[str | None, str | None]:
    """(what is installed, why the last setup failed)."""
    state = found.get("setup") or {}
    failed = state.get("failed")
    if failed:
        return None, str(failed.get("reason", "unknown reason"))
    installed = state.get("installed")
    if installed:
        return f"calibench {installed.get('version')} in {state.get('folder')}", None
    return None, None


async def run_probe(connection: Connection) -> dict[str, Any]:
    source = Path(probe.__file__).read_text(encoding="utf-8")
    done = await connection.ssh.run(f"python3 - {__version__}", input=source)
    if done.exit_status == 127:
        raise TargetError(f"target {connection.target.name} has no python3 on its PATH")
    if done.exit_status != 0:
        raise TargetError(
            f"target {connection.target.name}: the check failed: {str(done.stderr).strip()[-400:]}"
        )
    found: dict[str, Any] = json.loads(str(done.stdout))
    return found


def findings_of(target: Target, found: dict[str, Any]) -> Findings:
    problem = setup_problem(found)
    setup, failed = _setup_state(found)
    busy = tuple(found.get("busy") or ())
    status, reason = Status.AVAILABLE, None
    if problem or failed:
        status, reason = Status.SETUP_FAILED, problem or failed
    elif busy:
        status, reason = Status.BUSY, f"running {len(busy)} job(s)"
    return Findings(
        target=target.name,
        status=status,
        reason=reason,
        os=found["os"],
        python=found["python"],
        python_tag=found["python_tag"],
        cpu=parse_cpuinfo(found["cpuinfo"], found["machine"]),
        cores=int(found["cores"]),
        memory_total=int(found["memory_total"]),
        memory_available=int(found["memory_available"]),
        disk_free=int(found["disk_free"]),
        setup=setup,
        busy=busy,
    )


async def check(target: Target) -> Findings:
    """The findings; a target that cannot be reached or refuses the login is ``unreachable``
    with the reason. A host key that is not the accepted one raises (nothing is run)."""
    try:
        connection = await connect(target)
    except HostKeyError:
        raise
    except TargetError as exc:
        return Findings(target.name, Status.UNREACHABLE, str(exc))
    try:
        return findings_of(target, await run_probe(connection))
    except TargetError as exc:
        return Findings(target.name, Status.SETUP_FAILED, str(exc))
    finally:
        await connection.close()
