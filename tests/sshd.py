"""Throw-away OpenSSH servers that stand for remote machines in the target tests.

``running_sshd`` (root only: sshd must switch users) creates a user of its own whose home is a
scratch folder, so the "remote" files really are elsewhere, a throw-away user key and one host
key per server, and starts Debian's ``/usr/sbin/sshd`` on 127.0.0.1 and a free port, with its
own ``AuthorizedKeysFile`` and ``UsePAM no``. On exit the servers stop, the user's leftover
processes are killed by pid, the user is deleted and the scratch folder removed. It needs
``openssh-server`` (``apt-get install -y openssh-server``, which ``make test`` does).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh

SSHD = Path("/usr/sbin/sshd")
INSTALL_HINT = "install it with `apt-get install -y openssh-server` (which `make test` does)"


@dataclass(frozen=True)
class Sshd:
    """One server: where it listens and the fingerprint of its host key."""

    port: int
    host_key: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class Machines:
    user: str
    uid: int
    home: Path
    key: Path
    """The user's private key (its public half is authorized)."""
    other_key: Path
    """A key the servers do not know."""
    servers: list[Sshd]

    def processes(self) -> list[int]:
        """The pids of every process that runs as the user (sshd's session processes too)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == self.uid:
                        pids.append(int(entry.name))
        return pids

    def drop_connections(self) -> None:
        """Cut every SSH connection of the user, as a lost network would: kill sshd's session
        processes that run as the user (by pid), and wait until they are gone."""
        sessions = [p for p in self.processes() if _comm(p) == "sshd"]
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in sessions) and time.monotonic() < deadline:
            time.sleep(0.02)

    def run_folders(self) -> list[Path]:
        return sorted((self.home / ".calibench-target" / "runs").glob("*"))

    def wait_run_pid(self, timeout: float = 60) -> int:
        """The pid of the calibench process a remote run started (it writes it first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for folder in self.run_folders():
                with contextlib.suppress(OSError, ValueError):
                    return int((folder / "pid").read_text().strip())
            time.sleep(0.01)
        raise TimeoutError("no remote run started")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _keypair(path: Path) -> str:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    os.chmod(path, 0o600)
    return str(key.get_fingerprint("sha256"))


def _start(base: Path, index: int, user: str) -> Sshd:
    host_key = base / f"host{index}_ed25519"
    fingerprint = _keypair(host_key)
    port = _free_port()
    config = base / f"sshd{index}.conf"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {base}/sshd{index}.pid
AuthorizedKeysFile {base}/authorized_keys
AllowUsers {user}
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""
    )
    log = base / f"sshd{index}.log"
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited at once:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return Sshd(port, fingerprint, process, log)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port}:\n{log.read_text()}")


@contextmanager
def running_sshd(count: int = 2) -> Iterator[Machines]:
    if os.geteuid() != 0:
        raise RuntimeError("the sshd fixture needs root (it creates a user for the target)")
    if not SSHD.is_file():
        raise RuntimeError(f"{SSHD} not found; {INSTALL_HINT}")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    base = Path(tempfile.mkdtemp(prefix="calibench-sshd-"))
    os.chmod(base, 0o755)
    home = base / "home"
    user = f"cbtarget-{secrets.token_hex(3)}"
    subprocess.run(
        # "*": no password, yet not locked ("!"), which sshd without PAM refuses
        ["useradd", "-m", "-d", str(home), "-s", "/bin/sh", "-p", "*", user],
        check=True,
        capture_output=True,
    )
    servers: list[Sshd] = []
    machines = None
    try:
        key, other = base / "user_ed25519", base / "other_ed25519"
        _keypair(key)
        _keypair(other)
        shutil.copy(str(key) + ".pub", base / "authorized_keys")
        os.chmod(base / "authorized_keys", 0o644)
        for index in range(count):
            servers.append(_start(base, index, user))
        machines = Machines(user, pwd.getpwnam(user).pw_uid, home, key, other, servers)
        yield machines
    finally:
        for server in servers:
            server.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(10)
        if machines is not None:
            for pid in machines.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        subprocess.run(["userdel", user], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    """``make target``: one loopback machine to try targets with, until Ctrl-C."""
    with running_sshd(count=1) as machines:
        server = machines.servers[0]
        print("A throw-away SSH machine on 127.0.0.1 (stopped and deleted on Ctrl-C):")
        print(f"  host 127.0.0.1  port {server.port}  user {machines.user}")
        print(f"  key file {machines.key}")
        print(f"  its host key: {server.host_key}")
        print("Add it on the workbench's Targets page, or:")
        print(
            f"  calibench target add edge --host 127.0.0.1 --port {server.port} "
            f"--user {machines.user} --key {machines.key}"
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
