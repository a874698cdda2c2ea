"""The workbench's layout in a real browser (headless Chromium, driven by Playwright): at a
phone's width (390 px) no page scrolls sideways, wide tables scroll inside their own box and
layer names wrap at their separators; at a desktop width the six stages of a calibration fit
one row; the site icon is served (no 404 on any page); the Subset Size note follows what is
typed. Screenshots go to build/screenshots/layout-*.png."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.server_helpers import Server, free_port
from tests.test_server_browser import CHROMIUM, SHOTS

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class Workbench:
    url: str
    project: dict[str, Any]
    cancelled: dict[str, Any]
    """An AccuracyAware INT8 project whose calibration was cancelled before it started: its six
    stages show."""


def _wait(client: httpx.Client, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


@pytest.fixture(scope="module")
def workbench(
    tmp_path_factory: pytest.TempPathFactory, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> Iterator[Workbench]:
    workspace = tmp_path_factory.mktemp("layout")
    running = Server(workspace, free_port(), ["--workers", "1"], workspace / "server.log")
    try:
        client = running.start()
        model = client.post(
            "/api/models",
            files={"file": ("fashion_cnn.onnx", fashion_cnn.read_bytes())},
            data={"name": "Fashion CNN with a rather long name"},
        ).json()
        val = client.post(
            "/api/datasets",
            files={"file": ("val.tar.gz", fashion_archives["val"].read_bytes())},
            data={"name": "fashion test"},
        ).json()
        project = client.post(
            "/api/projects", json={"model_id": model["id"], "dataset_id": val["id"]}
        ).json()
        assert _wait(client, project["job"]["id"])["state"] == "done"
        # One worker, busy with a first calibration: the second stays queued until cancelled.
        first = client.post(
            f"/api/projects/{project['id']}/optimize", json={"dataset_id": val["id"]}
        ).json()
        aware = {"dataset_id": val["id"], "method": "accuracy-aware", "max_drop": 1}
        second = client.post(f"/api/projects/{project['id']}/optimize", json=aware).json()
        client.post(f"/api/jobs/{second['job']['id']}/cancel")
        _wait(client, first["job"]["id"])
        assert _wait(client, second["job"]["id"])["state"] == "cancelled"
        client.close()
        yield Workbench(running.url, project, second)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install -y chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


def _page(browser: Browser, workbench: Workbench, viewport: dict[str, int]) -> Page:
    context = browser.new_context(viewport=viewport, base_url=workbench.url)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def _pages(workbench: Workbench) -> list[str]:
    p = workbench.project
    return [
        "/",
        "/datasets",
        "/targets",
        "/projects/new",
        f"/projects/{p['id']}",
        f"/projects/{p['id']}/optimize",
        f"/projects/{workbench.cancelled['id']}",
        f"/models/{p['model']['id']}",
        f"/jobs/{p['job']['id']}",
        "/datasets/import",
        "/help",
    ]


def test_no_page_is_wider_than_a_phone(browser: Browser, workbench: Workbench) -> None:
    page = _page(browser, workbench, PHONE)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    for url in _pages(workbench):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{url} is {width} px wide at a 390 px viewport"
        name = url.strip("/").replace("/", "-") or "projects"
        # The README is very tall at this width: its first screen is picture enough.
        page.screenshot(path=str(SHOTS / f"layout-phone-{name}.png"), full_page=url != "/help")
    assert not missing, missing  # the favicon included
    page.goto(f"/models/{workbench.project['model']['id']}")
    table = page.locator("#layers-table")
    box = table.evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert box[0] >= box[1]  # it may scroll, inside its own box
    assert "<wbr>" in page.locator("#layers-table tbody td code").first.inner_html()


def test_six_stages_fit_one_row_and_a_cancelled_one_is_not_running(
    browser: Browser, workbench: Workbench
) -> None:
    page = _page(browser, workbench, DESKTOP)
    page.goto(f"/projects/{workbench.cancelled['id']}")
    tiles = page.locator("#status .stages li")
    assert tiles.count() == 6
    tops = {round(t.bounding_box()["y"]) for t in tiles.all()}  # type: ignore[index]
    assert len(tops) == 1, tops
    assert page.locator("#status .stages li.current").count() == 0
    assert page.locator("#status button", has_text="Retry").count() == 1
    page.screenshot(path=str(SHOTS / "layout-desktop-cancelled.png"), full_page=True)


def test_the_subset_note_follows_what_is_typed(browser: Browser, workbench: Workbench) -> None:
    page = _page(browser, workbench, DESKTOP)
    page.goto(f"/projects/{workbench.project['id']}/optimize")
    page.select_option("#calibration-dataset", str(workbench.project["dataset"]["id"]))
    note = page.locator("#subset-count")
    page.fill("#subset", "100")
    assert note.inner_text() == "= 200 samples of 200"
    assert page.locator("#same-as-validation").is_visible()
    page.fill("#subset", "1")
    assert note.inner_text().startswith("= 2 samples of 200. Fewer than 100 samples")
    assert "few" in (note.get_attribute("class") or "")
    page.screenshot(path=str(SHOTS / "layout-desktop-optimize.png"), full_page=True)
    # Enter in a field calibrates (the page's first button is Calibrate, not the import).
    page.fill("#subset", "50")
    page.press("#subset", "Enter")
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    assert page.locator("#status").inner_text().startswith("INT8 calibration")
