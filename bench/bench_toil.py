"""Toil on SLURM: per-tile overhead against the package's own runtime, for 50 tiles, and the leaders' memory.

Run by hand, as root (it starts the test SLURM with scripts/slurm.sh when it is not up):
``python bench/bench_toil.py [--container podman]``. The campaign is the demo's NDVI over a larger
area (35 tiles x 2 months) through the Toil backend on SLURM in batches of 25; the baseline runs the
tool itself on the same tiles, two at a time (the node's cores), as SLURM would at best, without a
container. With ``--container podman`` every tile's tool runs in the package's image (set up by
scripts/podman.sh), so the overhead includes the container's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from ogc_upscaler.config import load_campaign
from ogc_upscaler.cwl import stage_items
from ogc_upscaler.demo import write_archive, write_campaign
from ogc_upscaler.run import run_campaign
from ogc_upscaler.store import JobStore, State

ROOT = Path(__file__).parents[1]
AOI = "11.0,47.5,14.0,48.6"  # 98 tiles of utm-20km, 35 of them inside the demo archive's footprint


def leaders_rss_mb() -> float:
    """Resident memory of every live Toil batch leader (MB)."""
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"ogc_upscaler.backends.toil_batch" not in (proc / "cmdline").read_bytes():
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def tool(inputs: dict, folder: Path) -> None:
    staged = stage_items(inputs["items"], folder / "items")
    subprocess.run(
        [str(Path(sys.executable).with_name("ndvi-tile")), "--items", str(staged), "--bbox", inputs["bbox"],
         "--epsg", str(inputs["epsg"]), "--resolution", str(inputs["resolution"]), "--tile-id", inputs["tile_id"],
         "--datetime", inputs["datetime"], "--out", str(folder)],
        check=True, capture_output=True,
    )  # fmt: skip


def podman_env() -> dict[str, str]:
    """Set up podman and the package's image (scripts/podman.sh); the variables that point podman at them."""
    script = str(ROOT / "scripts" / "podman.sh")
    subprocess.run(["bash", script, "setup"], check=True)
    exports = subprocess.run(["bash", script, "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())


def main() -> None:
    """Print seconds per tile both ways, their ratio, and the leaders' peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--container", choices=["none", "podman"], default="none")
    container = parser.parse_args().container
    if container == "podman":
        os.environ.update(podman_env())
    if subprocess.run(["bash", str(ROOT / "scripts" / "slurm.sh"), "status"], capture_output=True).returncode:
        subprocess.run(["bash", str(ROOT / "scripts" / "slurm.sh"), "start"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_campaign(folder)
        write_archive(folder / "archive")
        settings = yaml.safe_load(config.read_text())
        settings["aoi"] = AOI
        settings["time"] = {"start": "2024-05-01", "end": "2024-07-01", "step": "P1M"}  # 35 tiles x 2 = 70 jobs
        settings["backend"] = {
            "type": "toil",
            "parallel": 50,
            "container": container,
            "toil": {"batch_system": "slurm", "batch_size": 25},
        }
        config.write_text(yaml.safe_dump(settings))
        campaign = load_campaign(config)

        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], leaders_rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        result = run_campaign(campaign)
        managed = time.perf_counter() - start
        done.set()
        counts = {k: v for k, v in result.progress.counts.items() if v}
        n = counts.get("collected", 0)  # jobs of tiles outside the archive end as no_inputs, running nothing
        batches = len(list((campaign.backend.toil.shared / "batches").iterdir()))

        with JobStore.read(campaign.store) as store:
            jobs = [dict(job.inputs) for job in store.jobs(State.COLLECTED)]
        start = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda ij: tool(ij[1], folder / "direct" / str(ij[0])), enumerate(jobs)))
        direct = time.perf_counter() - start

        print(f"{n} tile jobs run ({counts}) through Toil on SLURM in {batches} batches (leaders), 2 cores,")
        print(f"  container: {container}:")
        print(f"  Toil on SLURM (plan, stage, batch, sbatch, cwltool, collect): {managed:.0f} s, "
              f"{managed / n:.2f} s per tile")  # fmt: skip
        print(f"  the tool alone, 2 at a time: {direct:.0f} s, {direct / len(jobs):.2f} s per tile")
        print(f"  overhead ratio: {managed / direct:.2f}x, {(managed - direct) / n:.2f} s per tile")
        print(f"  Toil leaders' resident memory, peak over all live leaders: {peak[0]:.0f} MB")


if __name__ == "__main__":
    main()
