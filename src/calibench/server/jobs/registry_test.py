from __future__ import annotations

import pytest

from calibench.server.jobs.kinds import JobDescriptionError
from calibench.server.jobs.registry import KINDS, describe, kind_named


def test_the_registry_is_a_constant_keyed_by_each_description_s_kind() -> None:
    assert sorted(KINDS) == ["baseline", "calibration", "import", "side-by-side timing"]
    assert all(name == kind.description.KIND for name, kind in KINDS.items())
    with pytest.raises(TypeError):
        KINDS["other"] = KINDS["baseline"]  # type: ignore[index]


def test_an_unknown_kind_is_refused_in_words() -> None:
    with pytest.raises(JobDescriptionError, match="unknown job kind 'train'.*baseline"):
        kind_named("train")
    with pytest.raises(JobDescriptionError, match="missing 'batch', 'dataset', .*'model'"):
        describe("baseline", {})
