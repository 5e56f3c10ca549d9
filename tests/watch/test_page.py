"""The watch page in a real browser during a real campaign: Debian's Chromium, driven by Playwright, on
`ogc-upscaler watch` while `ogc-upscaler run` runs the flaky test package through cwltool.

The page is read as a person reads it: the counts in the legend, a tile clicked on the map, its job's
log, a cause of failure retried, submissions paused and resumed; a screenshot is kept in test-artefacts/.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.store import JobStore

from ..backends.test_cwltool import flaky_config
from ..conftest import ARTEFACTS, wait_for

pytestmark = pytest.mark.slow
EXE = shutil.which("ogc-upscaler")
AOI = "11.8,47.8,12.3,48.1"  # a dozen tiles of utm-20km across the seam of zones 32 and 33
DEADLINE = 300.0  # a busy machine makes the campaign slower, never the test red


def store_counts(path: Path) -> dict[str, int]:
    out: Counter[str] = Counter()
    with JobStore.read(path) as store:
        for state, _, n in store.counts():
            out[state] += n
    return dict(out)


def legend(page) -> dict[str, int]:
    """The counts the page shows, read from its legend."""
    items = page.query_selector_all("#legend li")
    return {
        li.get_attribute("data-state"): int(li.get_attribute("data-count"))
        for li in items
        if li.get_attribute("data-count") != "0"
    }


def page_waits_for(page, condition, timeout=DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting on the page"
        page.wait_for_timeout(200)


def test_a_running_campaign_watched_and_steered_in_chromium(tmp_path, browser) -> None:
    first = load_campaign(flaky_config(tmp_path, aoi=AOI))
    ids = [tile.id for tile in first.grid.tiles(first.aoi)]  # in plan order
    broken = ids[1]  # fails early: jobs run in plan order
    config = flaky_config(
        tmp_path, seconds=1.0, broken=broken, aoi=AOI, retries={"attempts": 1, "backoff": 0.2, "time_limit": "PT2M"}
    )
    campaign = load_campaign(config)
    assert subprocess.run([EXE, "plan", str(config)], capture_output=True, timeout=300).returncode == 0
    watch = subprocess.Popen([EXE, "watch", str(config), "--port", "0"], stdout=subprocess.PIPE, text=True)
    run = subprocess.Popen([EXE, "run", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(str(err)))
    try:
        url = watch.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        page.goto(url)
        page.evaluate("window.ogcWatch.ready")
        assert page.text_content("#campaign") == campaign.name

        # while it runs: a failure shows, then submissions are paused from the page
        page_waits_for(page, lambda: legend(page).get("failed", 0) == 1 and legend(page).get("collected", 0) >= 1)
        assert legend(page).get("planned", 0) > 0 and page.get_attribute("#manager", "data-attached") == "true"
        page.click("#pause")
        page.wait_for_selector("#paused:not([hidden])", timeout=DEADLINE * 1000)
        page_waits_for(page, lambda: not {"submitted", "running"} & set(legend(page)))
        page_waits_for(page, lambda: legend(page) == store_counts(campaign.store))  # the page shows the store
        paused = store_counts(campaign.store)
        assert paused.get("planned", 0) > 0 and run.poll() is None  # paused, not finished

        # the failed tile, clicked on the map, lists its job; its log says why
        x, y = page.evaluate(f"window.ogcWatch.locate({broken!r})")
        box = page.query_selector("#map").bounding_box()
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_selector(f'#tile[data-tile="{broken}"]:not([hidden])')
        row = page.query_selector(f'#tile-jobs tr[data-job^="{broken}"]')
        assert row.get_attribute("data-state") == "failed"
        row.query_selector("button.log").click()
        page.wait_for_function("document.querySelector('#log').textContent.includes('is broken')")

        # its cause retried from the list of failures, then submissions resumed: it runs again
        (group,) = page.query_selector_all("#failures li")
        assert group.get_attribute("data-count") == "1" and "<tile> is broken" in group.get_attribute("data-cause")
        group.query_selector("button.retry-cause").click()
        page.wait_for_selector('#requests li[data-answered="true"]:has-text("1 failed jobs of cause")')
        page.click("#pause")  # now "Resume submissions"
        assert run.wait(timeout=DEADLINE) == 3  # finished, one job failed (again)
        wait_for(lambda: (tmp_path / "state" / f"{broken}.count").read_text() == "2", timeout=30)
        final = store_counts(campaign.store)
        assert final == {"collected": len(ids) - 1, "failed": 1}
        page_waits_for(page, lambda: legend(page) == final)
        # the run's process let go of the store before it ended: "cannot tell" until it is gone, then detached
        page_waits_for(page, lambda: page.get_attribute("#manager", "data-attached") == "false")
        ARTEFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "watch-page.png"), full_page=True)
        assert (ARTEFACTS / "watch-page.png").stat().st_size > 20_000
        assert problems == []
    finally:
        page.close()
        for process in (run, watch):
            process.terminate()
            process.wait(timeout=60)
