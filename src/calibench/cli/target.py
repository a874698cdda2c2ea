"""``calibench target add|check|setup|list|remove``: the machines calibench can run on."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from calibench.cli.common import progress_bars, wide_console
from calibench.errors import ConfigError, TargetError
from calibench.targets.registry import JumpHost, Registry, Target
from calibench.workflow.cache import default_workspace


def workspace_of(args: argparse.Namespace) -> Path:
    return Path(args.workspace) if args.workspace else default_workspace()


def register(sub: Any) -> None:
    target = sub.add_parser("target", help="remote machines to calibrate and measure on (SSH)")
    verbs = target.add_subparsers(dest="verb", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = verbs.add_parser(name, help=help)
        parser.add_argument(
            "--workspace", type=Path, help="where targets.json lives (default ~/.calibench)"
        )
        return parser

    add = verb("add", "register a machine (its host key must be accepted once)")
    add.add_argument("name")
    add.add_argument("--host", required=True)
    add.add_argument("--port", type=int, default=22)
    add.add_argument("--user", required=True)
    add.add_argument("--key", type=Path, help="private key file (default: the SSH agent's keys)")
    add.add_argument(
        "--accept-host-key", metavar="SHA256:…", help="the host key fingerprint you accept"
    )
    add.add_argument("--jump-host", metavar="[USER@]HOST[:PORT]", help="connect through this")
    add.add_argument("--accept-jump-host-key", metavar="SHA256:…")
    add.set_defaults(run=add_command)

    chk = verb("check", "what a target offers INT8: CPU, flags, memory, disk, verdict")
    chk.add_argument("names", nargs="+", metavar="NAME")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(run=check_command)

    stp = verb("setup", "install calibench on the target, offline, from this host's wheels")
    stp.add_argument("name")
    stp.add_argument("--force", action="store_true", help="reinstall even if up to date")
    stp.set_defaults(run=setup_command)

    lst = verb("list", "the registered targets")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(run=list_command)

    rm = verb("remove", "forget a target (its files there stay)")
    rm.add_argument("name")
    rm.set_defaults(run=remove_command)


def add_command(args: argparse.Namespace) -> int:
    from calibench.targets.connect import connect

    registry = Registry(workspace_of(args))
    if any(t.name == args.name for t in registry.all()):
        raise ConfigError(f"a target named {args.name!r} exists; remove it first")
    key = str(args.key.expanduser().resolve()) if args.key else None
    jump = JumpHost.parse(args.jump_host) if args.jump_host else None
    target = Target(args.name, args.host, args.user, args.port, key, jump=jump)

    async def login() -> tuple[str | None, str | None]:
        connection = await connect(target, args.accept_host_key, args.accept_jump_host_key)
        await connection.close()
        return connection.host_key, connection.jump_key

    if args.accept_host_key is None:
        asyncio.run(login())  # refuses, showing the fingerprint: nothing is stored
    host_key, jump_key = asyncio.run(login())
    assert host_key is not None
    stored = target.with_host_keys(host_key, jump_key)
    registry.put(stored)
    via = f" via {stored.jump}" if stored.jump else ""
    print(f"target {stored.name} added: {stored.address}{via}, host key {host_key}")
    return 0


def _render(findings: Any, console: Console) -> None:
    table = Table(title=f"Target {findings.target}", show_header=False)
    for label, value in findings.lines():
        table.add_row(label, value)
    console.print(table)


def check_command(args: argparse.Namespace) -> int:
    from calibench.targets.check import Findings, Status, check

    registry = Registry(workspace_of(args))
    targets = [registry.get(name) for name in args.names]

    async def all_checks() -> list[Findings]:
        return list(await asyncio.gather(*(check(t) for t in targets)))

    found = asyncio.run(all_checks())
    if args.json:
        data = [f.to_dict() for f in found]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    else:
        console = wide_console()
        for findings in found:
            _render(findings, console)
    ok = all(f.status in (Status.AVAILABLE, Status.BUSY) for f in found)
    return 0 if ok else TargetError.exit_code


def setup_command(args: argparse.Namespace) -> int:
    from calibench.targets.connect import connect
    from calibench.targets.setup import Step, setup

    target = Registry(workspace_of(args)).get(args.name)
    err = Console(stderr=True)

    def report(step: Step) -> None:
        err.print(
            f"✓ {step.name}: {step.outcome} ({step.seconds:.1f} s)", highlight=False, soft_wrap=True
        )

    async def run(on_bytes: Any) -> list[Step]:
        connection = await connect(target)
        try:
            return await setup(
                connection, workspace_of(args) / "wheelhouse", report, on_bytes, args.force
            )
        finally:
            await connection.close()

    with progress_bars(quiet=False) as bars:

        def on_bytes(done: int, total: int) -> None:
            if bars is not None and total:
                bars("uploading (bytes)", done, total)

        steps = asyncio.run(run(on_bytes))
    print(f"target {target.name} is set up ({sum(s.seconds for s in steps):.1f} s)")
    return 0


def list_command(args: argparse.Namespace) -> int:
    targets = Registry(workspace_of(args)).all()
    if args.json:
        print(json.dumps([t.to_dict() for t in targets], indent=2))
        return 0
    if not targets:
        print("no targets yet: calibench target add NAME --host H --user U --key FILE")
        return 0
    table = Table(title="Targets")
    for column in ("name", "address", "key", "host key", "via"):
        table.add_column(column)
    for t in targets:
        table.add_row(
            t.name, t.address, t.key_file or "SSH agent", t.host_key or "", str(t.jump or "")
        )
    wide_console().print(table)
    return 0


def remove_command(args: argparse.Namespace) -> int:
    target = Registry(workspace_of(args)).remove(args.name)
    print(f"target {target.name} removed (its ~/.calibench-target on {target.host} stays)")
    sys.stdout.flush()
    return 0
