"""The run's progress bar: phases (planning, re-attaching, running) with their own counts, the planned and
no-inputs counts, and an ETA smoothed over recent completions that holds still at a steady rate."""

from __future__ import annotations

import io
import random
from collections import Counter

import pytest
from rich.console import Console

from ogc_upscaler.config import load_campaign
from ogc_upscaler.manager import Progress
from ogc_upscaler.progress import ProgressBar, SmoothedEta
from ogc_upscaler.run import run_campaign

from .backends.test_cwltool import flaky_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_at_a_steady_rate_the_eta_holds_still_whatever_the_manager_passes() -> None:
    # one job a second for 30 minutes, seen by manager passes every 0.05 s to 8 s (most with nothing new)
    clock, rng = FakeClock(), random.Random(7)
    eta = SmoothedEta(window=300.0, clock=clock)
    total, estimates = 3600, []
    while clock.now < 1800:
        clock.now += rng.choice([0.05, 0.05, 0.2, 1.0, 3.0, 8.0])
        done = int(clock.now)
        eta.observe(done)
        left = eta.seconds_left(total - done)
        if clock.now > 60 and left is not None:
            estimates.append(left / (total - done))  # the true time left is total - done seconds
    assert estimates and min(estimates) > 0.9 and max(estimates) < 1.1


def test_a_pause_moves_the_eta_gradually_and_more_jobs_only_add_to_what_is_left() -> None:
    clock = FakeClock()
    eta = SmoothedEta(window=300.0, clock=clock)
    for second in range(600):
        clock.now = float(second)
        eta.observe(second)
    before = eta.seconds_left(1000)
    clock.now += 30  # half a minute without a completion
    eta.observe(599)
    after = eta.seconds_left(1000)
    assert before is not None and after is not None and 1.0 < after / before < 1.2, "not a jump to hours"
    assert eta.seconds_left(2000) == 2 * after


def test_after_a_long_pause_the_eta_follows_the_new_rate_within_one_window() -> None:
    clock = FakeClock()
    eta = SmoothedEta(window=300.0, clock=clock)
    eta.observe(0)
    clock.now = 3600.0  # an hour of nothing, then one job a second
    done = 0
    for _ in range(200):  # two thirds of a window
        clock.now += 1.0
        done += 1
        eta.observe(done)
    left = eta.seconds_left(1000)
    assert left is not None and 1.0 <= left / 1000 < 2.0, "the hour before the window does not count (19× else)"
    for _ in range(200):
        clock.now += 1.0
        done += 1
        eta.observe(done)
    assert eta.seconds_left(1000) == pytest.approx(1000, rel=0.01), "a window on, the new rate alone"


def _rendered(bar_updates: list[Progress]) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=220, color_system=None)
    with ProgressBar("alps", console=console) as bar:
        for progress in bar_updates:
            bar.update(progress)
    return out.getvalue()


def test_the_bar_names_its_phase_and_counts_planned_and_no_inputs_jobs() -> None:
    planning = Progress(Counter(planned=1200), phase="planning")
    running = Progress(Counter(planned=900, no_inputs=250, collected=40, running=10))
    text = _rendered([planning])
    assert "alps · planning" in text and "planned 1,200" in text
    text = _rendered([running])
    assert "alps · running" in text and "planned 900  no inputs 250  collected 40" in text
    assert "290/1200" in text, "done counts the jobs without inputs"


def test_a_run_reports_planning_then_re_attaching_then_running(tmp_path) -> None:
    campaign = load_campaign(flaky_config(tmp_path))
    seen: list[tuple[str, int]] = []
    result = run_campaign(campaign, on_progress=lambda p: seen.append((p.phase, p.total)))
    assert result.exit_code == 0
    phases = [phase for phase, _ in seen]
    assert phases[0] == "planning" and "re-attaching" in phases and phases[-1] == "running"
    assert phases.index("re-attaching") > max(i for i, p in enumerate(phases) if p == "planning")
    tiles = len(campaign.grid.tiles(campaign.aoi))
    assert [total for phase, total in seen if phase == "planning"][-1] == tiles, "jobs planned so far"
