"""A worker process: ``python -m calibench.server.worker JOB_ID WORKSPACE PARENT_PID`` runs one
job (the database URL comes in the environment) and exits."""

from __future__ import annotations

import os
import sys

from calibench.server.jobs import WORKER_DATABASE_ENV, worker_main


def main(argv: list[str]) -> int:
    job_id, workspace, parent = argv
    worker_main(int(job_id), os.environ[WORKER_DATABASE_ENV], workspace, int(parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
