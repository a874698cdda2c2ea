"""The whole workbench flow in a real browser: headless Chromium (Debian's), driven by Playwright.

Import a model and a dataset → baseline → Optimize INT8 with the Default method (importing the
calibration dataset on the way) and with AccuracyAware → progress → the new projects → model page
with U8 layers → compare page with both models; plus the refusals a person meets on the pages.
Screenshots of the main pages go to build/screenshots/ (the ones in docs/ come from here).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.server_helpers import Server, free_port

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("build/screenshots")
JOB_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``calibench serve`` as a user starts it, on a free port and a fresh workspace."""
    workspace = tmp_path_factory.mktemp("workbench")
    running = Server(workspace, free_port(), [], workspace / "server.log")
    try:
        running.start().close()
        yield running.url
    finally:
        running.stop()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install -y chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        yield tab
        browser.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _select(page: Page, selector: str, starts_with: str) -> None:
    """Choose the option whose text starts with ``starts_with``."""
    for option in page.locator(f"{selector} option").all():
        if option.inner_text().startswith(starts_with):
            page.select_option(selector, value=option.get_attribute("value"))
            return
    raise AssertionError(f"no option {starts_with!r} in {selector}")


def _wait_ready(page: Page) -> None:
    """The project page reloads itself when its job ends; wait for that end."""
    page.wait_for_selector(
        "#status .job[data-state=done], #status .job[data-state=failed]", timeout=JOB_TIMEOUT_MS
    )
    state = page.get_attribute("#status .job", "data-state")
    assert state == "done", page.inner_text("#status")


def _create_project(
    page: Page, model: Path | None, dataset: Path | None, model_name: str, dataset_name: str
) -> None:
    page.goto("/")
    page.click("#create-project")
    if model is not None:
        page.set_input_files("#model_file", str(model))
        page.fill("#model_name", model_name)
    else:
        _select(page, "#model_id", model_name)
    if dataset is not None:
        page.set_input_files("#dataset_file", str(dataset))
        page.fill("#dataset_name", dataset_name)
    else:
        _select(page, "#dataset_id", dataset_name)
    page.click("#create")
    page.wait_for_url(re.compile(r"/projects/\d+$"))


def _optimize(page: Page, project_url: str) -> None:
    page.goto(project_url)
    page.click("#tab-perform")
    expect(page.locator("#optimize-button")).to_be_disabled()
    page.check("#int8")
    expect(page.locator("#optimize-button")).to_be_enabled()
    page.click("#optimize-button")
    page.wait_for_url(re.compile(r"/projects/\d+/optimize"))


