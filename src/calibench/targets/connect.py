"""SSH connections to a target, with the host key the user accepted and nothing else.

asyncssh is given an empty list of trusted keys, so every host key reaches
``validate_host_public_key``, which accepts exactly the stored fingerprint. The key the host
presented is kept, so that a refusal can show it: an unknown key with its SHA256 fingerprint (to
be accepted once), a changed one with both fingerprints. ``~/.ssh/config`` and
``known_hosts`` are not read: a target is what the registry says, on every machine.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

import asyncssh

from calibench.errors import HostKeyError, TargetError
from calibench.targets.registry import JumpHost, Target

CONNECT_TIMEOUT = 15.0
KEEPALIVE = 10.0
"""Seconds between keepalives; three unanswered ones mean the target stopped responding."""


class UnreachableError(TargetError):
    """No SSH server answered at the target's address (or the jump host's)."""


class LoginError(TargetError):
    """The SSH server answered but refused the login (user or key)."""


@dataclass
class _Seen:
    """The host key a server presented, filled in by the checker."""

    fingerprint: str | None = None
    algorithm: str | None = None
    accepted: set[str] = field(default_factory=set)


def _checker(expected: str | None, seen: _Seen) -> type[asyncssh.SSHClient]:
    class Checker(asyncssh.SSHClient):
        def validate_host_public_key(
            self, host: str, addr: str, port: int, key: asyncssh.SSHKey
        ) -> bool:
            seen.fingerprint = key.get_fingerprint("sha256")
            seen.algorithm = key.get_algorithm()
            return expected is not None and seen.fingerprint == expected

    return Checker


def host_key_refusal(
    what: str, address: str, stored: str | None, accept: str | None, seen: _Seen
) -> HostKeyError:
    """The words for a host key that is not the expected one. ``what`` names the machine
    ("target edge-1", "jump host bastion")."""
    assert seen.fingerprint is not None, "the checker saw no key: nothing to refuse"
    new = f"{seen.fingerprint} ({seen.algorithm})"
    which = "jump host" if what.startswith("jump") else "target"
    if accept is not None:
        return HostKeyError(
            f"{what} ({address}) presented the host key {new}, not {accept} that you accepted; "
            "nothing was stored or run",
            which,
            seen.fingerprint,
            accept,
        )
    if stored is None:
        option = "--accept-jump-host-key" if what.startswith("jump") else "--accept-host-key"
        return HostKeyError(
            f"the host key of {what} ({address}) is not known yet: {new}. Compare it with "
            "`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on that machine, then run again with "
            f"{option} {seen.fingerprint}; nothing was stored",
            which,
            seen.fingerprint,
        )
    return HostKeyError(
        f"the host key of {what} ({address}) has CHANGED: it was {stored} when the target was "
        f"added, it is now {new}. The machine may have been reinstalled, or someone may be "
        "intercepting the connection; nothing was run. If the change is expected, remove the "
        f"target and add it again with --accept-host-key {seen.fingerprint}",
        which,
        seen.fingerprint,
        stored,
    )


async def _open(
    what: str,
    host: str,
    port: int,
    user: str | None,
    key_file: str | None,
    stored: str | None,
    accept: str | None,
    tunnel: asyncssh.SSHClientConnection | None = None,
) -> asyncssh.SSHClientConnection:
    seen = _Seen()
    address = f"{user + '@' if user else ''}{host}:{port}"
    options: dict[str, object] = {}
    if key_file is not None:
        options["client_keys"] = [key_file]
        options["agent_path"] = None
    try:
        return await asyncssh.connect(
            host,
            port,
            tunnel=tunnel,
            username=user,
            known_hosts=([], [], []),
            server_host_key_algs="default",
            client_factory=_checker(accept if accept is not None else stored, seen),
            config=None,
            connect_timeout=CONNECT_TIMEOUT,
            keepalive_interval=KEEPALIVE,
            keepalive_count_max=3,
            **options,
        )
    except asyncssh.HostKeyNotVerifiable:
        if seen.fingerprint is None:
            raise
        raise host_key_refusal(what, address, stored, accept, seen) from None
    except asyncssh.PermissionDenied as exc:
        key = f"the key {key_file}" if key_file else "the SSH agent's keys"
        raise LoginError(
            f"{what} ({address}) refused the login of user {user!r} with {key} "
            f"({exc.reason}): check the user name, and that the public key is in that user's "
            "~/.ssh/authorized_keys there"
        ) from None
    except asyncssh.KeyImportError as exc:
        raise LoginError(
            f"{what}: cannot use the key {key_file}: {exc}. A key with a passphrase must be "
            "loaded into the SSH agent (ssh-add) and the target added without --key"
        ) from None
    except (OSError, asyncio.TimeoutError) as exc:
        if isinstance(exc, FileNotFoundError) and key_file and exc.filename == key_file:
            raise LoginError(f"{what}: the key file {key_file} does not exist") from None
        reason = "no answer" if isinstance(exc, asyncio.TimeoutError) else _os_reason(exc)
        raise UnreachableError(f"{what} ({address}) is unreachable: {reason}") from None
    except asyncssh.Error as exc:
        raise UnreachableError(f"{what} ({address}): SSH failed: {exc.reason}") from None


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"the host name does not resolve ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (no SSH server listens on that port)"
    return exc.strerror or str(exc) or type(exc).__name__


@dataclass
class Connection:
    """An open connection to a target (and to its jump host, closed with it)."""

    target: Target
    ssh: asyncssh.SSHClientConnection
    jump: asyncssh.SSHClientConnection | None = None
    host_key: str | None = None
    jump_key: str | None = None

    async def close(self) -> None:
        self.ssh.close()
        await self.ssh.wait_closed()
        if self.jump is not None:
            self.jump.close()
            await self.jump.wait_closed()


async def connect(
    target: Target, accept: str | None = None, accept_jump: str | None = None
) -> Connection:
    """Log in to ``target``, checking its host key (and its jump host's) against the stored
    fingerprints, or against ``accept``/``accept_jump`` when the user gives them (adding)."""
    tunnel = None
    jump: JumpHost | None = target.jump
    if jump is not None:
        tunnel = await _open(
            f"jump host {jump.host}",
            jump.host,
            jump.port,
            jump.user or target.user,
            target.key_file,
            jump.host_key,
            accept_jump,
        )
    try:
        ssh = await _open(
            f"target {target.name}",
            target.host,
            target.port,
            target.user,
            target.key_file,
            target.host_key,
            accept,
            tunnel,
        )
    except BaseException:
        if tunnel is not None:
            tunnel.close()
        raise
    host_key = accept or target.host_key
    jump_key = accept_jump or (jump.host_key if jump else None)
    return Connection(target, ssh, tunnel, host_key, jump_key)
