"""Fixtures for tests that need services: a throw-away PostgreSQL server for the session, and
two throw-away OpenSSH servers that stand for remote targets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_server import running_postgres
from tests.ray_cluster import RayCluster, running_ray_cluster
from tests.sshd import Machines, running_sshd


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of the empty database `calibench_test` on a scratch PostgreSQL server."""
    with running_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A real Ray cluster for the session: a head and one worker node on 127.0.0.1, token
    authentication on (tests/ray_cluster.py). A test that stops it starts it again."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[dev,ray]'")
    with running_ray_cluster() as cluster:
        yield cluster


# The workbench's tests share these: a real trained model and real labelled images, archived the
# way a user uploads them.


@pytest.fixture(scope="session")
def fashion_cnn() -> Path:
    """The Fashion-MNIST CNN (trained once, ~2 min, then cached in build/test-models)."""
    from zoo.fashion import build_fashion_cnn

    return build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))


@pytest.fixture(scope="session")
def fashion_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Uploads: ``val`` (.tar.gz, 200 labelled test images), ``cal`` (.zip, 100 labelled
    training images), ``plain`` (.zip, 30 images without labels), ``nlp`` (a tiny transformer)."""
    from zoo.fashion_folder import write_fashion_imagenet_folder
    from zoo.nlp import build_tiny_transformer

    root = tmp_path_factory.mktemp("uploads")
    write_fashion_imagenet_folder(root / "val", "test", 20)
    write_fashion_imagenet_folder(root / "cal", "train", 10)
    plain = root / "plain"
    plain.mkdir()
    for i, png in enumerate(sorted((root / "cal").rglob("*.png"))[:30]):
        shutil.copy(png, plain / f"{i:03d}.png")
    return {
        "val": Path(shutil.make_archive(str(root / "val"), "gztar", root, "val")),
        "cal": Path(shutil.make_archive(str(root / "cal"), "zip", root, "cal")),
        "plain": Path(shutil.make_archive(str(root / "plain"), "zip", root, "plain")),
        "nlp": build_tiny_transformer(root / "tiny_transformer.onnx"),
    }


# Remote targets: two loopback sshd servers stand for two machines (tests/sshd.py), and a
# workspace that knows them. The target's environment is set up once per session (~30 s), from
# a wheelhouse kept in build/ between sessions.

TEST_WHEELHOUSE = Path("build/test-wheelhouse")


@pytest.fixture(scope="session")
def machines() -> Iterator[Machines]:
    with running_sshd(count=2) as found:
        yield found


@pytest.fixture(scope="session")
def target_workspace(machines: Machines, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the targets ``loop`` and ``loop2`` (their host keys accepted)."""
    from calibench.targets.registry import Registry, Target

    workspace = tmp_path_factory.mktemp("target-workspace")
    TEST_WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    (workspace / "wheelhouse").symlink_to(TEST_WHEELHOUSE.resolve())
    registry = Registry(workspace)
    for name, server in zip(("loop", "loop2"), machines.servers, strict=True):
        registry.put(
            Target(
                name, "127.0.0.1", machines.user, server.port, str(machines.key), server.host_key
            )
        )
    return workspace


@pytest.fixture(scope="session")
def ready_target(target_workspace: Path) -> Path:
    """``loop`` with calibench installed in its private environment; the workspace."""
    import asyncio

    from calibench.targets.connect import connect
    from calibench.targets.registry import Registry
    from calibench.targets.setup import setup

    async def run() -> None:
        connection = await connect(Registry(target_workspace).get("loop"))
        try:
            await setup(connection, target_workspace / "wheelhouse")
        finally:
            await connection.close()

    asyncio.run(run())
    return target_workspace
