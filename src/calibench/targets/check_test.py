from __future__ import annotations

import sys
from typing import Any

from calibench.runtime.isa import Isa
from calibench.targets.check import Status, findings_of, verdict
from calibench.targets.registry import Target

TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}.0"


def _found(**changes: Any) -> dict[str, Any]:
    found = {
        "os": "Debian GNU/Linux 12 (bookworm)",
        "machine": "x86_64",
        "python": VERSION,
        "python_tag": TAG,
        "cpuinfo": "model name\t: Some Xeon\nflags\t\t: fpu avx2 avx512bw\n",
        "cores": 8,
        "memory_total": 16 << 30,
        "memory_available": 8 << 30,
        "disk_free": 100 << 30,
        "venv_problem": None,
        "busy": [],
        "setup": {"folder": "/h/.calibench-target/0.1.0"},
    }
    found.update(changes)
    return found


def test_a_cpu_without_vnni_gets_the_no_gain_verdict() -> None:
    findings = findings_of(Target("t", "h", "u"), _found())
    assert findings.status is Status.AVAILABLE
    assert findings.cpu is not None and findings.cpu.isa is Isa.AVX512
    assert findings.verdict is not None and findings.verdict.startswith("no VNNI: expect little")
    assert dict(findings.lines())["setup"].startswith("not set up yet")


def test_every_isa_class_has_a_verdict() -> None:
    assert verdict(Isa.VNNI).startswith("INT8 will be faster here")
    assert all(verdict(isa) for isa in Isa)


def test_what_stops_a_setup_is_the_status() -> None:
    old = findings_of(Target("t", "h", "u"), _found(python="3.8.10", python_tag="cp38"))
    assert old.status is Status.SETUP_FAILED and "needs 3.10" in (old.reason or "")
    other = "cp399"
    mismatch = findings_of(Target("t", "h", "u"), _found(python="3.99.0", python_tag=other))
    assert mismatch.status is Status.SETUP_FAILED and TAG in (mismatch.reason or "")
    failed = _found(setup={"failed": {"reason": "install offline: pip install failed"}})
    assert (
        findings_of(Target("t", "h", "u"), failed).reason == "install offline: pip install failed"
    )
    busy = findings_of(Target("t", "h", "u"), _found(busy=["run-1"]))
    assert busy.status is Status.BUSY and busy.to_dict()["busy"] == ["run-1"]
    done = _found(setup={"folder": "/f", "installed": {"version": "0.1.0"}})
    assert findings_of(Target("t", "h", "u"), done).setup == "calibench 0.1.0 in /f"
