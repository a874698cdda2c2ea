"""A real, throw-away Ray cluster on this machine for the Ray tests: a head node and one worker
node, both on 127.0.0.1 only, with Ray's token authentication on.

Why each setting (Ray 2.60):

* ``--node-ip-address 127.0.0.1`` alone is not enough: ``ray start`` turns a loopback address
  into the machine's other address (``resolve_ip_for_localhost``), and every gRPC server then
  listens on all addresses. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps the head (and every
  client: a driver resolves ``127.0.0.1:PORT`` the same way) on 127.0.0.1; that same setting
  refuses to start a second node, so the worker node's ``ray start`` allows it and switches the
  loopback resolution off in its own process only (``_WORKER_START``); what it starts keeps
  the setting, so no Ray process asks the network for "its" address (a UDP route lookup
  towards 8.8.8.8). Then gcs_server, the raylets, the agents and the workers all listen on
  127.0.0.1 (checked by ``listening()``).
* Every port is explicit (found free on 127.0.0.1 first), so two clusters (two test sessions)
  do not collide and nothing picks a port of its own; the Ray Client server is not started (it
  is not installed), the dashboard is off.
* Token authentication stays on: ``RAY_AUTH_MODE=token`` and a fresh token in the cluster's
  temp folder (``RAY_AUTH_TOKEN_PATH``), never ``~/.ray``. A client passes the same two variables
  (``RayCluster.env``); without them it is refused.
* No usage statistics (``RAY_USAGE_STATS_ENABLED=0``, ``--disable-usage-stats``).
* Stopping never runs ``ray stop``: that kills every Ray process on the machine, other people's
  clusters too. ``stop()`` ends this cluster's processes by pid: those whose command line names
  its temp folder, and their children (the agents, the workers).

Use: the session fixture ``ray_cluster`` (tests/conftest.py), or by hand
``python -m tests.ray_cluster`` (prints the address and the variables a client needs, keeps the
cluster up until Ctrl-C).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.server_helpers import alive

LOOPBACK = "127.0.0.1"
RAY_BIN = Path(sys.executable).with_name("ray")

_WORKER_START = (
    "import sys, ray._private.ray_constants as c, ray._private.services as s\n"
    "c.ENABLE_RAY_CLUSTER = True\n"
    "s.resolve_ip_for_localhost = lambda host: host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv[0] = 'ray'\n"
    "sys.exit(main())\n"
)
"""``ray start`` for a second node on 127.0.0.1 (see the module's docstring)."""


_TAKEN: set[int] = set()
"""The ports this process has handed out already (to the nodes of every cluster it starts)."""


def _free_range(width: int) -> range:
    """``width`` consecutive ports free on 127.0.0.1, none handed out before, outside the
    kernel's ephemeral range (32768-60999), where outgoing connections take theirs."""
    for _ in range(500):
        start = secrets.randbelow(32768 - 20000 - width) + 20000
        ports = range(start, start + width)
        if not _TAKEN.intersection(ports) and all(_port_free(p) for p in ports):
            _TAKEN.update(ports)
            return ports
    raise RuntimeError(f"no {width} consecutive free ports found")


def _free_port() -> int:
    return _free_range(1)[0]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class NodePorts:
    node_manager: int
    object_manager: int
    agent_listen: int
    agent_grpc: int
    metrics: int
    runtime_env_agent: int
    workers: tuple[int, int]

    @classmethod
    def pick(cls, workers: int = 40) -> NodePorts:
        block = _free_range(6 + workers)
        return cls(*block[:6], workers=(block[6], block[-1]))

    def args(self) -> list[str]:
        return [
            f"--node-manager-port={self.node_manager}",
            f"--object-manager-port={self.object_manager}",
            f"--dashboard-agent-listen-port={self.agent_listen}",
            f"--dashboard-agent-grpc-port={self.agent_grpc}",
            f"--metrics-export-port={self.metrics}",
            f"--runtime-env-agent-port={self.runtime_env_agent}",
            f"--min-worker-port={self.workers[0]}",
            f"--max-worker-port={self.workers[1]}",
        ]


@dataclass
class RayCluster:
    """A head and ``worker_nodes`` more nodes, each with ``cpus`` logical CPUs."""

    root: Path
    cpus: int = 2
    worker_nodes: int = 1
    object_store_bytes: int = 256 * 1024 * 1024
    gcs_port: int = field(default_factory=_free_port)
    head: NodePorts = field(default_factory=NodePorts.pick)
    workers: list[NodePorts] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.token_path = self.root / "auth_token"
        self.temp_dir = self.root / "ray"
        if not self.workers:
            self.workers = [NodePorts.pick() for _ in range(self.worker_nodes)]

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.gcs_port}"

    @property
    def env(self) -> dict[str, str]:
        """What a client of this cluster (a driver, ``calibench serve --ray``) needs in its
        environment, on top of its own."""
        return {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_path),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_ADDRESS": self.address,
        }

    def _run(self, argv: list[str], env: dict[str, str]) -> None:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=120, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )

    def start(self) -> None:
        """Start the head, then the worker nodes; return when all of them have joined."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.token_path.exists():
            self.token_path.write_text(secrets.token_hex(32))
            self.token_path.chmod(0o600)
        env = {**os.environ, **self.env}
        env.pop("RAY_ADDRESS")
        common = [
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.cpus}",
            f"--object-store-memory={self.object_store_bytes}",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
        ]
        self._run(
            [str(RAY_BIN), "start", "--head", f"--port={self.gcs_port}",
             "--include-dashboard=false", *common, *self.head.args()],
            env,
        )  # fmt: skip
        for ports in self.workers:
            self._run(
                [sys.executable, "-c", _WORKER_START, "start", f"--address={self.address}",
                 *common, *ports.args()],
                env,
            )  # fmt: skip
        self._wait_nodes(1 + len(self.workers))

    def _wait_nodes(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self._raylets()) >= count:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes")

    def processes(self) -> list[int]:
        """The pids of every live process of this cluster: those whose command line names its
        temp folder, and their descendants."""
        table = _process_table()
        mark = str(self.temp_dir).encode()
        found = {pid for pid, (_, argv) in table.items() if mark in argv}
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo = list(found)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        found.discard(os.getpid())
        return sorted(found)

    def _raylets(self) -> list[int]:
        return [p for p in self.processes() if _name(p) == "raylet"]

    def running(self) -> bool:
        return any(_name(p) == "gcs_server" for p in self.processes())

    def stop(self, grace: float = 2.0) -> None:
        """End every process of the cluster (the whole cluster gone, as a crashed machine or
        ``ray stop`` would leave it), by pid."""
        _end(self.processes(), grace)

    def restart(self) -> None:
        """Bring the cluster back after ``stop()`` (same ports and token, a new session)."""
        self.stop()
        self.start()

    def stop_worker_node(self, index: int = 0, grace: float = 0.0) -> None:
        """Kill one worker node: its raylet and everything under it."""
        flag = f"--node_manager_port={self.workers[index].node_manager}".encode()
        table = _process_table()
        raylets = {p for p in self._raylets() if flag in table.get(p, (0, b""))[1]}
        doomed = set(raylets)
        for pid in self.processes():
            ancestor = pid
            while ancestor > 1 and ancestor not in raylets:
                ancestor = table.get(ancestor, (0, b""))[0]
            if ancestor in raylets:
                doomed.add(pid)
        _end(sorted(doomed), grace)

    def listening(self) -> list[tuple[str, int, str]]:
        """``(address, port, process name)`` of every TCP socket the cluster listens on."""
        return listening(self.processes())


def listening(pids: list[int]) -> list[tuple[str, int, str]]:
    """``(address, port, process name)`` of every TCP socket these processes listen on."""
    out = []
    for pid in pids:
        inodes = _socket_inodes(pid)
        for table in ("tcp", "tcp6"):
            for ip, port, inode in _listening(Path(f"/proc/{pid}/net/{table}")):
                if inode in inodes:
                    out.append((ip, port, _name(pid)))
    return out


def _process_table() -> dict[int, tuple[int, bytes]]:
    """Every live process: pid → (parent pid, command line); zombies have ended."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if state not in ("Z", "X"):
            table[int(entry.name)] = (int(ppid), argv)
    return table


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def _listening(table: Path) -> list[tuple[str, int, int]]:
    """``(address, port, inode)`` of the listening sockets in a /proc/net/tcp{,6} table."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if fields[3] != "0A":  # TCP_LISTEN
            continue
        address, port = fields[1].split(":")
        raw = bytes.fromhex(address)
        # The kernel prints the address as 32-bit words in host (little-endian) order.
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        ip = ipaddress.ip_address(words)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped  # an IPv6 socket bound to 127.0.0.1
        found.append((str(ip), int(port, 16), int(fields[9])))
    return found


def _end(pids: list[int], grace: float) -> None:
    """SIGTERM, then SIGKILL whatever is left after ``grace`` seconds; wait until all are gone
    (a zombie whose parent is init counts as gone)."""
    for sig in ((signal.SIGTERM,) if grace > 0 else ()) + (signal.SIGKILL,):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 10.0)
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [p for p in pids if alive(p)]
        if not pids:
            return


def loopback_only(cluster: RayCluster) -> list[str]:
    """What the cluster listens on that is not 127.0.0.1 (empty: all is well)."""
    found = cluster.listening()
    return [f"{name} on {ip}:{port}" for ip, port, name in found if ip != LOOPBACK]


PREFIX = "cbray-"
OWNER = "owner.pid"


def sweep_orphans() -> None:
    """Stop the clusters of test sessions that were killed before they could stop theirs:
    each cluster's folder names the process that started it; a folder whose process has ended
    (and only such a folder) is stopped and removed."""
    for root in Path("/tmp").glob(f"{PREFIX}*"):
        try:
            owner = int((root / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if alive(owner):
            continue
        RayCluster(root, worker_nodes=0).stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_ray_cluster(cpus: int = 2, worker_nodes: int = 1) -> Iterator[RayCluster]:
    """A started cluster in a fresh temp folder (short: Ray's socket paths must stay under
    107 characters); stopped, and its folder removed, on exit."""
    sweep_orphans()
    root = Path(tempfile.mkdtemp(prefix=PREFIX, dir="/tmp"))
    (root / OWNER).write_text(str(os.getpid()))
    cluster = RayCluster(root, cpus=cpus, worker_nodes=worker_nodes)
    try:
        cluster.start()
        stray = loopback_only(cluster)
        if stray:
            raise RuntimeError(f"the Ray cluster listens beyond 127.0.0.1: {stray}")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    with running_ray_cluster() as cluster:
        nodes = 1 + len(cluster.workers)
        print(f"Ray cluster at {cluster.address} ({nodes} nodes), up until Ctrl-C")
        print("A client needs:")
        for key, value in cluster.env.items():
            print(f"  export {key}={value}")
        for ip, port, name in sorted(cluster.listening()):
            print(f"  listening: {ip}:{port} {name}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
