"""The workbench's forms and pages as a person meets them (issue 14, findings 3, 4, 6, 8-10):
the Optimize INT8 form kept across Import Calibration Dataset and across refusals, the
confirmation after an import, breadcrumbs that keep the project, the calibration defaults
(another dataset than the validation set, the subset's sample count, the warning below 100),
model × dataset compatibility refused at creation, no Retry for a failure that would repeat,
human times, the preprocessing shown, the favicon and the help pages.

Pages are read as HTML through the app (TestClient); jobs run in real worker processes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from calibench.server.app import create_app
from calibench.server.settings import ServerSettings
from tests.test_server_api import (
    BASE,
    csrf_cookie,
    ok,
    post_dataset,
    post_model,
    refused,
    wait_done,
    wait_job,
)


@dataclass
class Forms:
    client: TestClient
    model: dict[str, Any]
    val: dict[str, Any]
    plain: dict[str, Any]
    project: dict[str, Any]
    """On ``val``, its baseline done."""
    plain_project: dict[str, Any]
    """On ``plain`` (not annotated), its baseline done."""
    token: str


@pytest.fixture(scope="module")
def forms(
    tmp_path_factory: pytest.TempPathFactory, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> Iterator[Forms]:
    workspace = tmp_path_factory.mktemp("forms") / "ws"
    app = create_app(ServerSettings(workspace=workspace, perf_seconds=0.1))
    with TestClient(app, base_url=BASE) as client:
        model = ok(post_model(client, fashion_cnn, name="Fashion CNN"), 201)
        val = ok(post_dataset(client, fashion_archives["val"], "fashion test"), 201)
        plain = ok(post_dataset(client, fashion_archives["plain"], "photos"), 201)
        project = ok(
            client.post("/api/projects", json={"model_id": model["id"], "dataset_id": val["id"]}),
            201,
        )
        on_plain = ok(
            client.post("/api/projects", json={"model_id": model["id"], "dataset_id": plain["id"]}),
            201,
        )
        wait_done(client, project["job"]["id"])
        wait_done(client, on_plain["job"]["id"])
        yield Forms(client, model, val, plain, project, on_plain, csrf_cookie(client))


def tag(html: str, element_id: str) -> str:
    """The opening tag of the element with this id."""
    found = re.search(rf'<[^<>]*\bid="{re.escape(element_id)}"[^<>]*>', html)
    assert found, f"no element #{element_id}"
    return found.group(0)


def value(html: str, element_id: str) -> str:
    found = re.search(r'\bvalue="([^"]*)"', tag(html, element_id))
    assert found, tag(html, element_id)
    return found.group(1)


def checked(html: str, element_id: str) -> bool:
    return re.search(r"\schecked\b", tag(html, element_id)) is not None


def selected_option(html: str, select_id: str) -> str:
    """The value of the selected option of a select."""
    start = html.index(tag(html, select_id))
    body = html[start : html.index("</select>", start)]
    found = re.search(r'<option value="([^"]*)"[^>]*\sselected\b', body)
    assert found, body
    return found.group(1)


def text_of(html: str, element_id: str) -> str:
    start = html.index(tag(html, element_id))
    name = re.match(r"<(\w+)", tag(html, element_id))
    assert name
    end = html.index(f"</{name.group(1)}>", start)
    return unescape(re.sub(r"<[^>]+>", "", html[start:end])).strip()


def optimize_url(forms: Forms, project: dict[str, Any] | None = None) -> str:
    return f"/projects/{(project or forms.project)['id']}/optimize"


# finding 3: the form kept across the import and refusals -----------------------------------------


def test_import_calibration_dataset_keeps_the_form_and_confirms(
    forms: Forms, fashion_archives: dict[str, Path]
) -> None:
    client, url = forms.client, optimize_url(forms)
    typed = {
        "csrf_token": forms.token,
        "dataset_id": str(forms.val["id"]),
        "subset": "50",
        "method": "accuracy-aware",
        "max_drop": "0.5",
        "drop_type": "relative",
        "preset": "mixed",
        "keep_fp32": "/conv1/Conv",
        "batch": "2",
        "streams": "3",
        "action": "import",
    }
    going = client.post(url, data=typed, follow_redirects=False)
    assert going.status_code == 303, going.text
    address = urlsplit(going.headers["location"])
    assert address.path == "/datasets/import"
    back = parse_qs(address.query)["next"][0]
    assert "csrf" not in back and "action" not in back

    page = client.get(going.headers["location"]).text
    assert "Import Calibration Dataset" in page
    crumbs = text_of(page, "import-crumbs")
    assert "Fashion CNN × fashion test" in crumbs and "Optimize INT8" in crumbs
    assert 'href="' + back.replace("&", "&amp;") + '" id="back"' in page

    upload = fashion_archives["cal"].read_bytes()
    done = client.post(
        "/datasets/import",
        data={"csrf_token": forms.token, "next": back, "name": "calibration 50"},
        files={"file": ("cal.zip", upload)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert re.match(rf"{url}\?dataset=\d+&imported=\d+&", location), location
    page = client.get(location).text
    new_id = parse_qs(urlsplit(location).query)["dataset"][0]
    assert selected_option(page, "calibration-dataset") == new_id
    assert text_of(page, "imported").startswith(
        "Imported 'calibration 50': 100 samples, annotated."
    )
    assert value(page, "subset") == "50"
    assert checked(page, "method-aa") and not checked(page, "method-default")
    assert value(page, "max-drop") == "0.5"
    assert 'value="relative" selected' in page
    assert checked(page, "preset-mixed") and not checked(page, "preset-performance")
    assert value(page, "keep_fp32") == "/conv1/Conv"
    assert 'name="batch" min="1" max="1024" value="2"' in page
    assert 'name="streams" min="1" max="64" value="3"' in page
    assert "= 50 samples of 100" in text_of(page, "subset-count")


def test_an_import_from_the_datasets_page_confirms_on_the_datasets_page(
    forms: Forms, fashion_archives: dict[str, Path]
) -> None:
    done = forms.client.post(
        "/datasets/import",
        data={"csrf_token": forms.token, "name": "plain again"},
        files={"file": ("plain.zip", fashion_archives["plain"].read_bytes())},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("?imported=1")
    page = forms.client.get(done.headers["location"]).text
    assert text_of(page, "imported") == "Imported 'plain again': 30 samples, not annotated."
    plain_crumbs = forms.client.get("/datasets/import").text
    assert "Datasets</a> › Import" in plain_crumbs


def test_a_refused_submission_keeps_what_was_typed_and_a_method_checked(forms: Forms) -> None:
    client = forms.client
    # AccuracyAware on a project whose dataset has no annotations: refused, Default checked.
    body = {
        "csrf_token": forms.token,
        "dataset_id": str(forms.val["id"]),
        "subset": "20",
        "method": "accuracy-aware",
        "max_drop": "1",
        "preset": "mixed",
        "batch": "4",
    }
    response = client.post(optimize_url(forms, forms.plain_project), data=body)
    assert response.status_code == 400
    page = response.text
    assert "has no annotations" in text_of(page, "form-error")
    assert checked(page, "method-default") and not checked(page, "method-aa")
    assert checked(page, "preset-mixed") and value(page, "subset") == "20"
    # A bad Subset Size where AccuracyAware is offered: every choice stays as it was.
    response = client.post(optimize_url(forms), data={**body, "subset": "abc"})
    assert response.status_code == 400
    page = response.text
    assert "Subset Size" in text_of(page, "form-error")
    assert checked(page, "method-aa") and checked(page, "preset-mixed")
    assert value(page, "subset") == "abc" and selected_option(page, "calibration-dataset") == str(
        forms.val["id"]
    )


def _default_on(forms: Forms, **fields: str) -> dict[str, str]:
    """The optimize form as posted: Default on 20% of the validation set, and ``fields``."""
    form = {"csrf_token": forms.token, "dataset_id": str(forms.val["id"]), "subset": "20"}
    return {**form, "method": "default", "preset": "performance", **fields}


def test_a_bad_timing_budget_is_refused_and_the_placement_kept(forms: Forms) -> None:
    client = forms.client
    body = _default_on(forms, placement="measured", placement_budget="0")
    before = len(ok(client.get("/api/projects")))
    page = client.post(optimize_url(forms), data=body)
    assert page.status_code == 400
    assert text_of(page.text, "form-error") == "Timing budget must be above 0 seconds, not '0'"
    assert selected_option(page.text, "placement") == "measured"
    assert value(page.text, "placement-budget") == "0"
    assert "hidden" not in tag(page.text, "placement-budget-field")
    # By rule, another refusal keeps the choice, and the budget's field stays hidden.
    again = client.post(optimize_url(forms), data={**body, "placement": "rule", "subset": "x"})
    assert again.status_code == 400 and "Subset Size" in text_of(again.text, "form-error")
    assert selected_option(again.text, "placement") == "rule"
    assert "hidden" in tag(again.text, "placement-budget-field")
    assert len(ok(client.get("/api/projects"))) == before
    fresh = client.get(optimize_url(forms)).text
    assert selected_option(fresh, "placement") == "measured"
    assert value(fresh, "placement-budget") == "30"


def test_an_int8_project_placed_by_rule_is_untimed_and_says_so(forms: Forms) -> None:
    client = forms.client
    body = _default_on(forms, placement="rule", placement_budget="")  # hidden by rule: not read
    response = client.post(optimize_url(forms), data=body, follow_redirects=False)
    assert response.status_code == 303, response.text
    child_id = int(response.headers["location"].rsplit("/", 1)[1])
    child = ok(client.get(f"/api/projects/{child_id}"))
    assert "placement timing" not in [s["name"] for s in child["job"]["stages"]]
    wait_done(client, child["job"]["id"])
    child = ok(client.get(f"/api/projects/{child_id}"))
    assert child["calibration"]["config"]["placement"] == "rule"
    assert child["recipe"]["placement"] == "placement by rule"
    assert ", by rule, 20% of fashion test" in child["model"]["name"]
    report = child["calibration"]["report"]
    assert "placement timing" not in report["seconds"]
    assert not [n for n in report["notes"] if n.startswith("placement")], report["notes"]
    # By rule, every Conv and Gemm runs in INT8: none was kept FP32 for speed.
    layers = ok(client.get(f"/api/models/{child['model']['id']}/layers"))
    convs = [r for r in layers if r["op_type"] in ("Conv", "Gemm")]
    assert convs and all(r["precision"] == "INT8" for r in convs), convs
    page = client.get(f"/projects/{child_id}").text
    assert text_of(page, "placement") == "placement by rule"
    assert "performance preset, placement by rule, 20% of fashion test" in text_of(page, "recipe")


# finding 4: calibration defaults ------------------------------------------------------------------


def test_the_form_starts_on_another_dataset_than_the_validation_set(forms: Forms) -> None:
    page = forms.client.get(optimize_url(forms)).text
    chosen = selected_option(page, "calibration-dataset")
    assert chosen != str(forms.val["id"])
    assert "hidden" in tag(page, "same-as-validation")
    # The project's own dataset, when picked, is named and warned about.
    own = forms.client.get(f"{optimize_url(forms)}?dataset={forms.val['id']}").text
    assert "hidden" not in tag(own, "same-as-validation")
    assert "fashion test (classification, 200 samples): the project's validation set" in own
    assert "300–1000 images" in own and "3–5 %" in own


def test_the_subset_size_in_samples_and_the_warning_below_a_hundred(forms: Forms) -> None:
    url = f"{optimize_url(forms)}?dataset={forms.val['id']}"
    plenty = forms.client.get(f"{url}&subset=100").text
    assert text_of(plenty, "subset-count") == "= 200 samples of 200"
    assert 'class="hint"' in tag(plenty, "subset-count")
    few = forms.client.get(f"{url}&subset=2.5").text
    note = text_of(few, "subset-count")
    assert note.startswith("= 5 samples of 200. Fewer than 100 samples give noisy ranges")
    assert 'class="hint few"' in tag(few, "subset-count")


# finding 6: compatibility at creation, no Retry for what would repeat ----------------------------


def test_a_dataset_that_cannot_feed_the_model_is_refused_at_creation(
    forms: Forms, fashion_archives: dict[str, Path], tmp_path: Path
) -> None:
    client = forms.client
    nlp = ok(post_model(client, fashion_archives["nlp"], name="tiny nlp"), 201)
    before = len(ok(client.get("/api/projects")))
    body = {
        "csrf_token": forms.token,
        "model_id": str(nlp["id"]),
        "dataset_id": str(forms.val["id"]),
        "batch": "1",
        "streams": "1",
    }
    response = client.post("/projects/new", data=body)
    assert response.status_code == 400
    error = text_of(response.text, "form-error")
    assert "'tiny nlp' takes input_ids, attention_mask as token ids: an NLP model" in error
    assert "'fashion test' holds images" in error and ".npz" in error
    assert len(ok(client.get("/api/projects"))) == before
    # A tensor dataset whose array does not fit: refused as a calibration dataset too.
    np.savez(tmp_path / "wide.npz", input=np.zeros((4, 1, 32, 32), np.float32))
    wide = ok(post_dataset(client, tmp_path / "wide.npz", "wide tensors"), 201)
    body = {"model_id": forms.model["id"], "dataset_id": wide["id"]}
    detail = refused(client.post("/api/projects", json=body), 400)
    assert "holds samples of shape [1, 32, 32]" in detail
    calibrate = f"/api/projects/{forms.project['id']}/optimize"
    detail = refused(client.post(calibrate, json={"dataset_id": wide["id"]}), 400)
    assert detail.startswith("the calibration dataset 'wide tensors' does not fit 'Fashion CNN'")
    page = client.get(optimize_url(forms)).text
    assert "wide tensors (tensors, 4 samples): does not fit the model" in page
    assert "holds samples of shape [1, 32, 32]" in text_of(page, "unfit")


def test_a_failure_that_would_repeat_offers_no_retry(forms: Forms, tmp_path: Path) -> None:
    client = forms.client
    np.savez(tmp_path / "nan.npz", input=np.full((3, 1, 28, 28), np.nan, np.float32))
    poisoned = ok(post_dataset(client, tmp_path / "nan.npz", "poisoned"), 201)
    project = ok(
        client.post(
            "/api/projects", json={"model_id": forms.model["id"], "dataset_id": poisoned["id"]}
        ),
        201,
    )
    job = wait_job(client, project["job"]["id"])
    assert job["state"] == "failed" and "NaN" in job["message"]
    assert job["permanent"] is True and job["retryable"] is False
    for url in (f"/projects/{project['id']}", f"/jobs/{job['id']}"):
        page = client.get(url).text
        assert "/retry" not in page, url
        assert "a retry would use unchanged" in text_of(page, "no-retry")


def test_a_cancelled_job_can_be_retried_and_its_stage_is_not_shown_running(forms: Forms) -> None:
    client = forms.client
    child = ok(
        client.post(
            f"/api/projects/{forms.project['id']}/optimize", json={"dataset_id": forms.val["id"]}
        ),
        201,
    )
    job_id = child["job"]["id"]
    ok(client.post(f"/api/jobs/{job_id}/cancel"))
    job = wait_job(client, job_id)
    assert job["state"] == "cancelled" and job["retryable"] is True and not job["permanent"]
    page = client.get(f"/projects/{child['id']}").text
    assert f'/jobs/{job_id}/retry"' in page and 'id="no-retry"' not in page
    assert 'class="current"' not in page


# findings 8-10: pages, words, help ----------------------------------------------------------------


def test_the_job_page_names_its_project_and_reads_its_times(forms: Forms) -> None:
    job_id = forms.project["job"]["id"]
    page = forms.client.get(f"/jobs/{job_id}").text
    crumbs = page[page.index('class="crumbs"') : page.index("</p>", page.index('class="crumbs"'))]
    assert "Fashion CNN × fashion test" in crumbs and "project " not in crumbs
    table = page[page.index('<table class="kv">') : page.index("</table>")]
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", table), table  # no raw ISO time
    assert re.search(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d UTC", table)
    assert "<th>Took</th>" in table
    log = text_of(page, "job-log")
    assert "accuracy top1 " in log and "{'" not in log  # no Python dict dump


def test_the_project_page_shows_the_preprocessing_used(forms: Forms) -> None:
    page = forms.client.get(f"/projects/{forms.project['id']}").text
    assert text_of(page, "preprocessing") == (
        "Preprocessing used: resize to 28×28, grayscale, pixels × 1/255, no mean or std, NCHW."
    )


def test_the_new_project_form_placeholders_are_not_imagenet_defaults(forms: Forms) -> None:
    page = forms.client.get("/projects/new").text
    assert 'placeholder="0.485' not in page and 'placeholder="0.229' not in page
    assert 'placeholder="empty: 0 (none)"' in tag(page, "mean")
    assert 'placeholder="empty: 1 (none)"' in tag(page, "std")


def test_the_target_list_says_why_it_is_disabled(forms: Forms) -> None:
    for url in ("/projects/new", optimize_url(forms)):
        page = forms.client.get(url).text
        assert "disabled" in tag(page, "target"), url
        assert "add a target on the Targets page first" in text_of(page, "target-why")
        assert '<input type="hidden" name="target" value="this machine">' in page


def test_favicon_and_help_pages(forms: Forms) -> None:
    client = forms.client
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert client.get("/static/favicon.svg").status_code == 200
    help_page = client.get("/help").text
    anchors = set(re.findall(r'<h[1-6] id="([^"]+)"', help_page))
    pages = [
        "/",
        "/datasets",
        "/targets",
        "/projects/new",
        optimize_url(forms),
        f"/projects/{forms.project['id']}",
        f"/jobs/{forms.project['job']['id']}",
        "/datasets/import",
    ]
    for url in pages:
        page = client.get(url).text
        assert '<link rel="icon" href="/static/favicon.svg"' in page, url
        anchor = re.search(r'href="/help#([^"]+)" id="help-link"', page)
        assert anchor, url
        assert anchor.group(1) in anchors, (url, anchor.group(1))
    assert "choosing-the-calibration-data" in anchors
    assert "<script" not in help_page.split('id="readme"')[1]  # the README's HTML is escaped
