"""The Dagster UI in a real headless browser: Debian's chromium, driven by Playwright, against a real
dagster-webserver and dagster-daemon on 127.0.0.1. A user opens the asset graph, picks raw_trades and one
day, clicks Materialize, watches the run succeed and reads a model's validation report.

Screenshots land in test-artifacts/browser/ (kept by CI, ignored by git)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_PIPELINE, REPO, cli_env, dagster_services, graphql

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "browser"
DAY = "2024-01-03"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


RUNS = """query($day: String!) { runsOrError(filter: {tags: [{key: "dagster/partition", value: $day}]}) {
  ... on Runs { results { runId status assetSelection { path } } } } }"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A fresh instance where the pump model already has a validation report (two days trained by the CLI),
    served by dagster-webserver, with dagster-daemon launching the runs the UI queues."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: `apt-get install -y chromium` (`make test` does this)")
    tmp = tmp_path_factory.mktemp("ui")
    env = cli_env(tmp, ALEVOR_PIPELINE=str(SMALL_PIPELINE))
    seed = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "alevor_assets.definitions",
         "--select", "*validation_pump_detector_2s", "--partition-range", "2024-01-01...2024-01-02"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert seed.returncode == 0, seed.stderr[-3000:]

    with dagster_services(tmp, env, daemon=True) as url:
        yield {"url": url, "home": Path(env["ALEVOR_HOME"]), "daemon_log": tmp / "daemon.log"}


@pytest.fixture
def page(ui):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            # No sandbox: CI runs as root in a container. The rest keeps chromium off the network.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            page.screenshot(path=str(ARTIFACTS / "last.png"), full_page=True)
            browser.close()


def dismiss_welcome(page) -> None:
    # A fresh instance greets the first visitor with a community dialog.
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.first.wait_for(timeout=5_000)
        skip.first.click()
    except Exception:  # noqa: BLE001 - the dialog is optional; absent means nothing to dismiss
        pass


def wait_for_run(url: str, day: str, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = graphql(url, RUNS, {"day": day})["runsOrError"]["results"]
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"no finished run for {day} after {seconds}s: {runs}")


def test_materialize_raw_trades_from_the_graph_then_read_the_validation_report(ui, page):
    url = ui["url"]
    assert not graphql(url, RUNS, {"day": DAY})["runsOrError"]["results"]
    assert not (ui["home"] / "warehouse" / "raw_trades" / f"date={DAY}").exists()

    # The global asset graph; "Jump to" selects raw_trades inside its collapsed group.
    page.goto(url + "/asset-groups")
    dismiss_welcome(page)
    page.get_by_placeholder("Jump to…").fill("raw_trades")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="raw_trades").or_(page.get_by_text("View in Asset Catalog")).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "1-graph-raw_trades-selected.png"))

    page.get_by_role("button", name="Materialize selected…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Launch runs to materialize raw_trades").wait_for()
    # The dialog starts on the last 90 days; our day is older.
    dialog.get_by_text("Show all partitions").click()
    partitions = dialog.get_by_placeholder("No matching partitions").or_(dialog.locator("input").first).first
    partitions.fill(DAY)
    partitions.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    page.screenshot(path=str(ARTIFACTS / "2-launch-dialog-one-partition.png"))
    dialog.get_by_role("button", name="Launch 1 run").click()

    run = wait_for_run(url, DAY)
    page.goto(f"{url}/runs/{run['runId']}")
    page.get_by_text("Success", exact=False).first.wait_for()
    page.get_by_text("Loading run logs").wait_for(state="hidden")
    page.screenshot(path=str(ARTIFACTS / "3-run-succeeded.png"))
    assert run["status"] == "SUCCESS", (run, ui["daemon_log"].read_text()[-3000:])
    assert run["assetSelection"] == [{"path": ["raw_trades"]}]
    assert list((ui["home"] / "warehouse" / "raw_trades" / f"date={DAY}").glob("*.parquet"))

    # The validation asset's page shows the report as Markdown.
    page.goto(url + "/assets/validation_pump_detector_2s")
    dismiss_welcome(page)
    page.get_by_text("Show Markdown").first.click()
    report = page.get_by_role("dialog")
    report.get_by_text("Validation of pump_detector_2s v1").wait_for()
    text = report.inner_text()
    assert "Decision" in text and "pr_auc" in text and "Gate" in text, text[:2000]
    report.get_by_text("Validation of pump_detector_2s v1").scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # let the dialog finish fading in before the screenshot
    page.screenshot(path=str(ARTIFACTS / "4-validation-report.png"))
