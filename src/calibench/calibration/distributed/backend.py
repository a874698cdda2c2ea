"""The Ray backend: a connection to a cluster, the statistics pass in shards, and the
validation set in shards (:class:`~.evaluation.RayEvaluation`).

:func:`connect` is the one door: it imports Ray, joins the cluster and turns every way that can
fail (Ray missing, no cluster, a refused token) into a :class:`~calibench.errors.TargetError`
that says what to do.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

import onnx

from calibench.calibration.accuracy_aware.validator import Evaluation
from calibench.calibration.distributed.options import RayShards
from calibench.calibration.statistics import (
    Progress,
    TensorStats,
    merge_statistics,
    statistics_model,
)
from calibench.data.annotations import AnnotatedDataset
from calibench.errors import TargetError
from calibench.metrics.base import Metric
from calibench.runtime.inputs import BatchReader, fit_reader
from calibench.runtime.session import make_session

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip(": ")[:300]


def _resolve(address: str) -> str:
    """``auto`` → the address Ray would find (``$RAY_ADDRESS``, then this machine's cluster)."""
    if address != "auto":
        return address
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except Exception:  # Ray's own errors: no cluster file, a stale one
        found = None
    if not found:
        raise TargetError(
            "--ray auto found no Ray cluster on this machine (no RAY_ADDRESS, no running "
            "`ray start --head`); start one, or give --ray HOST:PORT"
        )
    return str(found)


def _reachable(address: str) -> tuple[str, int]:
    """Fail in words, at once, when nothing answers at ``address`` (``ray.init`` would retry
    for minutes)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise TargetError(f"--ray takes auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise TargetError(
            f"no Ray cluster answers at {address} ({error.strerror or error}); start one with "
            "`ray start --head`, or check the address"
        ) from error
    return host, int(port)


def connect(options: RayShards) -> RayBackend:
    """Join the cluster (or reuse this process's connection to it)."""
    try:
        import ray
        import ray._private.ray_constants as ray_constants
    except ImportError as error:
        raise TargetError(
            "executor=ray / --ray needs Ray, which is not installed: pip install 'calibench[ray]'"
        ) from error
    if not ray.is_initialized():
        address = _resolve(options.address)
        host, _ = _reachable(address)
        extra: dict[str, Any] = {}
        if host in LOOPBACK:
            # A cluster on 127.0.0.1 only: Ray turns a loopback address into this machine's
            # other address unless told not to, and the driver must listen on 127.0.0.1 too.
            ray_constants.ENABLE_RAY_CLUSTER = False
            extra["_node_ip_address"] = "127.0.0.1"
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, **extra)
        except Exception as error:  # ray.init's own: a refused token, another Ray version
            raise TargetError(
                f"cannot connect to the Ray cluster at {address}: {_first_line(error)}. Check "
                "that RAY_AUTH_TOKEN_PATH (or RAY_AUTH_TOKEN) holds the cluster's token"
            ) from error
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        raise TargetError("the Ray cluster has no CPUs free for calibench's workers")
    return RayBackend(ray, options.workers or cpus, options.threads)


class RayBackend:
    """:class:`~calibench.calibration.accuracy_aware.backend.Backend` on a Ray cluster."""

    def __init__(self, ray: Any, workers: int, threads: int) -> None:
        self.ray, self.workers, self.threads = ray, workers, threads
        self.name = f"ray ({workers} worker{'s' if workers > 1 else ''})"

    def collect_statistics(
        self,
        model: onnx.ModelProto,
        tensors: Sequence[str],
        reader: BatchReader,
        indices: Sequence[int],
        histograms: bool = False,
        progress: Progress | None = None,
        threads: int | None = None,
        memory_limit: int | None = None,
    ) -> dict[str, TensorStats]:
        """The statistics of shards of ``indices`` (in the local run's batches), merged."""
        from calibench.calibration.distributed.evaluation import cluster_errors, shards
        from calibench.calibration.distributed.workers import shard_statistics

        augmented, outputs = statistics_model(model, tensors, histograms, reader.batch_size > 1)
        probe = make_session(augmented, threads=threads, lean=True)
        reader = fit_reader(reader, indices, lambda f: probe.run(outputs, f), memory_limit)
        shared = self.ray.put(augmented)
        expected = -(-len(indices) // reader.batch_size)
        pending, sizes = [], {}
        for shard in shards(reader.batches(indices), expected, self.workers):
            ref = shard_statistics.remote(
                shared, outputs, list(tensors), self.ray.put(shard), histograms, self.threads
            )
            pending.append(ref)
            sizes[ref] = sum(len(i) for i, _ in shard)
        done, remaining = 0, list(pending)
        with cluster_errors("the statistics pass"):
            while remaining:
                ready, remaining = self.ray.wait(remaining, num_returns=1)
                done += sizes[ready[0]]
                if progress:
                    progress(done, len(indices))
            parts = self.ray.get(pending)
        return merge_statistics(parts)  # in shard order; any order gives the same

    def evaluation(
        self,
        fp32: onnx.ModelProto,
        data: AnnotatedDataset,
        metric: Metric,
        indices: list[int],
        batch_size: int,
        threads: int | None,
        memory_limit: int | None,
    ) -> Evaluation:
        from calibench.calibration.distributed.evaluation import RayEvaluation

        return RayEvaluation(
            fp32,
            data,
            metric,
            indices,
            batch_size,
            threads,
            memory_limit,
            self.workers,
            self.threads,
        )
