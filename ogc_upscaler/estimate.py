"""Estimates from finished jobs: runtime per tile and per km², and time left at the configured parallelism;
and from a sample run (``run --sample``), the whole campaign's duration with a range, and its output size."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ogc_upscaler.durations import duration as spoken
from ogc_upscaler.store import Job, JobStore, State

#: km² of the area figures are given for: 100 × 100 km.
BLOCK_KM2 = 10_000.0


@dataclass(frozen=True)
class Estimate:
    """Runtime figures of the finished jobs and what they predict for the rest."""

    finished: int
    remaining: int
    seconds_per_job: float | None
    seconds_per_km2: float | None
    eta_seconds: float | None
    parallel: int

    def summary(self) -> str:
        """A few lines for the terminal."""
        if self.seconds_per_job is None:
            return f"no job has finished yet; {self.remaining:,} to run: run some first, then estimate"
        lines = [
            f"finished: {self.finished:,} jobs, median {self.seconds_per_job:.1f} s per tile"
            + (f", {self.seconds_per_km2 * 1000:.2f} s per 1,000 km²" if self.seconds_per_km2 else ""),
            f"remaining: {self.remaining:,} jobs; at {self.parallel} in parallel about {spoken(self.eta_seconds or 0)}",
        ]
        return "\n".join(lines)


def estimate(store: JobStore, parallel: int) -> Estimate:
    """Median runtime (running or submitted → succeeded) of collected jobs; ETA of the jobs still to run."""
    per_job, per_km2 = [], []
    for job in store.jobs(State.SUCCEEDED, State.COLLECTED, with_tile=True):
        seconds = runtime(job)
        if seconds is None:
            continue
        per_job.append(seconds)
        if job.tile is not None and job.tile.area_km2:
            per_km2.append(seconds / job.tile.area_km2)
    counts = {state: n for state, _, n in store.counts()}
    remaining = sum(counts.get(s, 0) for s in ("planned", "waiting", "submitted", "running"))
    if not per_job:
        return Estimate(0, remaining, None, None, None, parallel)
    median = statistics.median(per_job)
    return Estimate(
        len(per_job),
        remaining,
        median,
        statistics.median(per_km2) if per_km2 else None,
        remaining * median / max(1, parallel),
        parallel,
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def runtime(job: Job) -> float | None:
    """Seconds from running (or, unseen running, submitted) to succeeded; None for a job that never succeeded."""
    ended, began = job.at(State.SUCCEEDED), job.at(State.RUNNING) or job.at(State.SUBMITTED)
    if ended is None or began is None:
        return None
    return (_time(ended) - _time(began)).total_seconds()


@dataclass(frozen=True)
class SampleEstimate:
    """What a sample run measured per job and per 100 × 100 km, and what it predicts for the campaign."""

    tiles: int
    states: tuple[tuple[str, int], ...]  # the sample's jobs per state
    seconds: tuple[float, ...]  # each collected job's runtime
    output_bytes: int  # the collected jobs' COGs
    km2: float  # the collected jobs' tiles
    jobs: int  # the whole campaign's
    parallel: int

    @property
    def remaining(self) -> int:
        """Jobs of the campaign the sample did not run."""
        return max(0, self.jobs - sum(n for _, n in self.states))

    @property
    def running_share(self) -> float:
        """The share of the sample's jobs that had inputs to run (no_inputs jobs take no time, make no COG)."""
        total = sum(n for _, n in self.states)
        return 1.0 - dict(self.states).get("no_inputs", 0) / total if total else 1.0

    def duration(self) -> tuple[float, float, float] | None:
        """The rest of the campaign at the configured parallelism, in seconds: the sample's mean runtime
        times the jobs left that will run, with the 10th and 90th percentile of that mean over bootstrap
        resamples of the sample; None when no job of the sample succeeded."""
        if not self.seconds:
            return None
        per_slot = self.remaining * self.running_share / max(1, self.parallel)
        low, high = _bootstrap(self.seconds)
        return low * per_slot, statistics.fmean(self.seconds) * per_slot, high * per_slot

    def summary(self) -> str:
        """A few lines for the terminal."""
        shown = ", ".join(f"{n:,} {state}" for state, n in self.states)
        lines = [f"sample: {self.tiles:,} tiles spread over the AOI, {sum(n for _, n in self.states):,} jobs: {shown}"]
        duration = self.duration()
        if duration is None:
            lines.append("no job of the sample succeeded: nothing to estimate from (`status --jobs failed` says why)")
            return "\n".join(lines)
        low, high = _deciles(self.seconds)
        size = self.output_bytes / len(self.seconds)
        left = self.remaining * self.running_share
        lines += [
            f"per job: {statistics.median(self.seconds):.1f} s median ({low:.1f}–{high:.1f} s, 10th to 90th "
            f"percentile), {_bytes(size)} of COGs",
            f"per 100 × 100 km and job: {sum(self.seconds) / self.km2 * BLOCK_KM2:,.0f} s of runtime, "
            f"{_bytes(self.output_bytes / self.km2 * BLOCK_KM2)} of COGs",
            f"campaign: {self.remaining:,} more jobs ({left:,.0f} with inputs) at {self.parallel} in parallel: "
            f"about {spoken(duration[1])} ({spoken(duration[0])} to {spoken(duration[2])}), "
            f"{_bytes(size * left)} of COGs",
            "no backend here reports cost units: the runtimes above are what a campaign pays for",
        ]
        return "\n".join(lines)


def sample_estimate(store: JobStore, tiles: set[str], jobs: int, parallel: int, output: Path) -> SampleEstimate:
    """The figures of the jobs of ``tiles`` (a sample's) in ``store``; ``jobs`` the whole campaign's count."""
    states: Counter[str] = Counter()
    seconds, size, km2 = [], 0, 0.0
    for job in store.jobs(with_tile=True):
        if job.tile_id not in tiles:
            continue
        states[job.state.value] += 1
        took = runtime(job)
        if job.state is not State.COLLECTED or took is None:
            continue
        seconds.append(took)
        cog = job.outputs.cog if job.outputs is not None else None
        size += (output / cog).stat().st_size if cog and (output / cog).is_file() else 0
        km2 += job.tile.area_km2 if job.tile is not None else 0.0
    return SampleEstimate(len(tiles), tuple(sorted(states.items())), tuple(seconds), size, km2, jobs, parallel)


def _bootstrap(values: tuple[float, ...], rounds: int = 1000) -> tuple[float, float]:
    """The 10th and 90th percentile of the mean of ``values`` over resamples with replacement (seeded)."""
    pick = random.Random(0).choices
    means = sorted(statistics.fmean(pick(values, k=len(values))) for _ in range(rounds))
    return means[rounds // 10], means[rounds - 1 - rounds // 10]


def _deciles(values: tuple[float, ...]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return cuts[0], cuts[-1]


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"
