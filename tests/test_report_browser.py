"""report.html in a real browser: headless Chromium renders it, dumps the DOM and a screenshot.

Uses the fixture store of tests/test_report.py (a real tiny digits sweep plus hostile names,
built once per session), writes the report in both languages, then runs Debian's `chromium` headless with
`--dump-dom`, `--screenshot` and a network log. Checks the parsed DOM (sections, language,
inline figures, escaped names, each depth's accuracy against MLflow), that the screenshot is
a drawn page, and that the page itself requested nothing over the network (a control page
with an external image proves the network check can see such a request).

Chromium missing: skipped on a developer machine, a failure under CI (the `CI` variable is
set; .ci/run installs the package). Run: `pytest tests/test_report_browser.py` (~25 s
alone, ~10 s after tests/test_report.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests.test_report import (HOSTILE_EXPERIMENT, HOSTILE_RUN, by_id, parse,
                               session_fixture_store)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# Chromium's own background requests carry no page origin; a page's requests do.
BROWSER_INTERNAL_INITIATOR = "not an origin"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if "CI" in os.environ:
        pytest.fail("chromium is not installed, but CI is set: .ci/run must install it "
                    "(apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI always runs this test")


def run_chromium(page: Path, *arguments: str, timeout: int = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium_profile_") as profile:
        return subprocess.run([chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               *arguments, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout)


def page_requests(net_log: Path) -> list[str]:
    """URLs of the network requests a page (not the browser itself) started."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"]
            if event["type"] == start_job and "url" in event.get("params", {})
            and event["params"].get("initiator") != BROWSER_INTERNAL_INITIATOR]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, digits_splits):
    chromium_path()
    from depth_experiments.report import report_for_experiment

    store = session_fixture_store(tmp_path_factory, digits_splits)
    root = tmp_path_factory.mktemp("browser_pages")
    client = mlflow.MlflowClient(store.uri)
    pages = {lang: report_for_experiment(HOSTILE_EXPERIMENT, root / f"report-{lang}.html", lang,
                                         client=client) for lang in ("en", "zh-TW")}
    return store, pages


@pytest.mark.parametrize("lang", ["en", "zh-TW"])
def test_chromium_builds_the_report_dom(rendered, lang):
    store, pages = rendered
    done = run_chromium(pages[lang], "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    elements = parse(done.stdout)
    html = next(element for element in elements if element.tag == "html")
    assert html.attrs["lang"] == lang
    assert [e.attrs["id"] for e in elements if e.tag == "section"] == ["q1", "q2", "q3", "q4"]
    assert not [e for e in elements if e.tag == "script"]
    assert HOSTILE_RUN in [e.text for e in elements if "run-name" in e.classes]
    assert HOSTILE_EXPERIMENT in next(e for e in elements if e.tag == "header").text
    images = [e for e in elements if e.tag == "img"]
    assert len(images) >= 2 * len(store.depth_runs) + 1
    assert all(image.attrs["src"].startswith("data:image/svg+xml;base64,") for image in images)
    client = mlflow.MlflowClient(store.uri)
    for row in (e for e in elements if "depth-row" in e.classes):
        held = client.get_run(store.depth_runs[int(row.attrs["data-depth"])]).data.metrics
        assert f"{held['test_accuracy'] * 100:.1f}%" in row.text
    assert by_id(elements, "verdict").text.strip()


def test_chromium_draws_the_report_and_fetches_nothing(rendered, tmp_path):
    from PIL import Image

    _, pages = rendered
    screenshot, net_log = tmp_path / "report.png", tmp_path / "net.json"
    done = run_chromium(pages["en"], f"--screenshot={screenshot}", "--window-size=1280,2400",
                        f"--log-net-log={net_log}")
    assert done.returncode == 0, done.stderr[-2000:]
    with Image.open(screenshot) as image:
        assert image.size == (1280, 2400)
        pixels = np.asarray(image.convert("L"))
    drawn = np.mean(pixels < 200)
    assert 0.01 < drawn < 0.6, drawn
    assert page_requests(net_log) == []


def test_the_network_check_sees_a_page_request(tmp_path):
    page = tmp_path / "external.html"
    page.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png"><p>control</p>')
    net_log = tmp_path / "net.json"
    done = run_chromium(page, "--dump-dom", f"--log-net-log={net_log}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert page_requests(net_log) == ["http://127.0.0.1:9/x.png"]
