"""Job store benchmark at 100,000 jobs: plan, transitions, status summary, resume-open, memory.

Run by hand: ``python bench/bench_store.py``. Targets on a 2-core machine: insert <= 5 s,
>= 5,000 transitions/s, summary <= 50 ms, memory flat in the number of finished jobs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from shapes import continent

from ogc_upscaler import Campaign, JobStore, State, Status, grid_from_spec, job_specs, plan
from ogc_upscaler.plan import tile_records
from ogc_upscaler.store import Move
from ogc_upscaler.windows import windows_from_range

STEPS = (Move.SUBMIT, Move.START, Move.SUCCEED, Move.COLLECT)


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1e6


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

        with JobStore.open(path) as store:
            ids = [job.job_id for job in store.jobs()][: 100_000 // len(STEPS)]
            samples = []
            start = time.perf_counter()
            for i, job in enumerate(ids):
                for move in STEPS:
                    store.move(job, move, backend="bench", remote_id=job)
                if i % (len(ids) // 4) == 0:
                    samples.append(rss_mb())
            seconds = time.perf_counter() - start
            count = len(ids) * len(STEPS)
            rate = count / seconds
            print(
                f"transitions: {count:,} in {seconds:.2f} s = {rate:,.0f}/s, one transaction each "
                f"(target 5,000/s: {rate / 5000:.1f}×)"
            )
            print(f"memory while finishing jobs (RSS at 0/25/50/75 %): {', '.join(f'{m:.0f}' for m in samples)} MB")

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
