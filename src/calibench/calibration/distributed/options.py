"""Where a calibration runs, as the API and the CLI state it; no Ray needed to read it."""

from __future__ import annotations

from dataclasses import dataclass

from calibench.errors import ConfigError

LOCAL = "local"


@dataclass(frozen=True)
class RayShards:
    """Run the statistics pass and AccuracyAware's evaluations on a Ray cluster.

    ``address``: ``auto`` (the cluster this machine belongs to, or ``$RAY_ADDRESS``) or
    ``HOST:PORT`` of its head. ``workers``: actors holding a shard of the validation set each
    (default: one per CPU of the cluster); each runs ONNX Runtime on ``threads`` threads.
    """

    address: str = "auto"
    workers: int | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.address or any(c.isspace() for c in self.address):
            raise ConfigError(f"--ray takes auto or HOST:PORT, got {self.address!r}")
        if self.workers is not None and not 1 <= self.workers <= 4096:
            raise ConfigError(f"Ray workers must be 1 to 4096, got {self.workers}")
        if not 1 <= self.threads <= 256:
            raise ConfigError(f"threads per Ray worker must be 1 to 256, got {self.threads}")


def parse_executor(value: str | RayShards | None) -> RayShards | None:
    """``None`` for the local run; a :class:`RayShards` for ``"ray"`` or one given."""
    if value is None or value == LOCAL:
        return None
    if isinstance(value, RayShards):
        return value
    if value == "ray":
        return RayShards()
    raise ConfigError(f"executor must be 'local', 'ray' or a RayShards, got {value!r}")
