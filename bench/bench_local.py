"""Local backend overhead: wall time per tile through the manager and cwltool, against the tool alone.

Run by hand: ``python bench/bench_local.py``. Both run the demo's NDVI package on the same
tiles, one at a time; the ratio is the price of cwltool, staging, tracking and collection.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ogc_upscaler.config import load_campaign
from ogc_upscaler.demo import write_archive, write_campaign
from ogc_upscaler.run import run_campaign
from ogc_upscaler.stage import stage_items
from ogc_upscaler.store import JobStore


def main() -> None:
    """Print seconds per tile both ways and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_campaign(folder)
        write_archive(folder / "archive")
        settings = yaml.safe_load(config.read_text())
        settings["time"] = {"start": "2024-05-01", "end": "2024-06-01", "step": "P1M"}
        settings["backend"]["parallel"] = 1
        config.write_text(yaml.safe_dump(settings))
        campaign = load_campaign(config)

        start = time.perf_counter()
        result = run_campaign(campaign)
        managed = time.perf_counter() - start
        n = result.progress.counts["collected"]

        with JobStore.read(campaign.store) as store:
            jobs = [dict(job.inputs) for job in store.jobs()]
        start = time.perf_counter()
        for i, inputs in enumerate(jobs):
            staged = stage_items(inputs["items"], folder / "direct" / str(i) / "items")
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("ndvi-tile")),
                    "--items",
                    str(staged),
                    "--bbox",
                    inputs["bbox"],
                    "--epsg",
                    str(inputs["epsg"]),
                    "--resolution",
                    str(inputs["resolution"]),
                    "--tile-id",
                    inputs["tile_id"],
                    "--datetime",
                    inputs["datetime"],
                    "--out",
                    str(folder / "direct" / str(i)),
                ],
                check=True,
                capture_output=True,
            )
        direct = time.perf_counter() - start
        print(f"{n} tiles of 1000 x 1000 px, one at a time:")
        print(f"  through the manager and cwltool: {managed / n:.2f} s per tile (plan, stage, run, collect)")
        print(f"  the tool called directly:        {direct / len(jobs):.2f} s per tile (stage, run)")
        print(f"  overhead ratio: {managed / direct:.2f}x, {(managed - direct) / n:.2f} s per tile")


if __name__ == "__main__":
    main()
