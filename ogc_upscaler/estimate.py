"""Estimates from finished jobs: runtime per tile and per km², and time left at the configured parallelism;
and from a sample run (``run --sample``), the whole campaign's duration with a range, and its output size."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

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
            f"remaining: {self.remaining:,} jobs; at {self.parallel} in parallel about "
            f"{_duration(self.eta_seconds or 0)}",
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


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def runtime(job: Job) -> float | None:
    """Seconds from running (or, unseen running, submitted) to succeeded; None for a job that never succeeded."""
    ended, began = job.at(State.SUCCEEDED), job.at(State.RUNNING) or job.at(State.SUBMITTED)
    if ended is None or began is None:
        return None
    return (_time(ended) - _time(began)).total_seconds()


@dataclass(frozen=True)
class SampleEstimate:
    """What a sample run measured per tile and per 100 × 100 km, and what it predicts for the campaign."""

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

    def duration(self) -> tuple[float, float, float] | None:
        """The rest of the campaign at the configured parallelism, in seconds: low, median and high (the
        sample's 10th, 50th and 90th percentile runtimes), or None when no job of the sample succeeded."""
        if not self.seconds:
            return None
        low, high = _deciles(self.seconds)
        per_slot = self.remaining / max(1, self.parallel)
        return low * per_slot, statistics.median(self.seconds) * per_slot, high * per_slot

    def summary(self) -> str:
        """A few lines for the terminal."""
        shown = ", ".join(f"{n:,} {state}" for state, n in self.states)
        lines = [f"sample: {self.tiles:,} tiles spread over the AOI, {sum(n for _, n in self.states):,} jobs: {shown}"]
        duration = self.duration()
        if duration is None:
            lines.append("no job of the sample succeeded: nothing to estimate from (`status --jobs failed` says why)")
            return "\n".join(lines)
        low, high = _deciles(self.seconds)
        done = len(self.seconds)
        size = self.output_bytes / done
        lines += [
            f"per tile: {statistics.median(self.seconds):.1f} s median ({low:.1f}–{high:.1f} s), "
            f"{_bytes(size)} of COGs",
            f"per 100 × 100 km: {sum(self.seconds) / self.km2 * BLOCK_KM2:,.0f} s of runtime, "
            f"{_bytes(self.output_bytes / self.km2 * BLOCK_KM2)} of COGs",
            f"campaign: {self.remaining:,} more jobs at {self.parallel} in parallel: about {_duration(duration[1])} "
            f"({_duration(duration[0])} to {_duration(duration[2])}), {_bytes(size * self.remaining)} of COGs",
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
