"""The check's eyes on the target: this file's source is sent to the target's ``python3`` and
prints one JSON object. It runs there, so it imports only the standard library, and it runs on
Pythons older than calibench's 3.10 too, so that the check can say which one it found.

Run here it describes this machine (the test does that).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
from pathlib import Path

ROOT = Path.home() / ".calibench-target"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def _cpuinfo() -> str:
    """The first processor's block of /proc/cpuinfo (all of them say the same)."""
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace").split("\n\n")[0]
    except OSError:
        return ""


def _meminfo() -> dict[str, int]:
    found = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                found[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found


def _venv_ok() -> str | None:
    """Why a virtual environment cannot be made here, or None."""
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError as exc:
        return f"python3 cannot create a virtual environment ({exc}; install python3-venv)"
    return None


def _busy() -> list[str]:
    """The runs whose calibench process is still alive."""
    alive = []
    for pid_file in sorted((ROOT / "runs").glob("*/pid")):
        try:
            pid = int(pid_file.read_text().strip())
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2][:1]
        except (OSError, ValueError):
            continue
        if state == "Z":  # killed, not yet reaped: gone
            continue
        alive.append(pid_file.parent.name)
    return alive


def _setup(version: str) -> dict[str, object]:
    folder = ROOT / version
    state: dict[str, object] = {"folder": str(folder)}
    for name in ("installed.json", "failed.json"):
        with contextlib.suppress(OSError, ValueError):
            state[name.partition(".")[0]] = json.loads((folder / name).read_text())
    return state


def probe(version: str) -> dict[str, object]:
    ROOT.mkdir(parents=True, exist_ok=True)
    disk = shutil.disk_usage(ROOT)
    memory = _meminfo()
    return {
        "os": _os_name(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_tag": f"cp{sys.version_info[0]}{sys.version_info[1]}",
        "libc": " ".join(platform.libc_ver()).strip(),
        "cpuinfo": _cpuinfo(),
        "cores": os.cpu_count() or 0,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
        "memory_total": memory.get("MemTotal", 0),
        "memory_available": memory.get("MemAvailable", 0),
        "disk_free": disk.free,
        "home": str(Path.home()),
        "venv_problem": _venv_ok(),
        "busy": _busy(),
        "setup": _setup(version),
    }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1] if len(sys.argv) > 1 else "")))
