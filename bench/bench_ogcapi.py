"""The OGC API client at scale: jobs per second submitted and tracked against a fast loopback
server, HTTP requests per job, and the client's memory at 10,000 jobs.

Run by hand: ``python bench/bench_ogcapi.py``. The server (``tests/servers/faulty.py`` with its
faults off) finishes every job at once, so the figures are the client's and the manager's own.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "servers"))

from faulty import FaultyServer

from ogc_upscaler.backends.ogcapi import OgcApiBackend
from ogc_upscaler.campaign import Retries
from ogc_upscaler.collect import Collected
from ogc_upscaler.manager import Manager
from ogc_upscaler.store import JobSpec, JobStore, TileRecord

N = 10_000


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6


def main() -> None:
    """Run N executions through the manager and print the figures."""
    server = FaultyServer(faults=False, run_seconds=0.0).start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with JobStore.open(folder / "jobs.sqlite") as store:
            store.put_tiles([TileRecord("T", 32632, (0.0, 0.0, 1.0, 1.0), b"", 1.0)])
            window = ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
            store.insert(JobSpec(f"T_{i}", "T", *window, "default", "{}", f'{{"name": "n{i}"}}', "h") for i in range(N))
        samples: list[float] = []

        def sample(progress) -> None:
            if progress.finished_this_run >= len(samples) * N / 4 and len(samples) < 5:
                samples.append(rss_mb())

        backend = OgcApiBackend(server.url, "echo", folder / "jobs", slots=32)
        backend.poll_interval = 0.05
        with JobStore.open(folder / "jobs.sqlite") as store:
            manager = Manager(
                store,
                backend,
                folder / "out",
                "bench",
                Retries(),
                on_progress=sample,
                collector=lambda job, outputs, output, name: Collected(f"{job.job_id}.json"),
            )
            start = time.perf_counter()
            progress = manager.run()
            seconds = time.perf_counter() - start
    server.stop()
    requests = sum(server.requests.values())
    print(
        f"{progress.counts['collected']:,} of {N:,} executions collected in {seconds:.1f} s: "
        f"{N / seconds:.0f} jobs/s with 32 in flight"
    )
    print(f"HTTP requests per job: {requests / N:.2f} ({dict(server.requests)}; {dict(server.routes)})")
    print(f"client RSS at 0/25/50/75/100 %: {', '.join(f'{m:.0f}' for m in samples)} MB")


if __name__ == "__main__":
    main()
