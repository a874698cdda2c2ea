"""Files to and from a target over SFTP.

Uploads go to a store named by content, ``~/.calibench-target/assets/<sha256>``: a file whose
hash is already there is not sent again, and one cut off midway stays as ``<sha256>.partial``,
which the next upload continues from its size. A file is renamed into the store only after the
target has hashed it, so a name in the store is a promise about its content.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from calibench.errors import TargetError
from calibench.targets.assets import Asset
from calibench.targets.connect import Connection

CHUNK = 1 << 18
ROOT = ".calibench-target"
BytesProgress = Callable[[int, int], None]
"""(bytes sent, bytes to send)."""

_VERIFY = (
    "import hashlib, os, sys\n"
    "for partial in sys.argv[1:]:\n"
    "    h = hashlib.sha256()\n"
    "    with open(partial, 'rb') as f:\n"
    "        for block in iter(lambda: f.read(1 << 20), b''):\n"
    "            h.update(block)\n"
    "    final = partial[: -len('.partial')]\n"
    "    if h.hexdigest() == os.path.basename(final):\n"
    "        os.replace(partial, final)\n"
    "    else:\n"
    "        os.unlink(partial)\n"
    "        print(os.path.basename(final))\n"
)


@dataclass(frozen=True)
class Sent:
    """What an upload did: the store's path of every asset, and the bytes it had to send."""

    remote: dict[str, str]
    """sha256 → its path on the target."""
    sent: int
    """Bytes sent by this upload."""
    resumed: int
    """Bytes an earlier, cut-off upload had left there and this one continued from."""
    skipped: int
    """Bytes not sent because the target had those files already."""


async def home(connection: Connection) -> str:
    async with connection.ssh.start_sftp_client() as sftp:
        return str(await sftp.realpath("."))


async def upload(
    connection: Connection, assets: list[Asset], progress: BytesProgress | None = None
) -> Sent:
    """Put ``assets`` in the target's store; raises ``TargetError`` when the connection is lost
    (what had arrived stays, for the next attempt to continue)."""
    name = connection.target.name
    sent = resumed = 0
    try:
        async with connection.ssh.start_sftp_client() as sftp:
            store = f"{await sftp.realpath('.')}/{ROOT}/assets"
            await sftp.makedirs(store, exist_ok=True)
            present = set(await sftp.listdir(store))
            unique = {a.sha256: a for a in assets}
            missing = [a for a in unique.values() if a.sha256 not in present]
            total = sum(a.size for a in missing)
            skipped = sum(a.size for a in unique.values()) - total
            if progress:
                progress(0, total)
            for asset in missing:
                partial = f"{store}/{asset.sha256}.partial"
                offset = 0
                if f"{asset.sha256}.partial" in present:
                    offset = (await sftp.stat(partial)).size or 0
                    offset = offset if offset <= asset.size else 0
                resumed += offset
                async with sftp.open(partial, "r+b" if offset else "wb") as remote:
                    with asset.local.open("rb") as local:
                        local.seek(offset)
                        for block in iter(lambda: local.read(CHUNK), b""):
                            await remote.write(block, offset)
                            offset += len(block)
                            sent += len(block)
                            if progress:
                                progress(resumed + sent, total)
            if missing:
                await _verify(connection, [f"{store}/{a.sha256}.partial" for a in missing])
    except (asyncssh.Error, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise TargetError(
            f"the connection to target {name} was lost during the upload ({reason}); "
            f"{resumed + sent} bytes had arrived and stay there, so the next attempt continues; "
            "nothing was written here"
        ) from None
    return Sent({a.sha256: f"{store}/{a.sha256}" for a in assets}, sent, resumed, skipped)


async def _verify(connection: Connection, partials: list[str]) -> None:
    command = "python3 -c " + shlex.quote(_VERIFY) + " " + " ".join(map(shlex.quote, partials))
    done = await connection.ssh.run(command)
    if done.exit_status != 0 or str(done.stdout).strip():
        raise TargetError(
            f"target {connection.target.name}: uploaded files arrived damaged "
            f"({str(done.stdout).strip() or str(done.stderr).strip()[-300:]}); run again"
        )


async def download(
    connection: Connection, pairs: list[tuple[str, Path]], progress: BytesProgress | None = None
) -> None:
    """Fetch each remote path to its local path (the caller's temporary names)."""
    async with connection.ssh.start_sftp_client() as sftp:
        sizes = [(await sftp.stat(remote)).size or 0 for remote, _ in pairs]
        total, done = sum(sizes), 0
        for (remote, local), size in zip(pairs, sizes, strict=True):
            await sftp.get(remote, str(local))
            done += size
            if progress:
                progress(done, total)
