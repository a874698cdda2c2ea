from calibench.errors import (
    CalibenchError,
    ConfigError,
    DatasetError,
    ModelError,
    RemoteCommandError,
    TargetError,
)
from calibench.server.jobs.failures import (
    Failure,
    classify,
    failure_record,
    is_permanent,
    recorded_permanent,
)


def test_failures_from_the_jobs_own_inputs_are_permanent() -> None:
    for error in (DatasetError("x"), ModelError("x"), ConfigError("x")):
        assert classify(error) is Failure.PERMANENT
    # The target's command refused the same inputs: its exit code says so.
    assert is_permanent(RemoteCommandError("bad dataset", DatasetError.exit_code))


def test_failures_from_outside_them_may_not_repeat() -> None:
    for error in (TargetError("gone"), CalibenchError("x"), RuntimeError("bug"), OSError(28, "")):
        assert classify(error) is Failure.TRANSIENT
    assert not is_permanent(RemoteCommandError("killed", 137))


def test_the_record_a_failed_job_keeps() -> None:
    assert recorded_permanent(failure_record(True))
    assert not recorded_permanent(failure_record(False))
    assert not recorded_permanent({"committed": ["inference"], "files": {}})
    assert not recorded_permanent(None)
