"""``calibench serve``: the web workbench."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calibench.cli.common import positive_float, positive_int
from calibench.errors import ConfigError
from calibench.workflow.cache import default_workspace

if TYPE_CHECKING:
    from calibench.server.settings import ServerSettings

MIN_TOKEN = 16


def register(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="start the web workbench (projects, INT8 calibration, comparison) and its JSON API",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8765)")
    serve.add_argument(
        "--workspace", type=Path, help="models, datasets, results and the database (~/.calibench)"
    )
    serve.add_argument(
        "--database-url",
        help="default: SQLite in the workspace; or postgresql://user:password@host/dbname",
    )
    serve.add_argument(
        "--token",
        help="require this access token (at least 16 characters; default: $CALIBENCH_TOKEN). "
        "Always required when --host is not a loopback address: generated at first start and "
        "kept in the workspace if not given",
    )
    serve.add_argument(
        "--max-upload-mb",
        type=positive_float,
        help="largest upload accepted (default 2048)",
    )
    serve.add_argument(
        "--workers", type=positive_int, help="jobs that run at the same time (default 2)"
    )
    serve.add_argument(
        "--measure-seconds",
        type=positive_float,
        help="how long each latency/throughput measurement lasts (default 3)",
    )
    serve.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the jobs on this Ray cluster (HOST:PORT, or auto: RAY_ADDRESS, else the one "
        "`ray start --head` started here); needs pip install 'calibench[ray]' here and on "
        "every node (default: $CALIBENCH_RAY, else worker processes on this machine)",
    )
    serve.set_defaults(run=serve_command)


def settings_from(args: argparse.Namespace) -> ServerSettings:
    """The server's settings: what the command line gives, else its ``CALIBENCH_*`` variable,
    else the default."""
    from pydantic import ValidationError

    from calibench.server.settings import ServerSettings

    given = {
        "host": args.host,
        "port": args.port,
        "database_url": args.database_url,
        "token": args.token,
        "max_upload_mb": args.max_upload_mb,
        "max_workers": args.workers,
        "perf_seconds": args.measure_seconds,
        "ray": args.ray,
    }
    workspace = (args.workspace or default_workspace()).expanduser().resolve()
    try:
        settings = ServerSettings(
            workspace=workspace, **{k: v for k, v in given.items() if v is not None}
        )
    except ValidationError as error:
        raise ConfigError(f"the server settings are invalid: {error}") from error
    if settings.token is not None and len(settings.token.strip()) < MIN_TOKEN:
        raise ConfigError(
            f"the access token must have at least {MIN_TOKEN} characters; leave --token out to "
            "have one generated"
        )
    return settings


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from calibench.server.app import create_app
    from calibench.server.settings import server_token

    settings = settings_from(args)
    workspace = settings.workspace
    token = settings.token
    if token is None and not settings.loopback_only:
        token = server_token(workspace)
        settings = settings.model_copy(update={"token": token})
    app = create_app(settings)
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    address = f"http://{shown}:{settings.port}/" + (f"?token={token}" if token else "")
    database = settings.url.split("@")[-1]
    print(f"calibench workbench: {address}", flush=True)
    print(f"  workspace {workspace}; database …{database[-60:]}", flush=True)
    if token:
        print("  every request needs the token (open the address above once)", flush=True)
    if app.state.cluster is not None:
        print(f"  jobs run on {app.state.cluster}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0
