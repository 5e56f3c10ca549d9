"""`run --sample N`: a few tiles spread over the AOI run first, in the campaign's own store; their figures
per tile and per 100 × 100 km predict the campaign, and the real run runs the rest, never them again."""

from __future__ import annotations

import re

import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.plan import plan
from ogc_upscaler.run import run_campaign, run_sample
from ogc_upscaler.store import JobStore

from .backends.test_cwltool import flaky_config

pytestmark = pytest.mark.slow
AOI = "11.0,47.8,13.0,48.0"  # utm-20km tiles in zones 32 and 33


def test_a_sample_predicts_the_campaign_and_counts_as_done_for_the_real_run(tmp_path) -> None:
    campaign = load_campaign(flaky_config(tmp_path, aoi=AOI, seconds=0.3))
    tiles = campaign.grid.tiles(campaign.aoi)
    sampled = run_sample(campaign, 3)
    assert sampled.result.exit_code == 0
    found = sampled.estimate
    assert found.tiles == 3 and found.states == (("collected", 3),) and found.jobs == len(tiles)
    assert len(found.seconds) == 3 and min(found.seconds) >= 0.3, "each ran the tool, which sleeps 0.3 s"
    assert found.output_bytes > 0 and found.remaining == len(tiles) - 3
    low, median, high = found.duration()
    assert low <= median <= high and median == pytest.approx(sum(found.seconds) / 3 * (len(tiles) - 3) / 2)
    text = found.summary()
    assert re.search(r"per job: \d+\.\d s median", text) and "per 100 × 100 km and job:" in text
    assert f"campaign: {len(tiles) - 3:,} more jobs ({len(tiles) - 3:,} with inputs) at 2 in parallel: about" in text
    counts = tmp_path / "state"
    ran = sorted(p.stem for p in counts.glob("*.count"))
    assert len(ran) == 3 and {r.split("-")[1] for r in ran} == {"32N", "33N"}, "spread over both zones"

    whole = run_campaign(campaign)
    assert whole.exit_code == 0 and whole.plan is not None
    assert (whole.plan.added, whole.plan.unchanged) == (len(tiles) - 3, 3)
    runs = {p.stem: p.read_text() for p in counts.glob("*.count")}
    assert len(runs) == len(tiles) and set(runs.values()) == {"1"}, "no tile ran twice"


def test_a_sample_is_refused_on_a_store_that_holds_the_campaign_to_run(tmp_path) -> None:
    campaign = load_campaign(flaky_config(tmp_path, aoi=AOI))
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        before = store.count()
    with pytest.raises(InvalidConfig, match="holds jobs still to run beyond the sample"):
        run_sample(campaign, 2)
    with JobStore.read(campaign.store) as store:
        assert store.count() == before
    assert not (tmp_path / "state").exists(), "nothing ran"


def test_run_sample_on_the_command_line_prints_the_estimate(tmp_path, capsys) -> None:
    from ogc_upscaler.cli import main

    config = flaky_config(tmp_path, aoi=AOI)
    with pytest.raises(SystemExit) as exit_code:
        main(["run", str(config), "--sample", "1"])
    out = capsys.readouterr().out
    assert exit_code.value.code == 0, out
    assert "sample: 1 tiles spread over the AOI, 1 jobs: 1 collected" in out and "campaign: " in out


def test_jobs_without_inputs_in_the_sample_take_their_share_off_the_estimate() -> None:
    from ogc_upscaler.estimate import SampleEstimate

    found = SampleEstimate(5, (("collected", 6), ("no_inputs", 4)), (10.0,) * 6, 6_000, 600.0, 110, 2)
    assert found.remaining == 100 and found.running_share == pytest.approx(0.6)
    assert found.duration() == pytest.approx((300.0, 300.0, 300.0)), "60 jobs of 10 s on 2 slots"
    assert "100 more jobs (60 with inputs)" in found.summary() and "60.0 kB of COGs" in found.summary()
