"""``calibench dataset import|info``, and how ``--dataset`` names are resolved."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from calibench.data.annotations import Task
from calibench.errors import DatasetError
from calibench.workflow.cache import default_workspace

MANIFEST = "calibench-dataset.json"


def register(sub: Any) -> None:
    data = sub.add_parser("dataset", help="import a dataset, or describe one")
    verbs = data.add_subparsers(dest="verb", required=True)
    imp = verbs.add_parser("import", help="import a folder or an archive (.zip, .tar, .tar.gz)")
    imp.add_argument("source", type=Path)
    imp.add_argument("--name", help="name in the workspace (default: the source's name)")
    imp.add_argument(
        "--type",
        dest="kind",
        choices=[t.value for t in Task],
        help="skip detection and read the dataset as this type",
    )
    imp.add_argument("--workspace", type=Path, help="default: $CALIBENCH_WORKSPACE or ~/.calibench")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(run=import_command)
    info = verbs.add_parser("info", help="describe an imported dataset")
    info.add_argument("dataset", help="its name in the workspace or its folder")
    info.add_argument("--workspace", type=Path)
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=info_command)


def workspace_datasets(workspace: Path | None) -> Path:
    return (workspace or default_workspace()) / "datasets"


def resolve_dataset(text: str, workspace: Path | None) -> Path:
    """A path as given, or the imported dataset of that name in the workspace."""
    path = Path(text)
    if path.exists():
        return path
    named = workspace_datasets(workspace) / text
    if (named / MANIFEST).is_file():
        return named
    raise DatasetError(
        f"no dataset {text!r}: it is not a path, and {workspace_datasets(workspace)} holds no "
        "imported dataset of that name (import one with: calibench dataset import SOURCE)"
    )


def import_command(args: argparse.Namespace) -> int:
    from calibench.data.importer import import_dataset

    result = import_dataset(
        args.source, workspace_datasets(args.workspace), name=args.name, kind=args.kind
    )
    if args.json:
        print(json.dumps(result.summary(), indent=2, default=str))
    else:
        print(result.render())
    return 0


def info_command(args: argparse.Namespace) -> int:
    from calibench.data.importer import ImportResult

    path = resolve_dataset(args.dataset, args.workspace)
    if not (path / MANIFEST).is_file():
        raise DatasetError(f"{path} is not an imported dataset (no {MANIFEST} in it)")
    result = ImportResult.load(path)
    if args.json:
        print(json.dumps(result.summary(), indent=2, default=str))
    else:
        print(result.render())
    return 0
