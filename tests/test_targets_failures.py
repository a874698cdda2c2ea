"""How remote runs fail, against the real sshd of tests/sshd.py: the process killed, the target
gone silent, the connection cut during an upload, a full disk, and a cancel. Each leaves
nothing written here, and the target's working folder removed where the target can still be
reached.

The remote calibration of the tiny model takes about a second, too short to hit in the middle,
so the tests freeze the remote process (SIGSTOP, as root on the "remote" machine) as soon as
it has written its pid, then do what they test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from calibench.errors import RemoteCommandError, TargetError
from calibench.targets.assets import Input, Output
from calibench.targets.connect import connect
from calibench.targets.job import JobFailed, RemoteJob
from calibench.targets.registry import Registry
from calibench.targets.transfer import Asset, upload
from tests.sshd import Machines, _alive


def _job(workspace: Path, model: Path, data: Path, output: Path) -> RemoteJob:
    target = Registry(workspace).get("loop")
    argv = ["calibrate", Input(model), "-d", Input(data), "-o", Output(output)]
    return RemoteJob(target, argv, "calibration", workspace / "wheelhouse")


FrozenRun = Callable[[Path], tuple[RemoteJob, int]]


@pytest.fixture
def frozen_run(
    ready_target: Path, machines: Machines, tiny_cnn_path: Path, tiny_data: Path
) -> Iterator[FrozenRun]:
    """Starts a remote calibration writing to the given path and freezes its process as soon as
    it has a pid; the pid comes back with the job. Frozen processes are killed at the end,
    whatever happened."""
    pids: list[int] = []

    def start(output: Path) -> tuple[RemoteJob, int]:
        job = _job(ready_target, tiny_cnn_path, tiny_data, output).start()
        pid = machines.wait_run_pid()
        os.kill(pid, signal.SIGSTOP)
        pids.append(pid)
        return job, pid

    yield start
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _failure(job: RemoteJob) -> str:
    outcome = job.wait(120)
    assert isinstance(outcome, JobFailed), outcome
    return str(outcome.error)


def test_a_killed_process_fails_the_run_and_writes_nothing(
    frozen_run: FrozenRun, machines: Machines, tmp_path: Path
) -> None:
    job, pid = frozen_run(tmp_path / "int8.onnx")
    os.kill(pid, signal.SIGKILL)
    message = _failure(job)
    assert "on target loop was killed (SIGKILL) during calibration" in message
    assert "nothing was written" in message
    assert list(tmp_path.iterdir()) == []
    assert machines.run_folders() == []


def test_a_target_that_stops_responding_fails_the_run(
    frozen_run: FrozenRun,
    machines: Machines,
    ready_target: Path,
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
) -> None:
    job, pid = frozen_run(tmp_path / "int8.onnx")
    machines.drop_connections()
    message = _failure(job)
    assert "the target loop stopped responding during calibration" in message
    assert list(tmp_path.iterdir()) == []
    # The folder could not be removed over a dead connection; the next run sweeps it once its
    # process is gone.
    os.kill(pid, signal.SIGKILL)
    left = machines.run_folders()
    assert len(left) == 1
    job = _job(ready_target, tiny_cnn_path, tiny_data, tmp_path / "again.onnx").start()
    assert job.wait(120) is not None and not isinstance(job.outcome(), JobFailed)
    assert not left[0].exists() and (tmp_path / "again.onnx").is_file()
    phases = [e.phase for e in job.events()]
    stages = ["preparing assets", "uploading", "calibration", "downloading results"]
    assert sorted(set(phases) & set(stages), key=phases.index) == stages


def test_a_cancel_kills_the_remote_process_group_and_cleans_up(
    frozen_run: FrozenRun, machines: Machines, tmp_path: Path
) -> None:
    job, pid = frozen_run(tmp_path / "int8.onnx")  # frozen, it ignores TERM: the cancel must KILL
    job.stop()
    assert not _alive(pid)
    assert "stopped; the run's folder on target loop was removed" in _failure(job)
    assert machines.run_folders() == [] and list(tmp_path.iterdir()) == []


def test_a_connection_lost_during_upload_fails_then_resumes(
    ready_target: Path, machines: Machines, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 << 20))
    asset = Asset.of(big)
    target = Registry(ready_target).get("loop")
    store = machines.home / ".calibench-target" / "assets"

    def cut(done: int, total: int) -> None:
        if done > 0:
            machines.drop_connections()

    async def scenario() -> None:
        connection = await connect(target)
        with pytest.raises(TargetError, match="lost during the upload") as refused:
            await upload(connection, [asset], cut)
        assert "the next attempt continues; nothing was written here" in str(refused.value)
        with contextlib.suppress(Exception):
            await connection.close()
        arrived = (store / f"{asset.sha256}.partial").stat().st_size
        assert 0 < arrived < asset.size

        connection = await connect(target)
        try:
            resumed = await upload(connection, [asset])
            assert resumed.resumed == arrived and resumed.sent == asset.size - arrived
            again = await upload(connection, [asset])
            assert again.sent == 0 and again.skipped == asset.size
        finally:
            await connection.close()

    asyncio.run(scenario())
    assert (store / asset.sha256).read_bytes() == big.read_bytes()


def test_a_full_disk_on_the_target_is_a_clear_failure(
    ready_target: Path, machines: Machines, tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The target's runs folder on a 4 KiB tmpfs (mounted here, as root): the pid file fits,
    the INT8 model does not."""
    runs = machines.home / ".calibench-target" / "runs"
    runs.mkdir(exist_ok=True)
    options = f"size=4k,uid={machines.uid},gid={machines.uid},mode=0755"
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(runs)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        job = _job(ready_target, tiny_cnn_path, tiny_data, tmp_path / "int8.onnx").start()
        outcome = job.wait(120)
        assert isinstance(outcome, JobFailed), outcome
        error = outcome.error
        assert isinstance(error, RemoteCommandError) and error.exit_code != 0
        assert str(error).startswith("on target loop: ")
        assert "cannot write -o/--output int8.onnx: No space left on device" in str(error)
        assert list(tmp_path.iterdir()) == []
        assert list(runs.iterdir()) == []
    finally:
        subprocess.run(["umount", str(runs)], check=False)


def test_ctrl_c_on_the_command_line_stops_the_remote_run(
    ready_target: Path,
    machines: Machines,
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
) -> None:
    """``calibench calibrate --target`` interrupted (SIGINT, as Ctrl-C sends): exit 130, the
    remote process group killed, its folder removed, nothing written here."""
    output = tmp_path / "int8.onnx"
    command = [
        sys.executable, "-m", "calibench.cli", "calibrate", str(tiny_cnn_path),
        "-d", str(tiny_data), "-o", str(output), "--target", "loop",
        "--workspace", str(ready_target), "-q",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    local = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    pid = machines.wait_run_pid()
    try:
        os.kill(pid, signal.SIGSTOP)
        local.send_signal(signal.SIGINT)
        _, err = local.communicate(timeout=60)
        killed = not _alive(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        local.kill()
    assert local.returncode == 130, err
    assert "stopping the run on target loop" in err and "nothing was written" in err
    assert killed
    assert machines.run_folders() == [] and list(tmp_path.iterdir()) == []
