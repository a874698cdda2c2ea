import pytest

from calibench.calibration.distributed.options import RayShards, parse_executor
from calibench.errors import ConfigError


def test_executor_choices_and_refusals() -> None:
    assert parse_executor(None) is None and parse_executor("local") is None
    assert parse_executor("ray") == RayShards("auto")
    given = RayShards("127.0.0.1:6379", workers=4)
    assert parse_executor(given) is given
    with pytest.raises(ConfigError, match="executor must be"):
        parse_executor("dask")
    with pytest.raises(ConfigError, match="1 to 4096"):
        RayShards(workers=0)
    with pytest.raises(ConfigError, match="auto or HOST:PORT"):
        RayShards("head node:6379")


def test_nothing_imports_ray_until_a_cluster_is_asked_for() -> None:
    import subprocess
    import sys

    code = (
        "import sys, calibench, calibench.cli, calibench.cli.calibrate, calibench.api;"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
