"""Job store benchmark at 100,000 jobs: plan, transitions, status summary, resume-open, memory.

Run by hand: ``python bench/bench_store.py``. Targets on a 2-core machine: insert <= 5 s,
>= 5,000 transitions/s, summary <= 50 ms, memory flat in the number of finished jobs.

Transitions are measured twice in the same run, on 25,000 jobs each, in passes of 64 jobs (a
backend's slots): the manager's way (each submission committed on its own before the backend would
be asked, its remote id noted after; the moves of a poll, and the collections of a pass, one
transaction each) and one transaction per transition, as the store did before batches. Both make
the same writes.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from shapes import continent

from ogc_upscaler import Campaign, JobStore, State, Status, grid_from_spec, job_specs, plan
from ogc_upscaler.plan import tile_records
from ogc_upscaler.store import JobOutputs, Move
from ogc_upscaler.windows import windows_from_range

#: Jobs a manager moves in one pass (its backend's slots), and jobs taken through in each mode.
PASS = 64
JOBS = 25_000
#: Transitions of a job: submit, start, succeed, collect.
STEPS = 4
GOAL = 5000


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1e6


def take_through(store: JobStore, ids: list[str], *, batched: bool) -> tuple[float, float]:
    """Take ``ids`` from planned to collected a pass at a time; seconds in all, and in submissions."""
    submitting = 0.0
    start = time.perf_counter()
    for first in range(0, len(ids), PASS):
        jobs = ids[first : first + PASS]
        began = time.perf_counter()
        for job in jobs:  # on its own before the backend is asked, its answer after: never batched
            store.move(job, Move.SUBMIT, backend="bench", remote_id=None)
            store.note(job, state=State.SUBMITTED, remote_id=f"r-{job}", backend_status="submitted")
        submitting += time.perf_counter() - began
        with store.batch() if batched else nullcontext():  # a poll that sees them run
            for job in jobs:
                store.move(job, Move.START, attempt=1, backend_status="running", log_path=f"logs/{job}.txt")
        with store.batch() if batched else nullcontext():  # a poll that sees them succeed
            for job in jobs:
                store.move(job, Move.SUCCEED, attempt=1, backend_status="successful")
        with store.batch() if batched else nullcontext():  # their collection
            for job in jobs:
                store.move(job, Move.COLLECT, outputs=JobOutputs(item=f"items/{job}.json", cog=f"items/{job}.tif"))
    return time.perf_counter() - start, submitting


def transitions(path: Path) -> None:
    """Print the transitions per second of both modes, their ratio, and memory while jobs finish."""
    with JobStore.open(path) as store:
        ids = [job.job_id for job in store.jobs()][: 2 * JOBS]
        before = rss_mb()
        rates = {}
        for batched, part in ((False, ids[:JOBS]), (True, ids[JOBS:])):
            seconds, submitting = take_through(store, part, batched=batched)
            count = len(part) * STEPS
            rates[batched] = count / seconds
            how = "the manager's way, a pass per transaction" if batched else "one transaction per transition"
            print(
                f"transitions, {how}: {count:,} in {seconds:.2f} s = {rates[batched]:,.0f}/s "
                f"(goal {GOAL:,}/s: {rates[batched] / GOAL:.2f}×), of which {submitting / len(part) * 1000:.3f} ms "
                "per job in its submission and answer, committed one by one"
            )
        print(f"batched / one transaction each: {rates[True] / rates[False]:.1f}×")
        print(f"memory while finishing {2 * JOBS:,} jobs: {before:.0f} MB before, {rss_mb():.0f} MB after")


def main() -> None:
    """Print figures and ratios against the targets."""
    windows = tuple(windows_from_range("2024-01-01", "2024-07-01", "P1M"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite"
        campaign = Campaign("bench", continent(12_000), grid_from_spec("laea-20km"), windows, store=path)
        tiles = campaign.grid.tiles(campaign.aoi)

        start = time.perf_counter()
        records = list(tile_records(tiles))
        specs = list(job_specs(campaign, tiles))
        built = time.perf_counter() - start
        with JobStore.open(path) as store:
            start = time.perf_counter()
            store.put_tiles(records)
            store.insert(specs)
            inserted = time.perf_counter() - start
        n = len(specs)
        del specs
        print(
            f"plan: {len(tiles):,} tiles × {len(windows)} windows = {n:,} jobs; specs built in {built:.2f} s, "
            f"inserted in {inserted:.2f} s (target 5 s: {inserted / 5:.2f} of budget)"
        )

        with JobStore.open(path) as store:
            start = time.perf_counter()
            report = plan(campaign, store)
            print(
                f"plan again (nothing to add: {report.added}): {time.perf_counter() - start:.2f} s "
                f"for grid, specs and comparison"
            )

        transitions(path)

        with JobStore.read(path) as store:
            times = []
            for _ in range(20):
                start = time.perf_counter()
                Status.of(store)
                times.append(time.perf_counter() - start)
            summary = statistics.median(times)
            print(
                f"status summary at {n:,} jobs: {summary * 1000:.1f} ms (target 50 ms: {summary / 0.05:.2f} of budget)"
            )

        start = time.perf_counter()
        with JobStore.open(path) as store:
            active = sum(1 for _ in store.jobs(State.RUNNING))
            opened = time.perf_counter() - start
        print(f"resume-open of the store with {n:,} jobs, reading its {active} running jobs: {opened * 1000:.1f} ms")


if __name__ == "__main__":
    main()
