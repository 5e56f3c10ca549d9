"""The cwltool backend's price per tile over the tool alone: cwltool started cold per job, and warm.

Goals (issue 16), on the demo's NDVI package: ≤ 10 % over the tool alone on a 20 km tile at 10 m
(2000 × 2000 px, 2 bands) and ≤ 0.3 s per tile on the demo's small tiles (20 km at 20 m, 1000 ×
1000 px). Three ways run the same jobs, one at a time, interleaved round by round:

- the tool alone: ``ndvi-tile`` on items staged beforehand (what a scientist's loop would run);
- cold: the backend with ``warm: false``, a runner and a new cwltool process per job;
- warm: the backend as configured by default, each job forked from the warm server.

Each backend job is submitted and waited for (its exit code on disk) by polling its folder every
10 ms; staging, cwltool and the stage steps count, collection does not (see bench_collect.py).
CPU is the machine's (``/proc/stat``: a forked job is not a child of the benchmark), so run it on an
otherwise idle machine; wall time is per tile.

Run by hand::

    python bench/bench_cwltool.py               # both tile sizes, 2 rounds
    python bench/bench_cwltool.py --rounds 3 --resolution 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ogc_upscaler.backends.base import JobRequest
from ogc_upscaler.backends.cwltool import CwltoolBackend
from ogc_upscaler.config import load_campaign
from ogc_upscaler.cwl import load_package
from ogc_upscaler.demo import write_archive, write_campaign
from ogc_upscaler.plan import plan
from ogc_upscaler.stage import stage_items
from ogc_upscaler.store import JobStore

TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy since boot (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / TICK


def jobs_of(folder: Path, resolution: float, tiles: int) -> tuple[Path, list[dict]]:
    """The demo campaign at ``resolution`` (one month), planned; its first ``tiles`` jobs' inputs."""
    config = write_campaign(folder)
    write_archive(folder / "archive")
    settings = yaml.safe_load(config.read_text())
    settings["time"] = {"start": "2024-05-01", "end": "2024-06-01", "step": "P1M"}
    settings["resolution"] = resolution
    config.write_text(yaml.safe_dump(settings))
    campaign = load_campaign(config)
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        jobs = [dict(job.inputs) for job in store.jobs()]
    return folder / "ndvi.cwl", [j for j in jobs if j.get("items")][:tiles]


def staged_for_the_tool(folder: Path, jobs: list[dict]) -> list[Path]:
    """Each job's items staged for the tool alone, beforehand (not timed: a loop would have them)."""
    return [stage_items(j["items"], folder / "direct" / str(i) / "items") for i, j in enumerate(jobs)]


def run_tool(folder: Path, jobs: list[dict], staged: list[Path]) -> None:
    """ndvi-tile on each job, as a scientist's loop would call it."""
    tool = str(Path(sys.executable).with_name("ndvi-tile"))
    for i, inputs in enumerate(jobs):
        out = folder / "direct" / str(i) / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        args = ["--items", str(staged[i]), "--bbox", inputs["bbox"], "--epsg", str(inputs["epsg"])]
        args += ["--resolution", str(inputs["resolution"]), "--tile-id", inputs["tile_id"]]
        subprocess.run(
            [tool, *args, "--datetime", inputs["datetime"], "--out", str(out)], check=True, capture_output=True
        )


def run_backend(backend: CwltoolBackend, jobs: list[dict], attempt: int) -> None:
    """Each job through the backend, one at a time: submitted, then waited for until its exit code is there."""
    for i, inputs in enumerate(jobs):
        remote = backend.submit(JobRequest(f"job-{i}", attempt, inputs))
        while not (Path(remote) / "exit_code").exists():
            time.sleep(0.01)
        code = (Path(remote) / "exit_code").read_text().strip()
        if code != "0":
            raise SystemExit(f"{remote}: exit {code}; see its stderr.log")


def measure(resolution: float, tiles: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Median wall and machine CPU seconds per tile of each way."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        package_file, jobs = jobs_of(folder, resolution, tiles)
        package = load_package(package_file)
        cold = CwltoolBackend(package, folder / "cold", slots=1, warm=False)
        warm = CwltoolBackend(package, folder / "warm", slots=1)
        staged = staged_for_the_tool(folder, jobs)
        ways = {
            "tool alone": lambda r: run_tool(folder, jobs, staged),
            "cwltool cold": lambda r: run_backend(cold, jobs, r),
            "cwltool warm": lambda r: run_backend(warm, jobs, r),
        }
        run_backend(warm, jobs[:1], 99)  # the server's start-up is paid once per campaign, not per tile
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        names = list(ways)
        for r in range(1, rounds + 1):
            for name in names[r % 3 :] + names[: r % 3]:  # a different one first each round
                wall, cpu = time.perf_counter(), machine_cpu()
                ways[name](r)
                figures[name].append(((time.perf_counter() - wall) / len(jobs), (machine_cpu() - cpu) / len(jobs)))
        warm.close()
        return {
            name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
            for name, got in figures.items()
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=6, help="jobs per way and round")
    parser.add_argument("--resolution", type=float, action="append", help="20 (demo tiles) and/or 10 (20 km at 10 m)")
    args = parser.parse_args()
    for resolution in args.resolution or [20.0, 10.0]:
        px = int(20_000 / resolution)
        got = measure(resolution, args.tiles, args.rounds)
        print(
            f"{args.tiles} tiles of {px} x {px} px ({resolution:g} m), one at a time, median of {args.rounds} rounds:"
        )
        tool_wall, tool_cpu = got["tool alone"]
        for name, (wall, cpu) in got.items():
            print(
                f"  {name:13s} {wall:6.2f} s wall  {cpu:6.2f} s CPU per tile   over the tool: "
                f"{wall - tool_wall:+.2f} s wall ({(wall / tool_wall - 1) * 100:+.0f} %), {cpu - tool_cpu:+.2f} s CPU"
            )
        over = got["cwltool warm"][0] - tool_wall
        goal = "≤ 10 %" if resolution <= 10 else "≤ 0.3 s"
        share = (over / tool_wall) / 0.10 if resolution <= 10 else over / 0.3
        print(f"  warm over the tool: {over:+.2f} s, {over / tool_wall * 100:+.0f} % (goal {goal}: {share:.2f} of it)")
        cold_over = got["cwltool cold"][0] - tool_wall
        print(f"  warm / cold overhead: {over / cold_over:.2f}" if cold_over > 0 else "")


if __name__ == "__main__":
    main()
