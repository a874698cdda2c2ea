from __future__ import annotations

import stat
from pathlib import Path

import pytest

from calibench.errors import ConfigError
from calibench.targets.registry import JumpHost, Registry, Target


def test_targets_round_trip_privately(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.all() == []
    jump = JumpHost.parse("ops@bastion:2222")
    target = Target("edge-1", "10.0.0.5", "pi", key_file="/k", host_key="SHA256:x", jump=jump)
    registry.put(target)
    registry.put(Target("a", "h", "u"))
    assert [t.name for t in registry.all()] == ["a", "edge-1"]
    assert registry.get("edge-1") == target
    assert stat.S_IMODE(registry.path.stat().st_mode) == 0o600
    assert registry.remove("a").name == "a"
    assert [t.name for t in registry.all()] == ["edge-1"]


def test_refusals_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target name"):
        Target("bad name", "h", "u")
    with pytest.raises(ConfigError, match="port 0"):
        Target("t", "h", "u", port=0)
    with pytest.raises(ConfigError, match="no target named 'x'; known targets: none yet"):
        Registry(tmp_path).get("x")
    with pytest.raises(ConfigError, match="port is not a number"):
        JumpHost.parse("h:ssh")
    assert str(JumpHost.parse("bastion")) == "bastion:22"
