"""The manager's own overhead per job: submit, poll and collect bookkeeping with an instant backend.

Run by hand: ``python bench/bench_manager.py``. Target on a 2-core machine: <= 1 ms of CPU per job
at 10,000 and 100,000 jobs; memory flat in the number of finished jobs. The wall time is printed
beside it: it adds the wait for the disk to sync each submission (see the README's job store).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import shapely

from ogc_upscaler.backends.inprocess import InProcessBackend
from ogc_upscaler.campaign import Retries
from ogc_upscaler.collect import Collected
from ogc_upscaler.manager import Manager
from ogc_upscaler.store import JobSpec, JobStore, TileRecord

FOOTPRINT = shapely.to_wkb(shapely.box(11.0, 47.0, 11.2, 47.2))


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6


def fill(store: JobStore, n: int) -> None:
    """``n`` planned jobs on ``n // 4`` tiles."""
    tiles = max(1, n // 4)
    store.put_tiles(TileRecord(f"T-{t}", 32632, (0.0, 0.0, 20000.0, 20000.0), FOOTPRINT, 400.0) for t in range(tiles))
    window = ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
    store.insert(JobSpec(f"T-{i % tiles}_{i}", f"T-{i % tiles}", *window, "default", "{}", "{}", "h") for i in range(n))


def bench(n: int, slots: int = 64) -> None:
    """Run ``n`` instant jobs through the manager and print the time and memory per job."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite"
        with JobStore.open(path) as store:
            fill(store, n)
        samples: list[float] = []

        def sample(progress) -> None:
            if progress.finished_this_run % max(1, n // 4) < slots and len(samples) < 8:
                samples.append(rss_mb())

        with JobStore.open(path) as store:
            manager = Manager(
                store,
                InProcessBackend(lambda job: None, slots=slots),
                Path(folder) / "out",
                "bench",
                Retries(),
                on_progress=sample,
                collector=lambda job, outputs, output, name: Collected(f"{job.job_id}.json"),
            )
            start, cpu = time.perf_counter(), time.process_time()
            progress = manager.run()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        per_job = cpu / n * 1000
        print(
            f"{n:>7,} jobs: {per_job:.3f} ms of CPU per job (target 1 ms: {per_job:.2f} of budget), "
            f"{seconds / n * 1000:.3f} ms of wall time; collected {progress.counts['collected']:,}; "
            f"RSS {', '.join(f'{m:.0f}' for m in samples)} MB"
        )


def main() -> None:
    """Both sizes of the issue."""
    for n in (10_000, 100_000):
        bench(n)


if __name__ == "__main__":
    sys.exit(main())
