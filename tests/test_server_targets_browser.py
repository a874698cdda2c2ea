"""Targets in a real browser: add the loopback sshd as a target on the Targets page (its host key
shown, then accepted), check it, create a project on it, calibrate INT8 there with the staged
progress, and see it in the fleet comparison. ``calibench serve`` runs as a person starts it;
the target's environment is the session's (``ready_target``), reused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import TEST_WHEELHOUSE
from tests.server_helpers import Server, free_port
from tests.sshd import Machines
from tests.test_server_browser import _shot, _wait_ready
from tests.test_server_browser import page as page  # Chromium on this module's ``server``


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ready_target: Path) -> Iterator[str]:
    workspace = tmp_path_factory.mktemp("targets-workbench")
    (workspace / "wheelhouse").symlink_to(TEST_WHEELHOUSE.resolve())
    running = Server(workspace, free_port(), [], workspace / "server.log")
    try:
        running.start().close()
        yield running.url
    finally:
        running.stop()


def test_add_a_target_and_calibrate_on_it(
    page: Page, machines: Machines, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> None:
    server = machines.servers[0]
    # 1. Targets → add: the unknown host key is shown with its fingerprint, then accepted.
    page.goto("/targets")
    page.fill("#target-name", "edge")
    page.fill("#target-host", "127.0.0.1")
    page.fill("#target-port", str(server.port))
    page.fill("#target-user", machines.user)
    page.fill("#target-key", str(machines.key))
    page.click("#add-target-button")
    expect(page.locator("#host-key-question")).to_contain_text("is not known yet")
    expect(page.locator("#fingerprint")).to_have_text(server.host_key)
    expect(page.locator("#targets tr[data-target=edge]")).to_have_count(0)
    page.click("#accept-host-key")
    page.wait_for_url(re.compile(r"/targets/edge$"))

    # 2. Check: the findings and the verdict on INT8 there.
    page.click("#check-target")
    expect(page.locator("#target-status")).to_have_text("available")
    expect(page.locator("#verdict")).to_contain_text("INT8")
    expect(page.locator("#findings")).to_contain_text("free disk")
    _shot(page, "target-check")

    # 3. A project on the target: its baseline runs there.
    page.goto("/projects/new")
    page.set_input_files("#model_file", str(fashion_cnn))
    page.fill("#model_name", "Fashion CNN")
    page.set_input_files("#dataset_file", str(fashion_archives["val"]))
    page.fill("#dataset_name", "fashion test")
    page.select_option("#target", "edge")
    page.click("#create")
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    expect(page.locator("h1")).to_contain_text("edge")
    expect(page.locator("#status .stages")).to_contain_text("uploading")
    _wait_ready(page)
    fp32_url = page.url

    # 4. Optimize INT8 on the parent's target: the staged progress, the model back here.
    page.click("#tab-perform")
    page.check("#int8")
    page.click("#optimize-button")
    page.wait_for_url(re.compile(r"/projects/\d+/optimize"))
    expect(page.locator("#target option:checked")).to_have_text("edge")
    page.click("#calibrate")
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    assert page.url != fp32_url
    stages = page.locator("#status .stages")
    for stage in ("preparing assets", "uploading", "statistics", "downloading results"):
        expect(stages).to_contain_text(stage)
    _shot(page, "target-int8-running")
    _wait_ready(page)
    expect(page.locator(".head-row .prec")).to_have_text("INT8")

    # 5. The projects table names the target; the fleet comparison shows it beside this machine.
    page.goto("/")
    expect(page.locator("#projects")).to_contain_text("edge")
    page.goto("/models/1/fleet")
    row = page.locator("#fleet tr[data-target=edge]")
    expect(row).to_contain_text(re.compile(r"\d\.\d\d× (faster|slower)"))
    expect(row).to_contain_text("timed side by side with the FP32 model")
    expect(page.locator("#fleet tr[data-target='this machine']")).to_have_count(1)
    assert page.locator(".fleet-bar.int8").count() >= 2
    _shot(page, "fleet")
