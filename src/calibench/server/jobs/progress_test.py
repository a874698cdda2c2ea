from __future__ import annotations

from calibench.server.jobs.progress import StageBoard
from calibench.server.jobs.states import ProgressEvent, Stage


def test_a_later_stage_finishes_the_earlier_ones() -> None:
    board = StageBoard(["statistics", "quantization", "inference"])
    assert board.apply(ProgressEvent(Stage.STATISTICS, 3, 10))
    assert not board.apply(ProgressEvent(Stage.STATISTICS, 4, 10))
    assert board.apply(ProgressEvent(Stage.INFERENCE, 1, 5))
    assert board.stage == "inference"
    assert board.to_db() == [
        {"name": "statistics", "done": 10, "total": 10},
        {"name": "quantization", "done": 1, "total": 1},
        {"name": "inference", "done": 1, "total": 5},
    ]


def test_a_stage_the_job_did_not_announce_gets_its_bar() -> None:
    board = StageBoard.from_db([{"name": "accuracy", "done": 0, "total": 0}])
    board.apply(ProgressEvent(Stage.LAYERS, 0, 1))
    assert [s["name"] for s in board.to_db()] == ["accuracy", "layers"]
    assert all(s["done"] == s["total"] == 1 for s in board.completed())
