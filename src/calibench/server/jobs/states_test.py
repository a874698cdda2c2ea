from __future__ import annotations

import json

import pytest

from calibench.server.jobs.states import FINISHED, LIVE, JobState, ProgressEvent, Stage


def test_states_are_the_words_the_database_and_the_pages_hold() -> None:
    assert [s.value for s in JobState] == ["queued", "running", "done", "failed", "cancelled"]
    assert f"{JobState.DONE}" == str(JobState.DONE) == "done"
    assert JobState.DONE == "done" and "cancelled" in FINISHED
    assert json.dumps({"state": JobState.FAILED}) == '{"state": "failed"}'
    assert [s.finished for s in LIVE] == [False, False]
    assert all(s.finished for s in FINISHED)


def test_a_library_stage_with_its_detail_becomes_one_event() -> None:
    event = ProgressEvent.parse("accuracy-aware|drop 0.42", 3, 10)
    assert event == ProgressEvent(Stage.ACCURACY_AWARE, 3, 10, "drop 0.42")
    assert ProgressEvent.parse("bias correction", 1, 2).detail == ""
    assert ProgressEvent.from_json(json.loads(json.dumps(event.to_json()))) == event


def test_an_unknown_stage_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'ranking layers'"):
        ProgressEvent.parse("ranking layers|3", 1, 2)
