"""The fleet comparison: one model's FP32 and INT8 speed on every machine it has a project on,
side by side, with each CPU's INT8 verdict, so the machine INT8 pays off on is seen at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from calibench.report.comparison import speed_words
from calibench.runtime.isa import CpuInfo, host_cpu
from calibench.server.db import ProjectRow
from calibench.server.jobs.kinds import LOCAL
from calibench.server.web.models.schemas import ModelView
from calibench.server.web.models.service import get_model
from calibench.server.web.projects.figures import speed_of
from calibench.server.web.targets.schemas import FleetRow, FleetView
from calibench.server.web.targets.service import TargetService
from calibench.targets.check import verdict


def _speed(project: ProjectRow | None) -> tuple[float | None, float | None]:
    """(throughput, median latency) a project's inference measured."""
    perf = ((project.inference or {}).get("performance") or {}) if project else {}
    return perf.get("throughput"), perf.get("latency_ms_median")


def _perf(project: ProjectRow | None) -> dict[str, Any] | None:
    return ((project.inference or {}).get("performance") or None) if project else None


def _latest_compared(projects: list[ProjectRow]) -> ProjectRow | None:
    """The latest INT8 project timed side by side with its parent."""
    compared = [p for p in projects if ((p.comparison or {}).get("performance"))]
    return max(compared, key=lambda p: p.id) if compared else None


def _latest_measured(projects: list[ProjectRow]) -> ProjectRow | None:
    measured = [p for p in projects if (p.inference or {}).get("performance")]
    return max(measured, key=lambda p: p.id) if measured else None


class FleetService(TargetService):
    def fleet(self, model_id: int) -> FleetView:
        """Model ``model_id`` (or, for an INT8 model, the model it was calibrated from) on
        this machine and on every target with a project of it."""
        with self.sessions() as session:
            model = get_model(session, model_id)
            if model.parent_id is not None:
                model = get_model(session, model.parent_id)
            originals = list(
                session.scalars(select(ProjectRow).where(ProjectRow.model_id == model.id))
            )
            ids = [p.id for p in originals]
            derived = list(session.scalars(select(ProjectRow).where(ProjectRow.parent_id.in_(ids))))
            names = [LOCAL, *sorted({p.target for p in originals} - {LOCAL})]
            rows = [self._row(name, originals, derived) for name in names]
            view = ModelView.of(model)
        return FleetView(model=view, rows=rows, chart=_scale(rows))

    def _row(self, name: str, originals: list[ProjectRow], derived: list[ProjectRow]) -> FleetRow:
        fp32 = _latest_measured([p for p in originals if p.target == name])
        int8 = _latest_compared([p for p in derived if p.target == name])
        fp32_tp, fp32_lat = _speed(fp32)
        int8_tp, int8_lat, speedup = None, None, None
        perf = ((int8.comparison or {}).get("performance") or {}) if int8 else {}
        if int8 is not None and perf.get("fp32") and perf.get("int8"):
            # Both figures from the INT8 project's side-by-side timing with its parent.
            fp32 = next((p for p in originals if p.id == int8.parent_id), fp32)
            fp32_tp, fp32_lat = perf["fp32"]["throughput"], perf["fp32"]["latency_ms_median"]
            int8_tp, int8_lat = perf["int8"]["throughput"], perf["int8"]["latency_ms_median"]
            speedup = int8_tp / fp32_tp if fp32_tp else None
        sides = {"fp32": "the FP32 model", "int8": "the INT8 model"}
        shown = (
            speed_of(perf.get("int8"), sides, sides["int8"]) if speedup else speed_of(_perf(fp32))
        )
        cpu = self._cpu(name)
        return FleetRow(
            target=name,
            fp32_project=fp32.id if fp32 else None,
            int8_project=int8.id if int8 and speedup else None,
            fp32_throughput=fp32_tp,
            int8_throughput=int8_tp,
            fp32_latency_ms=fp32_lat,
            int8_latency_ms=int8_lat,
            speedup=speedup,
            speedup_words=speed_words(speedup) if speedup else None,
            measured=shown.note if shown else None,
            cpu=cpu.describe() if cpu else None,
            isa=cpu.isa.value if cpu else None,
            verdict=verdict(cpu.isa) if cpu else None,
        )

    def _cpu(self, name: str) -> CpuInfo | None:
        """This machine's CPU, or the target's as its last check found it."""
        if name == LOCAL:
            return host_cpu()
        checked = self._checks.get(name)
        return checked.findings.cpu if checked else None


def _scale(rows: list[FleetRow]) -> dict[str, Any]:
    """The longest bar of each chart (the others are drawn in proportion)."""
    throughputs = [v for r in rows for v in (r.fp32_throughput, r.int8_throughput) if v]
    latencies = [v for r in rows for v in (r.fp32_latency_ms, r.int8_latency_ms) if v]
    return {
        "max_throughput": max(throughputs, default=0.0),
        "max_latency_ms": max(latencies, default=0.0),
    }