def test_whole_flow(page: Page, fashion_cnn: Path, fashion_archives: dict[str, Path]) -> None:
    # 1. Projects page → create a project from an uploaded model and dataset archive.
    page.goto("/")
    expect(page.locator(".empty")).to_contain_text("No project yet")
    _create_project(page, fashion_cnn, fashion_archives["val"], "Fashion CNN", "fashion test")
    expect(page.locator("h1")).to_contain_text("Fashion CNN")
    expect(page.locator("#status")).to_contain_text("Baseline inference")
    _wait_ready(page)
    fp32_url = page.url
    expect(page.locator(".cards")).to_contain_text("top1")
    expect(page.locator(".cards")).to_contain_text("throughput")
    _shot(page, "project-fp32")

    # 2. Perform → Optimize: the INT8 checkbox enables Optimize.
    _optimize(page, fp32_url)
    expect(page.locator("h1")).to_contain_text("Optimize INT8")
    expect(page.locator("#subset")).to_have_value("100")
    expect(page.locator(".hint").first).to_contain_text("avoids overfitting")

    # 3. Import Calibration Dataset, then back to the Optimize INT8 page with it selected.
    page.click("#import-calibration")
    expect(page.locator("h1")).to_contain_text("Import Calibration Dataset")
    page.set_input_files("#dataset-file", str(fashion_archives["cal"]))
    page.fill("#dataset-name", "fashion calibration")
    page.click("#import")
    page.wait_for_url(re.compile(r"/optimize\?dataset=\d+"))
    selected = page.locator("#calibration-dataset option:checked")
    expect(selected).to_contain_text("fashion calibration")
    page.click("#advanced summary")
    expect(page.locator("#preset-performance")).to_be_checked()
    expect(page.locator("#advanced")).to_contain_text("asymmetric activations")
    expect(page.locator("#max-drop-field")).to_be_hidden()
    _shot(page, "optimize-int8")

    # 4. Default method: the INT8 project appears at once and shows its stages.
    page.fill("#subset", "50")
    page.click("#calibrate")
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    assert page.url != fp32_url
    expect(page.locator("#status")).to_contain_text("INT8 calibration")
    expect(page.locator("#status .stages")).to_contain_text("statistics")
    expect(page.locator("#status .stages")).to_contain_text("bias correction")
    with contextlib.suppress(PlaywrightTimeout):  # for the picture only: the job may be quick
        page.wait_for_selector("#status .job[data-state=running] li.current", timeout=10_000)
    _shot(page, "project-int8-running")
    _wait_ready(page)
    int8_url = page.url
    expect(page.locator("#calibration")).to_contain_text("Default")
    expect(page.locator("#calibration")).to_contain_text("subset 50%")
    expect(page.locator(".head-row .prec")).to_have_text("INT8")

    # 5. Model page: the layer table, INT8 layers with U8 outputPrecisions, reasons for FP32.
    page.click("#model-link")
    expect(page.locator("#layer-summary")).to_contain_text("layers run INT8 kernels")
    int8_rows = page.locator("#layers-table tr.int8")
    assert int8_rows.count() > 3
    expect(int8_rows.first.locator("td").nth(3)).to_have_text("U8")
    fp32_rows = page.locator("#layers-table tr.fp32")
    if fp32_rows.count():
        assert fp32_rows.first.locator("td").nth(5).inner_text().strip()
    _shot(page, "model-int8")
    page.check("#only-fp32")
    expect(int8_rows.first).to_be_hidden()

    # 6. Compare page: both models, figures and the report's charts.
    page.goto(int8_url)
    page.click("#tab-compare")
    expect(page.locator("h1")).to_contain_text("against Fashion CNN")
    expect(page.locator("#compare-cards")).to_contain_text("top1")
    expect(page.locator("#compare-cards")).to_contain_text("throughput")
    frame = page.frame_locator("#report")
    expect(frame.locator("h1")).to_contain_text("INT8 against FP32")
    assert frame.locator("svg").count() >= 2
    page.wait_for_timeout(300)
    _shot(page, "compare")

    # 7. AccuracyAware from the same FP32 project, with a maximum drop.
    _optimize(page, fp32_url)
    _select(page, "#calibration-dataset", "fashion calibration")
    page.check("#method-aa")
    expect(page.locator("#max-drop-field")).to_be_visible()
    page.fill("#max-drop", "1")
    page.click("#calibrate")
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.locator("#status .stages")).to_contain_text("accuracy-aware")
    _wait_ready(page)
    expect(page.locator("#calibration")).to_contain_text("AccuracyAware")
    expect(page.locator("#aa-outcome")).to_contain_text("target met")

    # 8. The projects page lists all three, with precision, accuracy, throughput and status.
    page.goto("/")
    rows = page.locator("#projects tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#projects")).to_contain_text("INT8")
    expect(page.locator("#projects")).to_contain_text("this machine")
    assert page.locator("#projects .s-done").count() == 3
    _shot(page, "projects")


def test_refusals_on_the_pages(
    page: Page, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> None:
    # An NLP model with a folder of images: refused where the project is made, in words; the
    # uploads are kept (the dataset serves below).
    page.goto("/projects/new")
    page.set_input_files("#model_file", str(fashion_archives["nlp"]))
    page.fill("#model_name", "tiny NLP")
    page.set_input_files("#dataset_file", str(fashion_archives["plain"]))
    page.fill("#dataset_name", "plain")
    page.click("#create")
    expect(page.locator("#form-error")).to_contain_text("as token ids: an NLP model")
    expect(page.locator("#form-error")).to_contain_text("'plain' holds images")
    expect(page.locator("#model_id option:checked")).to_contain_text("tiny NLP")
    _shot(page, "refused-nlp")

    # An INT8 project's model is derived: only an original model can be calibrated.
    page.goto("/")
    page.locator("#projects tr.derived a").first.click()
    page.click("#tab-perform")
    expect(page.locator("#int8")).to_be_disabled()
    expect(page.locator("#optimize-reason")).to_contain_text("derived")

    # AccuracyAware measures accuracy on the project's dataset: disabled when it has no labels.
    _create_project(page, None, None, "Fashion CNN", "plain")
    _wait_ready(page)
    _optimize(page, page.url)
    expect(page.locator("#method-aa")).to_be_disabled()
    expect(page.locator("#aa-reason")).to_contain_text("has no annotations")
    expect(page.locator("#method-default")).to_be_checked()

    # A bad upload is refused on the page, in words, and nothing is created.
    page.goto("/projects/new")
    page.set_input_files("#model_file", str(fashion_archives["cal"]))
    _select(page, "#dataset_id", "fashion test")
    page.click("#create")
    expect(page.locator("#form-error")).to_contain_text("must be a .onnx file")
