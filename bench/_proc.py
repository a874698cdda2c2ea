"""What every bench script needs around its subprocesses: the repository root, a log line with
the time, ``python -m`` runs with the repository importable, the machine's load, which machine
and versions ran, this process's memory from ``/proc/self/status``, and the quiet-machine
timing of :mod:`bench.timing`.

Each quantizer and each timing runs in a fresh subprocess, so that one tool's imports, threads
and memory never colour another's figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bench.machine import QUIET_CORES, CpuMonitor

ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def bench_env(**extra: str) -> dict[str, str]:
    """This environment with the repository first on ``PYTHONPATH`` (``bench`` importable)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, **extra)


def python_m(module: str, *args: str, timeout_s: float = 1800) -> subprocess.CompletedProcess[str]:
    """``python -m module *args`` from the repository root, its output captured; raises
    ``subprocess.TimeoutExpired`` past ``timeout_s``."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def run_module(module: str, *args: str, timeout_s: float = 1800) -> None:
    """:func:`python_m` that must succeed; raises with the output's tail."""
    done = python_m(module, *args, timeout_s=timeout_s)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"python -m {module} failed ({done.returncode}):\n{tail}")


def command_output(*args: str) -> str:
    """A command's standard output, or ``""`` when it cannot be run."""
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory figure (``VmRSS``, ``VmHWM`` …) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux >= 4.0); False if not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def machine_info() -> dict[str, Any]:
    lscpu = command_output("lscpu")
    fields = {}
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("Flags", "").split())
    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    isa = isa_class()
    return {
        "cpu": fields.get("Model name", platform.processor()),
        **isa,
        "cpus": os.cpu_count(),
        "threads_per_core": fields.get("Thread(s) per core"),
        "hypervisor": fields.get("Hypervisor vendor"),
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
        "vnni_flags": sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16"}),
        "memory_gb": round(mem_kb / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def isa_class() -> dict[str, Any]:
    """The CPU's ISA class as calibench classifies it (VNNI / AVX2 without VNNI / AMX ...), read
    from /proc/cpuinfo itself: a ``CALIBENCH_CPU_FLAGS`` override changes what calibench
    *assumes*, never what the timed CPU executes, so it is only recorded beside."""
    from calibench.runtime.isa import (
        CPUINFO,
        FLAG_LABELS,
        HOST_FLAGS_ENV,
        INT8_FLAGS,
        parse_cpuinfo,
    )

    try:
        cpu = parse_cpuinfo(CPUINFO.read_text(errors="replace"), platform.machine())
    except OSError:
        return {"isa": "unknown", "isa_label": "unknown ISA class", "int8_flags": []}
    return {
        "isa": cpu.isa.value,
        "isa_label": cpu.isa.label,
        "int8_flags": [FLAG_LABELS[f] for f in INT8_FLAGS if f in cpu.flags],
        "cpu_flags_override": os.environ.get(HOST_FLAGS_ENV),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("calibench", "onnxruntime", "onnx", "nncf", "openvino", "numpy", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    rev = command_output("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = command_output("git", "-C", str(ROOT), "status", "--porcelain", "--", "src")
    out["calibench_git"] = rev + (" (+ uncommitted changes in src/)" if dirty else "")
    out["calibench_src_sha256"] = src_digest()
    return out


def src_digest() -> str:
    """Digest of every file under src/calibench (path and bytes): names the exact code run,
    committed or not."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "calibench").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class TimingSettings(Protocol):
    """The round budget of one :mod:`bench.timing` process."""

    @property
    def block(self) -> int: ...
    @property
    def discard(self) -> int: ...
    @property
    def budget_s(self) -> float: ...
    @property
    def min_rounds(self) -> int: ...
    @property
    def max_rounds(self) -> int: ...


def timing_spec(
    runtime: str,
    batch: int,
    threads: int,
    inputs: Path,
    settings: TimingSettings,
    models: dict[str, str],
) -> dict[str, Any]:
    """The spec :mod:`bench.timing` reads (the first model is the FP32 reference)."""
    return {
        "runtime": runtime, "batch": batch, "threads": threads, "inputs": str(inputs),
        "block": settings.block, "discard": settings.discard, "budget_s": settings.budget_s,
        "min_rounds": settings.min_rounds, "max_rounds": settings.max_rounds,
        "models": models,
    }  # fmt: skip


def time_quietly(
    spec: dict[str, Any],
    spec_path: Path,
    out_path: Path,
    attempts: int,
    wait: Callable[[], object],
    what: str = "timing",
) -> dict[str, Any]:
    """Run :mod:`bench.timing` on ``spec`` once the machine is quiet (``wait()``), again while
    other processes took more than ``QUIET_CORES`` cores during it, up to ``attempts`` times;
    the least disturbed attempt's result, with ``foreign_cores`` and every attempt's load."""
    spec_path.write_text(json.dumps(spec, indent=2))
    tried: list[tuple[float, dict[str, Any]]] = []
    for attempt in range(attempts):
        wait()
        with CpuMonitor() as monitor:
            run_module("bench.timing", str(spec_path), str(out_path))
        tried.append((monitor.foreign_cores, json.loads(out_path.read_text())))
        if monitor.foreign_cores < QUIET_CORES:
            break
        log(
            f"    {what} disturbed: other processes used {monitor.foreign_cores:.2f} cores "
            f"(attempt {attempt + 1}/{attempts})"
        )
    foreign, result = min(tried, key=lambda a: a[0])
    result["foreign_cores"] = round(foreign, 3)
    result["attempts_foreign_cores"] = [round(a[0], 3) for a in tried]
    return result
