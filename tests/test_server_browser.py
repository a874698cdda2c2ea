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

from calibench.runtime.isa import host_cpu
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


SPEED = re.compile(r"^(\d+\.\d\d× (faster|slower)|same speed)$")
"""The one format of a speed-up on every page: never ``×1.21`` or ``0.95× faster``."""
DROP = re.compile(r"^(drop|gain) \d+\.\d\d pt$|^no drop$")


def _text(page: Page, selector: str) -> str:
    return page.locator(selector).first.inner_text().strip()


def _no_other_number_format(page: Page) -> None:
    text = page.inner_text("main")
    assert not re.search(r"×\s?\d+\.\d", text), "a speed-up written ×1.21"
    assert not re.search(r"\b0\.\d\d× faster", text), "a slow-down written as faster"
    assert "layer(s)" not in text


def test_whole_flow(
    page: Page, server: str, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> None:
    isa = host_cpu().isa.label
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
    # Every speed figure says how it was measured: batch × streams, runtime, CPU, when, alone.
    note = _text(page, ".measured-note")
    for words in ("batch 1 × 1 stream", "ONNX Runtime 1.", f"({isa})", " UTC", "timed alone"):
        assert words in note, (words, note)
    _shot(page, "project-fp32")

    # 2. Perform → Optimize: the INT8 checkbox enables Optimize.
    _optimize(page, fp32_url)
    expect(page.locator("h1")).to_contain_text("Optimize INT8")
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
    # Placement: measured by default, its timing budget beside it; by rule has no budget.
    expect(page.locator("#placement")).to_have_value("measured")
    expect(page.locator("#placement-budget")).to_have_value("30")
    page.select_option("#placement", "rule")
    expect(page.locator("#placement-budget-field")).to_be_hidden()
    page.select_option("#placement", "measured")
    expect(page.locator("#placement-budget-field")).to_be_visible()
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
    int8_id = int(int8_url.rsplit("/", 1)[1])
    _shot(page, "project-int8")
    # Named by what it is; the page shows its gain against its parent, timed side by side.
    recipe = "Default, performance, 50% of fashion calibration"
    expect(page.locator("h1")).to_contain_text(f"Fashion CNN INT8 ({recipe})")
    expect(page.locator("#recipe")).to_contain_text(
        "Default, performance preset, placement measured (batch 1), 50% of fashion calibration"
    )
    expect(page.locator(".head-row .prec")).to_have_text("INT8")
    gain = _text(page, ".gain-card .value")
    assert SPEED.match(gain), gain
    expect(page.locator("#recipe")).to_contain_text(gain)
    int8_throughput = _text(page, f"#inference-cards-{int8_id} .value.throughput")
    note = _text(page, ".measured-note")
    assert "timed side by side with Fashion CNN" in note and f"({isa})" in note, note
    counts = _text(page, "#layer-counts")
    assert re.search(r"^\d+ of \d+ Conv/Gemm in INT8; \d+ activations folded into them", counts)
    _no_other_number_format(page)

    # 5. Model page: counts by kind, U8 outputs, reasons for FP32, a filter that says what it does.
    page.click("#model-link")
    expect(page.locator("#layer-summary")).to_contain_text(counts.split(" (")[0].split(";")[0])
    int8_rows = page.locator("#layers-table tr.int8")
    assert int8_rows.count() > 3
    expect(int8_rows.first.locator("td").nth(3)).to_have_text("U8")
    fp32_rows = page.locator("#layers-table tr.fp32")
    assert fp32_rows.count()  # the CNN's input normalisation (Sub, Div) has no INT8 kernel
    assert fp32_rows.first.locator("td").nth(5).inner_text().strip()
    expect(page.locator("#layer-summary label")).to_contain_text(
        f"show only the {fp32_rows.count()} layers in FP32"
    )
    _shot(page, "model-int8")
    page.check("#only-fp32")
    expect(int8_rows.first).to_be_hidden()
    expect(fp32_rows.first).to_be_visible()

    # 6. Compare: the same gain as the project page, one format, a title that reads right.
    page.goto(int8_url)
    page.click("#tab-compare")
    page.wait_for_url(re.compile(rf"/compare\?a=\d+&b={int8_id}$"))
    expect(page.locator("h1")).to_contain_text("against Fashion CNN")
    expect(page.locator("h1")).to_contain_text(f"Fashion CNN INT8 ({recipe})")
    expect(page.locator("#throughput-gain")).to_have_text(gain)
    assert DROP.match(_text(page, "#compare-cards .drop"))
    expect(page.locator("#compare-cards")).to_contain_text(int8_throughput)
    expect(page.locator("#speed-note")).to_contain_text("side by side")
    expect(page.locator("#pair-table tr[data-row=throughput] .change")).to_contain_text(gain)
    frame = page.frame_locator("#report")
    expect(frame.locator("h1")).to_contain_text(f"{recipe}) against Fashion CNN (FP32)")
    assert frame.locator("svg").count() >= 2
    _no_other_number_format(page)
    page.wait_for_timeout(300)
    _shot(page, "compare")
    page.goto(f"/projects/{int8_id}/compare/report")  # the report alone, as `compare --html`
    expect(page.locator("h1")).to_contain_text(f"{recipe}) against Fashion CNN (FP32)")
    _shot(page, "compare-report")

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
    aa_url = page.url
    aa_id = int(aa_url.rsplit("/", 1)[1])
    expect(page.locator("#calibration")).to_contain_text("AccuracyAware")
    expect(page.locator("#aa-outcome")).to_contain_text("target met")
    expect(page.locator("#aa-outcome")).to_contain_text("reverted to FP32")
    if page.locator("#revert-cascade").count():  # a revert took others along: said where counted
        expect(page.locator("#revert-cascade")).to_contain_text("reverted to FP32")
    aa_gain = _text(page, ".gain-card .value")
    assert SPEED.match(aa_gain), aa_gain
    _no_other_number_format(page)

    # 8. The projects list: the recipe columns, and each INT8 row's speed-up is the one its
    # page and Compare show (its own side-by-side timing, not two stand-alone throughputs).
    page.goto("/")
    rows = page.locator("#projects tbody tr")
    expect(rows).to_have_count(3)
    assert page.locator("#projects .s-done").count() == 3
    row = page.locator(f"#projects tr[data-project='{int8_id}']")
    expect(row.locator("td.method")).to_have_text("Default")
    expect(row.locator("td.preset")).to_have_text("performance")
    expect(row.locator("td.subset")).to_have_text("50% (50 samples)")
    expect(row.locator("td.calibration-dataset")).to_have_text("fashion calibration")
    expect(row.locator("td.gain a")).to_have_text(gain)
    expect(row.locator("td.throughput .figure")).to_have_text(int8_throughput)
    expect(row.locator("td.measured")).to_contain_text(isa)
    aa_row = page.locator(f"#projects tr[data-project='{aa_id}']")
    expect(aa_row.locator("td.method")).to_contain_text("AccuracyAware, maximum drop 1 pt")
    expect(aa_row.locator("td.gain a")).to_have_text(aa_gain)
    expect(page.locator("#projects tr:not(.derived) td.gain")).to_have_text("reference")
    _no_other_number_format(page)
    _shot(page, "projects")

    # 9. Compare any two projects of the model: the two INT8 projects, picked on the page.
    row.locator("td.gain a").click()
    page.wait_for_url(re.compile(r"/compare\?"))
    page.select_option("#pick-a", str(int8_id))
    page.select_option("#pick-b", str(aa_id))
    page.click("#pick-compare")
    page.wait_for_url(re.compile(rf"/compare\?a={int8_id}&b={aa_id}$"))
    expect(page.locator("#compare-cards")).to_have_count(0)  # no speed-up across two runs
    expect(page.locator("#pair-table tr[data-row=throughput] .change")).to_have_text(
        re.compile("^not timed together")
    )
    gains = page.locator("#pair-table tr[data-row=gain] td")
    expect(gains.nth(0)).to_have_text(gain)
    expect(gains.nth(1)).to_have_text(aa_gain)
    assert DROP.match(_text(page, "#pair-table tr[data-row=accuracy] .change").split("\n")[0])
    _no_other_number_format(page)
    _shot(page, "compare-int8-int8")
    # Timed side by side on request: the page follows the job, then divides the two speeds.
    page.click("#time-pair-button")
    expect(page.locator("#timing-sentence")).to_contain_text(
        re.compile(
            r"( is \d+\.\d\d× (faster|slower) than | run at the same speed )"
            r".*\(timed side by side, batch 1 × 1 "
        ),
        timeout=60_000,  # the job's bars on the page until it ends, then the page reloads
    )
    expect(page.locator("#pair-table tr[data-row=throughput] .change")).to_have_text(
        re.compile(r"^(\d+\.\d\d× (faster|slower)|same speed)\s*batch 1 × 1 stream")
    )
    _no_other_number_format(page)
    _shot(page, "compare-int8-int8-timed")

    # 10. A phone's width: the same figures, readable, the page no wider than the screen.
    _phone_walk(page, server, int8_url, int8_id, gain)


WIDEST = """[...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.table-box')).slice(0, 5)
  .map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + e.getBoundingClientRect().right)"""
"""What sticks out of a phone's screen (tables scroll inside their box, so they do not)."""


def _phone_walk(desktop: Page, server: str, int8_url: str, int8_id: int, gain: str) -> None:
    browser = desktop.context.browser
    assert browser is not None
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server)
    phone = context.new_page()
    phone.set_default_timeout(30_000)
    try:
        for url, figure in (
            ("/", f"#projects tr[data-project='{int8_id}'] td.gain a"),
            (int8_url, ".gain-card .value"),
            (f"{int8_url}/compare", "#throughput-gain"),
        ):
            phone.goto(url)
            expect(phone.locator(figure)).to_have_text(gain)
            phone.locator(figure).scroll_into_view_if_needed()
            expect(phone.locator(figure)).to_be_visible()
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (url, width, phone.evaluate(WIDEST))
        phone.goto("/")
        _shot(phone, "phone-projects")
        phone.goto(f"{int8_url}/compare")
        _shot(phone, "phone-compare")
    finally:
        context.close()


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
