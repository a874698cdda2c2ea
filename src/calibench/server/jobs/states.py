"""What a job is doing, as data: its state, the stage it is in, and the progress it reports.

The values are the words stored in the database and shown on the pages, so they never change;
a new state or stage is a new member."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from calibench.progress import split_detail


class _Words(str, Enum):
    """A member is its stored word: in f-strings, in logs, in the database."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)


class JobState(_Words):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


LIVE = (JobState.QUEUED, JobState.RUNNING)
"""A live job reads its inputs by path: they stay until it has ended."""
FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
ENDED_WITHOUT_RESULT = (JobState.FAILED, JobState.CANCELLED)
"""The states a job may be retried from."""


class Stage(_Words):
    """The stages jobs go through, in the words the progress bars show."""

    ACCURACY = "accuracy"
    PERFORMANCE = "performance"
    LAYERS = "layers"
    STATISTICS = "statistics"
    QUANTIZATION = "quantization"
    PLACEMENT = "placement timing"
    BIAS_CORRECTION = "bias correction"
    ACCURACY_AWARE = "accuracy-aware"
    INFERENCE = "inference"
    COMPARISON = "comparison"
    UNPACKING = "unpacking"
    CHECKING_SAMPLES = "checking samples"
    SUMMARY = "summary"
    PREPARING_ASSETS = "preparing assets"
    UPLOADING = "uploading"
    DOWNLOADING = "downloading results"
    """A job on a remote target: its inputs packed, sent (bytes), its result files fetched."""
    CHECKING_MODELS = "checking both models"
    TIMING = "timing side by side"
    """Two projects' models timed in alternating windows (Compare's side-by-side timing)."""
    WAITING = "waiting for the machine"
    """Shown instead of the stage while a job waits for another job's speed measurement."""


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` steps of ``stage``; ``detail`` says more (e.g. the current drop of
    an AccuracyAware search) where a stage has more to say."""

    stage: Stage
    done: int
    total: int
    detail: str = ""

    @classmethod
    def parse(cls, text: str, done: int, total: int) -> ProgressEvent:
        """An event from a library's progress callback, whose stage may carry a detail
        (the CLI draws the detail beside the bar)."""
        name, detail = split_detail(text)
        try:
            stage = Stage(name)
        except ValueError:
            raise ValueError(f"unknown job stage {name!r}") from None
        return cls(stage, int(done), int(total), detail)

    def to_json(self) -> dict[str, Any]:
        """The event as it travels from a remote worker (one JSON object per event)."""
        return {
            "stage": self.stage.value,
            "done": self.done,
            "total": self.total,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProgressEvent:
        return cls(
            Stage(data["stage"]), int(data["done"]), int(data["total"]), str(data.get("detail", ""))
        )


@dataclass(frozen=True)
class Waiting:
    """The job starts (``on``) or stops waiting for the machine."""

    on: bool
