from pathlib import Path

import pytest

from calibench.errors import HostKeyError, WorkbenchError
from calibench.server.web.targets.service import HostKeyUnknown, _refusal, target_choice
from calibench.targets.registry import Registry, Target

KEY = "SHA256:MmMKWYTxTKU5STBsoV5h7Ba3GzvHZGUJIl4Mn2o6ymk"


def test_an_unknown_host_key_becomes_a_question_with_its_fingerprint() -> None:
    unknown = HostKeyError("the host key of target edge is not known yet", "target", KEY)
    question = _refusal(unknown)
    assert isinstance(question, HostKeyUnknown)
    assert (question.status, question.fingerprint, question.which) == (409, KEY, "target")
    jump = _refusal(HostKeyError("the jump host's key is not known yet", "jump host", KEY))
    assert isinstance(jump, HostKeyUnknown) and jump.which == "jump host"
    # A key other than the one accepted or stored is a refusal, not a question.
    other = _refusal(HostKeyError("target edge presented another key", "target", "X", KEY))
    assert not isinstance(other, HostKeyUnknown) and other.status == 409


def test_a_project_runs_here_or_on_a_registered_target(tmp_path: Path) -> None:
    assert target_choice(tmp_path, None) is None
    assert target_choice(tmp_path, " this machine ") is None
    Registry(tmp_path).put(Target("edge", "h", "u", host_key=KEY))
    assert target_choice(tmp_path, "edge") == "edge"
    with pytest.raises(WorkbenchError, match="no target named 'gone'; known targets: edge"):
        target_choice(tmp_path, "gone")
