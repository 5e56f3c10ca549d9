"""Exactly once, measured from outside (bench/bench_exactly_once.py, smaller): a real pygeoapi whose process
counts its executions, behind a proxy that loses answers after the server acted, with the manager
SIGKILLed; every job must run once, none may be lost, and none left in doubt."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).parents[1] / "bench" / "bench_exactly_once.py"


def bench():
    spec = importlib.util.spec_from_file_location("bench_exactly_once", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_exactly_once", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("server", ["pygeoapi"])
def test_lost_answers_and_kills_run_no_job_twice(tmp_path, server) -> None:
    harness = bench()
    args = harness.arguments(
        ["--server", server, "--jobs", "40", "--lose", "0.15", "--kills", "3", "--seconds", "0.3", "--parallel", "4",
         "--seed", "7", "--workdir", str(tmp_path)]
    )  # fmt: skip
    figures = harness.measure(args, tmp_path)
    assert sum(figures.lost_answers.values()) >= 3, "the proxy lost answers"
    assert figures.kills == 3 and figures.finished
    assert figures.jobs_lost == 0 and figures.jobs_planned == 40
    assert figures.jobs_run_twice_or_more == 0 and figures.executions == 40, figures
    assert figures.in_doubt == 0 and figures.states == {"collected": 40}, figures.states
