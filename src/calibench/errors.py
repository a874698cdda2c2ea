"""The errors calibench raises on purpose.

Every message names the thing at fault (model, layer, file) and says what the user can do. The CLI
prints ``str(error)`` on one line and exits with ``exit_code``; a traceback appears only with
``--debug``.
"""

from __future__ import annotations


class CalibenchError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = 1


class ModelError(CalibenchError):
    """The model file cannot be read, or is broken."""

    exit_code = 2


class NotEligibleError(CalibenchError):
    """The model can be read but INT8 calibration refuses it (not FP32, NLP, derived)."""

    exit_code = 3


class DatasetError(CalibenchError):
    """The dataset cannot be read or does not fit the model's inputs."""

    exit_code = 4


class ConfigError(CalibenchError):
    """An option is out of range or contradicts another."""

    exit_code = 5


class KernelCheckError(CalibenchError):
    """``--strict``: the integer kernels do not compute what the model was calibrated for."""

    exit_code = 6


class TargetError(CalibenchError):
    """A remote target cannot be reached, refuses the login, or failed the work it was given
    (the message says which target and at which stage)."""

    exit_code = 7


class HostKeyError(TargetError):
    """The target's SSH host key is not the one the user accepted (unknown, or changed): nothing
    was sent to it. Its own code, so that a script can tell a security refusal apart. Besides
    its words it says, as data, which machine (``"target"`` or ``"jump host"``), the fingerprint
    presented, and the one stored (None: the key is not known yet)."""

    exit_code = 8

    def __init__(self, message: str, which: str, presented: str, stored: str | None = None) -> None:
        super().__init__(message)
        self.which = which
        self.presented = presented
        self.stored = stored

    @property
    def unknown(self) -> bool:
        return self.stored is None


class RemoteCommandError(TargetError):
    """The calibench command on the target refused its work (a bad dataset, a refused model):
    the target's own message and exit code, passed through."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class WorkbenchError(CalibenchError):
    """A request the web workbench refuses: the words to show and the HTTP status to answer
    with (the exception handlers turn it into an error page or ``{"detail": ...}``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
