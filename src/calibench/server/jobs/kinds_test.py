from __future__ import annotations

import json
from typing import Any

import pytest

from calibench.config import CalibrationConfig, Method, Placement, Subset
from calibench.server.jobs.kinds import (
    BaselineJob,
    CalibrationJob,
    CalibrationNames,
    ImportJob,
    JobDescriptionError,
)
from calibench.server.jobs.registry import read_description
from calibench.server.jobs.states import Stage

BASELINE = BaselineJob(
    model="models/1/model.onnx",
    name="mobilenet",
    dataset="datasets/ds-0123456789ab",
    dataset_name="photos",
    batch=1,
    streams=2,
    seconds=3.0,
    preprocess={"size": [224, 224]},
    metric="topk",
)
CALIBRATION = CalibrationJob(
    model="models/1/model.onnx",
    dataset="datasets/ds-cal",
    validation="datasets/ds-val",
    config=CalibrationConfig(subset=Subset.parse("50%")),
    batch=1,
    streams=1,
    seconds=3.0,
    parent_inference={"performance": {"throughput": 10.0}},
    names=CalibrationNames("fp32", "fp32 INT8", "cal", "val"),
)
IMPORT = ImportJob(
    upload="uploads/upload-x/upload.zip",
    filename="photos.zip",
    name="photos",
    folder="ds-0123456789ab",
    dataset="datasets/ds-0123456789ab",
    memory_limit=2**30,
    dataset_id=7,
)


@pytest.mark.parametrize("job", [BASELINE, CALIBRATION, IMPORT], ids=lambda j: j.KIND)
def test_a_description_survives_its_trip_through_the_database(job: Any) -> None:
    stored = json.loads(json.dumps(job.to_json()))
    assert stored["version"] == job.VERSION
    assert type(job).from_json(stored) == job


def test_the_inputs_keep_the_keys_the_web_side_and_the_stored_rows_use() -> None:
    assert set(BASELINE.to_json()["inputs"]) == {
        "model", "name", "dataset", "dataset_name", "batch", "streams", "seconds",
        "preprocess", "metric", "target", "runtime",
    }  # fmt: skip
    calibration = CALIBRATION.to_json()["inputs"]
    assert set(calibration) == {
        "model", "dataset", "validation", "config", "batch", "streams", "seconds",
        "preprocess", "metric", "parent_inference", "names", "target", "runtime",
    }  # fmt: skip
    assert calibration["config"] == CALIBRATION.config.to_dict()
    assert calibration["names"] == {
        "fp32": "fp32", "int8": "fp32 INT8", "calibration": "cal", "validation": "val",
    }  # fmt: skip
    assert set(IMPORT.to_json()["inputs"]) == {
        "upload", "filename", "name", "kind", "folder", "dataset", "memory_limit", "dataset_id",
    }  # fmt: skip


def test_a_row_from_before_versions_reads_as_version_one() -> None:
    inputs = {k: v for k, v in BASELINE.to_json()["inputs"].items() if k != "runtime"}
    assert BaselineJob.from_json({"inputs": inputs}) == BASELINE


@pytest.mark.parametrize("job", [BASELINE, CALIBRATION], ids=lambda j: j.KIND)
def test_a_version_one_row_ran_on_onnxruntime(job: Any) -> None:
    assert type(job).VERSION == 2
    inputs = {k: v for k, v in job.to_json()["inputs"].items() if k != "runtime"}
    old = type(job).from_json({"version": 1, "inputs": inputs})
    assert old.runtime == "onnxruntime" and old == job
    openvino = type(job)(**{**job.__dict__, "runtime": "openvino"})
    assert type(job).from_json(json.loads(json.dumps(openvino.to_json()))).runtime == "openvino"
    with pytest.raises(JobDescriptionError, match=r"version 3\b.*reads versions 1 and 2 only"):
        type(job).from_json({"version": 3, "inputs": inputs})


def test_an_unknown_version_is_refused_in_words() -> None:
    stored = {**IMPORT.to_json(), "version": 2}
    with pytest.raises(JobDescriptionError, match=r"version 2\b.*reads version 1 only"):
        ImportJob.from_json(stored)


def test_missing_and_unknown_inputs_are_named() -> None:
    inputs = {**BASELINE.to_json()["inputs"], "colour": "red"}
    del inputs["streams"]
    with pytest.raises(JobDescriptionError, match=r"unknown 'colour'; missing 'streams'"):
        BaselineJob.from_json({"version": 1, "inputs": inputs})


def test_the_stages_follow_the_method() -> None:
    assert BASELINE.stages() == (Stage.ACCURACY, Stage.PERFORMANCE, Stage.LAYERS)
    assert Stage.ACCURACY_AWARE not in CALIBRATION.stages()
    aware = CalibrationConfig(method=Method.ACCURACY_AWARE, max_drop=1.0)
    stages = CalibrationJob(**{**CALIBRATION.__dict__, "config": aware}).stages()
    assert stages[4] == Stage.ACCURACY_AWARE and stages[-1] == Stage.COMPARISON
    assert Stage.PLACEMENT in CALIBRATION.stages()
    rule = CalibrationConfig(placement=Placement.RULE)
    by_rule = CalibrationJob(**{**CALIBRATION.__dict__, "config": rule})
    assert Stage.PLACEMENT not in by_rule.stages()


def test_a_description_names_what_it_reads_from_the_workspace() -> None:
    assert BASELINE.input_paths() == ("models/1/model.onnx", "datasets/ds-0123456789ab")
    assert CALIBRATION.input_paths() == (
        "models/1/model.onnx",
        "datasets/ds-cal",
        "datasets/ds-val",
    )
    assert IMPORT.input_paths() == ("uploads/upload-x/upload.zip",)


def test_a_row_from_before_targets_runs_here() -> None:
    inputs = {k: v for k, v in CALIBRATION.to_json()["inputs"].items() if k != "target"}
    old = CalibrationJob.from_json({"version": 1, "inputs": inputs})
    assert old.target is None and old == CALIBRATION


def test_a_job_on_a_target_is_framed_by_the_upload_and_the_download() -> None:
    remote = CalibrationJob(**{**CALIBRATION.__dict__, "target": "edge-1"})
    assert remote.stages() == (
        Stage.PREPARING_ASSETS, Stage.UPLOADING, *CALIBRATION.stages(), Stage.DOWNLOADING,
    )  # fmt: skip
    assert CalibrationJob.from_json(json.loads(json.dumps(remote.to_json()))) == remote


def test_a_job_on_a_target_carries_its_placement_there() -> None:
    """The remote worker reads the stored description as a local worker does: the placement
    and what it times reach the target's calibration."""
    config = CalibrationConfig(placement=Placement.RULE, placement_budget_s=12.0, placement_batch=4)
    remote = CalibrationJob(**{**CALIBRATION.__dict__, "config": config, "target": "edge-1"})
    there = read_description(CalibrationJob.KIND, json.loads(json.dumps(remote.to_json())))
    assert isinstance(there, CalibrationJob) and there.config == config
