"""What a target is and where the list is kept: ``targets.json`` in the workspace, written
atomically and private (0600: it names key files and hosts).

A target is stored only once its host key was accepted and a login succeeded, so every stored
target carries the fingerprint its connections are checked against.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from calibench._files import write_text_atomic
from calibench.errors import ConfigError

FILE = "targets.json"
VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class JumpHost:
    """A bastion the connection goes through (``user@host:port``); its host key is checked
    like the target's own."""

    host: str
    user: str | None = None
    port: int = 22
    host_key: str | None = None

    @classmethod
    def parse(cls, text: str) -> JumpHost:
        user, _, rest = text.rpartition("@")
        host, _, port = rest.partition(":")
        if not host:
            raise ConfigError(f"--jump-host {text!r}: write [user@]host[:port]")
        try:
            number = int(port) if port else 22
        except ValueError:
            raise ConfigError(f"--jump-host {text!r}: the port is not a number") from None
        return cls(host=host, user=user or None, port=number)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}"


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    user: str
    port: int = 22
    key_file: str | None = None
    """The private key; None: the keys of the SSH agent ($SSH_AUTH_SOCK)."""
    host_key: str | None = None
    """The accepted host key's fingerprint, ``SHA256:…`` as OpenSSH prints it."""
    jump: JumpHost | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"target name {self.name!r}: use letters, digits, '.', '_' or '-' (up to 64)"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"target {self.name}: port {self.port} is not in 1–65535")

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        jump = data.get("jump")
        fields = {k: v for k, v in data.items() if k != "jump"}
        return cls(**fields, jump=JumpHost(**jump) if jump else None)

    def with_host_keys(self, host_key: str, jump_key: str | None) -> Target:
        jump = replace(self.jump, host_key=jump_key) if self.jump else None
        return replace(self, host_key=host_key, jump=jump)


class Registry:
    """The targets of one workspace. Every change rewrites the whole file atomically."""

    def __init__(self, workspace: Path) -> None:
        self.path = Path(workspace) / FILE

    def all(self) -> list[Target]:
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Target.from_dict(t) for t in data["targets"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path} is not a calibench target list: {exc}") from None

    def get(self, name: str) -> Target:
        for target in self.all():
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.all()) or "none yet (calibench target add)"
        raise ConfigError(f"no target named {name!r}; known targets: {known}")

    def put(self, target: Target) -> None:
        """Add ``target``, or replace the one of that name."""
        targets = [t for t in self.all() if t.name != target.name] + [target]
        self._write(sorted(targets, key=lambda t: t.name))

    def remove(self, name: str) -> Target:
        target = self.get(name)
        self._write([t for t in self.all() if t.name != name])
        return target

    def _write(self, targets: list[Target]) -> None:
        data = {"version": VERSION, "targets": [t.to_dict() for t in targets]}
        write_text_atomic(self.path, json.dumps(data, indent=2) + "\n", mode=0o600)
