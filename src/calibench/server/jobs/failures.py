"""Whether a failed job could end otherwise if run again.

A job's inputs never change once it is queued: the model and dataset files in the workspace are
immutable, and its settings are stored with it. So a failure that comes from those inputs (a
model or dataset that does not fit, settings the calibration refuses, integer kernels that do
not compute what was calibrated) repeats on every retry, and the pages do not offer one. A
failure from outside them (a target that went away, a killed worker, a full disk, an internal
error that a fixed calibench may not repeat) may not, and Retry stays."""

from __future__ import annotations

from enum import Enum

from calibench.errors import (
    ConfigError,
    DatasetError,
    KernelCheckError,
    ModelError,
    NotEligibleError,
    RemoteCommandError,
)

FROM_THE_INPUTS = (ModelError, NotEligibleError, DatasetError, ConfigError, KernelCheckError)
"""The errors that the job's own inputs cause."""
PERMANENT_KEY = "permanent"
"""Where a failed job's row records it (its ``result``, which a failed job has no other use
for): a flag beside the message, so no migration is needed."""


class Failure(str, Enum):
    PERMANENT = "permanent"
    """Running the job again gives the same failure."""
    TRANSIENT = "transient"
    """Running it again may succeed."""


def classify(error: BaseException) -> Failure:
    """How a job that raised ``error`` failed."""
    if isinstance(error, RemoteCommandError):  # the target's command: its exit code says why
        codes = {cls.exit_code for cls in FROM_THE_INPUTS}
        return Failure.PERMANENT if error.exit_code in codes else Failure.TRANSIENT
    if isinstance(error, FROM_THE_INPUTS):
        return Failure.PERMANENT
    return Failure.TRANSIENT


def is_permanent(error: BaseException) -> bool:
    return classify(error) is Failure.PERMANENT


def failure_record(permanent: bool) -> dict[str, bool] | None:
    """What a failed job's ``result`` holds."""
    return {PERMANENT_KEY: True} if permanent else None


def recorded_permanent(result: object) -> bool:
    """Whether a failed job's ``result`` says its failure repeats on a retry."""
    return isinstance(result, dict) and result.get(PERMANENT_KEY) is True
