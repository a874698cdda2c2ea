"""Targets as the pages and the API show them, what the API takes to add one, and the fleet
comparison of one model across them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from calibench.server.web.models.schemas import ModelView
from calibench.server.web.schemas import View

FINGERPRINT = r"^SHA256:[A-Za-z0-9+/=]{20,64}$"
PRINTABLE = r"^[^\x00-\x20\x7f]+$"
"""No blanks and no control characters: SSH refuses them in user names, and a host or a key
file has none."""


class TargetAdd(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=64, description="letters, digits, '.', '_', '-'")
    host: str = Field(min_length=1, max_length=255, pattern=PRINTABLE)
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    key_file: str | None = Field(
        None,
        max_length=1000,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="the private key, a file on the server; none: the SSH agent's keys",
    )
    jump_host: str | None = Field(
        None, max_length=300, pattern=PRINTABLE, description="[user@]host[:port]"
    )
    accept_host_key: str | None = Field(
        None,
        pattern=FINGERPRINT,
        description="the host key's fingerprint you accept (the 409 of a first attempt shows "
        "it); needed once, when the target is added",
    )
    accept_jump_host_key: str | None = Field(None, pattern=FINGERPRINT)


class HostKeyQuestion(View):
    """A 409 on adding: the host key is not known yet; add again accepting ``fingerprint``."""

    detail: str
    fingerprint: str
    which: str
    """``target`` or ``jump host``: the field to accept it in (``accept_host_key`` or
    ``accept_jump_host_key``)."""


class FindingsView(View):
    """A target's check: what matters to INT8 there, and the verdict."""

    status: str
    reason: str | None
    os: str | None
    python: str | None
    cpu: str | None
    isa: str | None
    cores: int
    memory_total: int
    memory_available: int
    disk_free: int
    verdict: str | None
    setup: str | None
    rows: list[tuple[str, str]]
    """(label, value) for a person."""
    checked_at: str | None


class TargetView(View):
    name: str
    address: str
    host: str
    port: int
    user: str
    key_file: str | None
    jump_host: str | None
    host_key: str | None
    status: str
    """available, busy, unreachable, setup failed; ``not checked`` before a check."""
    reason: str | None
    findings: FindingsView | None
    """The last check (this server's, since its start)."""


class StepView(View):
    name: str
    outcome: str
    seconds: float


class SetupView(View):
    target: str
    ok: bool
    steps: list[StepView]
    reason: str | None


class FleetRow(View):
    """One target's figures for the model: its FP32 project and its latest INT8 one."""

    target: str
    fp32_project: int | None
    int8_project: int | None
    fp32_throughput: float | None
    int8_throughput: float | None
    fp32_latency_ms: float | None
    int8_latency_ms: float | None
    speedup: float | None
    """INT8 throughput ÷ FP32 throughput, both timed side by side in the INT8 project's
    comparison (None without one: two figures timed apart are never divided)."""
    speedup_words: str | None = None
    """``1.21× faster``, ``1.05× slower``."""
    measured: str | None = None
    """How and when the figures were measured (batch × streams, runtime, CPU, time)."""
    cpu: str | None
    isa: str | None
    verdict: str | None


class FleetView(View):
    model: ModelView
    rows: list[FleetRow]
    chart: dict[str, Any]
    """The bars' scale: ``max_throughput``, ``max_latency_ms``."""
