"""The project pages' forms: the text as typed (shown again with an error), and the typed
values the same service calls as the API's take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import BaseModel, BeforeValidator

from calibench.config import PLACEMENT_BUDGET_S, DropType, Method, Placement, Preset
from calibench.errors import WorkbenchError
from calibench.server.web import forms

BUDGET = "Timing budget"
BUDGET_MAX_S = 3600.0
"""The most a web calibration may spend timing placement: an hour. The command line takes
more; a page's job that times for longer is a typing slip, not a plan."""


def budget(value: Any) -> float:
    """The timing budget in seconds: empty means the default, else above 0 and at most
    :data:`BUDGET_MAX_S`."""
    found = forms.number(BUDGET, PLACEMENT_BUDGET_S)(value)
    assert found is not None  # a default is given
    if found <= 0:
        raise WorkbenchError(f"{BUDGET} must be above 0 seconds, not {str(value)[:20]!r}")
    if found > BUDGET_MAX_S:
        raise WorkbenchError(
            f"{BUDGET} must be at most {BUDGET_MAX_S:g} seconds (an hour), not "
            f"{str(value)[:20]!r}; the default, {PLACEMENT_BUDGET_S:g}, is usually enough"
        )
    return found


class NewProjectForm(BaseModel):
    """The new-project form's text fields (the model and dataset files come beside it)."""

    model_id: str | None = None
    model_name: str | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    dataset_type: str | None = None
    batch: str | None = "1"
    streams: str | None = "1"
    runtime: str | None = "onnxruntime"
    scale: str | None = None
    mean: str | None = None
    std: str | None = None
    color: str | None = None
    metric: str | None = None
    target: str | None = None

    def shown(self) -> dict[str, str]:
        """What the form shows again: the fields as typed."""
        return self.model_dump(exclude_none=True)


class Preprocessing(BaseModel):
    """The preprocessing fields of the new-project form; those left empty are left out."""

    scale: Annotated[float | None, BeforeValidator(forms.scale)] = None
    mean: Annotated[list[float] | None, BeforeValidator(forms.numbers("the mean"))] = None
    std: Annotated[list[float] | None, BeforeValidator(forms.numbers("the standard deviation"))] = (
        None
    )
    color: Annotated[str | None, BeforeValidator(forms.stripped)] = None


class NewProject(BaseModel):
    """The new-project form, typed: the arguments of ``create_project``. The preprocessing comes
    first, as the form's readers expect its errors first."""

    preprocess: Annotated[dict[str, Any] | None, BeforeValidator(lambda v: v or None)] = None
    model_id: Annotated[int, BeforeValidator(forms.whole("model"))]
    dataset_id: Annotated[int, BeforeValidator(forms.whole("dataset"))]
    batch: Annotated[int, BeforeValidator(forms.whole("batch size", 1))]
    streams: Annotated[int, BeforeValidator(forms.whole("number of streams", 1))]
    runtime: Annotated[str | None, BeforeValidator(forms.stripped)] = None
    metric: Annotated[str | None, BeforeValidator(forms.stripped)] = None
    target: Annotated[str | None, BeforeValidator(forms.stripped)] = None

    @classmethod
    def of(cls, form: NewProjectForm, model_id: str | None, dataset_id: str | None) -> NewProject:
        preprocess = Preprocessing.model_validate(
            {"scale": form.scale, "mean": form.mean, "std": form.std, "color": form.color}
        )
        return cls.model_validate(
            {
                "preprocess": preprocess.model_dump(exclude_none=True),
                "model_id": model_id,
                "dataset_id": dataset_id,
                "batch": form.batch,
                "streams": form.streams,
                "runtime": form.runtime,
                "metric": form.metric,
                "target": form.target,
            }
        )


class OptimizeForm(BaseModel):
    """The optimize form, as typed. It travels as typed through Import Calibration Dataset and
    back (:meth:`query`), and is shown again after a refusal."""

    dataset_id: str | None = None
    subset: str | None = "100"
    method: str = Method.DEFAULT.value
    max_drop: str | None = None
    drop_type: str = DropType.ABSOLUTE.value
    preset: str = Preset.PERFORMANCE.value
    keep_fp32: str | None = None
    placement: str = Placement.MEASURED.value
    placement_budget: str | None = f"{PLACEMENT_BUDGET_S:g}"
    batch: str | None = None
    streams: str | None = None
    runtime: str | None = None
    target: str | None = None
    action: str | None = None
    """``import``: the Import Calibration Dataset button, which keeps the form, not Calibrate."""

    def shown(self, accuracy_aware: bool = True) -> dict[str, str]:
        """What the form shows again: every field, as typed, but a method and a preset always
        one of the radios (AccuracyAware only where it is offered), so one is checked, and a
        placement always one of the choices."""
        shown = {name: value or "" for name, value in self.model_dump(exclude={"action"}).items()}
        methods = [m.value for m in Method if accuracy_aware or m is not Method.ACCURACY_AWARE]
        if shown["method"] not in methods:
            shown["method"] = Method.DEFAULT.value
        if shown["preset"] not in [p.value for p in Preset]:
            shown["preset"] = Preset.PERFORMANCE.value
        if shown["placement"] not in [p.value for p in Placement]:
            shown["placement"] = Placement.MEASURED.value
        return shown

    def query(self) -> str:
        """The fields typed so far as a query string (the dataset comes back chosen anew)."""
        fields = self.model_dump(exclude={"action", "dataset_id"}, exclude_none=True)
        return urlencode({k: v for k, v in fields.items() if v != ""})

    @classmethod
    def from_query(cls, query: Mapping[str, str], defaults: Mapping[str, str]) -> OptimizeForm:
        """The form from a page address: its fields where given, ``defaults`` elsewhere."""
        known = set(cls.model_fields) - {"action"}
        given = {k: v for k, v in query.items() if k in known}
        return cls.model_validate({**defaults, **given})


class Optimize(BaseModel):
    """The optimize form, typed: the arguments of ``optimize`` (method, preset, drop type and
    placement are checked where the calibration settings are made, once). The timing budget is
    read only for measured placement: by rule, its field is hidden and not used."""

    dataset_id: Annotated[int, BeforeValidator(forms.whole("calibration dataset"))]
    subset_percent: Annotated[float, BeforeValidator(forms.number("Subset Size", 100.0))]
    method: str
    max_drop: Annotated[float | None, BeforeValidator(forms.number("Maximum Accuracy Drop"))]
    preset: str
    batch: Annotated[int | None, BeforeValidator(forms.optional_whole("batch size"))]
    streams: Annotated[int | None, BeforeValidator(forms.optional_whole("number of streams"))]
    runtime: Annotated[str | None, BeforeValidator(forms.stripped)] = None
    drop_type: str
    keep_fp32: Annotated[list[str], BeforeValidator(forms.patterns)]
    placement: str
    placement_budget_s: Annotated[float, BeforeValidator(budget)]
    target: Annotated[str | None, BeforeValidator(forms.stripped)] = None

    @classmethod
    def of(cls, form: OptimizeForm) -> Optimize:
        by_rule = form.placement == Placement.RULE.value
        return cls.model_validate(
            {
                "dataset_id": form.dataset_id,
                "subset_percent": form.subset,
                "method": form.method,
                "max_drop": form.max_drop,
                "preset": form.preset,
                "batch": form.batch,
                "streams": form.streams,
                "runtime": form.runtime,
                "drop_type": form.drop_type,
                "keep_fp32": form.keep_fp32,
                "placement": form.placement,
                "placement_budget_s": None if by_rule else form.placement_budget,
                "target": form.target,
            }
        )
