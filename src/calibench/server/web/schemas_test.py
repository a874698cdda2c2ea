import pytest

from calibench.server.web.projects.schemas import OptimizeOptions


def test_a_view_reads_and_compares_like_its_json() -> None:
    view = OptimizeOptions(enabled=False, reason="the baseline has not finished")
    assert view["enabled"] is False and view.reason == "the baseline has not finished"
    assert view == {"enabled": False, "reason": "the baseline has not finished"}
    assert view != {"enabled": True, "reason": None}
    with pytest.raises(KeyError):
        view["model_config"]
