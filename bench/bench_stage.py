"""What do the stage steps wrapped around every package cost a tile? (issue 12; issue 16's goal is a
manager overhead close to zero.)

Run by hand::

    python bench/bench_stage.py              # the demo package on one demo tile, 3 rounds
    python bench/bench_stage.py --rounds 5

Each round runs cwltool twice on the same tile, interleaved, so a busy machine weighs on both alike:

- wrapped: what every job runs now, the run file ``cwl/stage-in`` → the package → ``cwl/stage-out``,
  the job file giving the STAC item hrefs;
- bare (the peer): the package alone, its Directory staged beforehand in this process (as the
  manager staged it before the stage steps existed) and not counted.

It prints wall time and CPU time (cwltool and all its children, from ``getrusage``) per run, and
the difference: what the two steps cost one tile.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ogc_upscaler.backends.cwltool import cwltool_command, tool_path
from ogc_upscaler.cwl import load_package, prepare, write_job_file
from ogc_upscaler.demo import ndvi_package, write_archive
from ogc_upscaler.stage import stage_items


def _run(command: list[str], folder: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env={**os.environ, **tool_path()}, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"cwltool failed in {folder}:\n{done.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = write_archive(root / "archive")
        items = [str(p) for p in sorted(archive.parent.glob("demo-s2-l2a/*/*.json"))[:2]]
        package = load_package(ndvi_package())
        values = {
            "items": items,
            "bbox": "700000,5320000,720000,5340000",
            "epsg": 32632,
            "resolution": 20,
            "tile_id": "T",
            "datetime": "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z",
        }
        prepared = prepare(package, root / "packages", "none", tool_path()["PATH"])
        figures: dict[str, list[tuple[float, float]]] = {"wrapped": [], "bare": []}
        for n in range(args.rounds):
            for kind in ("wrapped", "bare"):
                folder = root / f"{kind}-{n}"
                (folder / "tmp").mkdir(parents=True)
                job_file = write_job_file(package, values, folder)
                if kind == "wrapped":
                    entry = prepared.entry(job_file.staged)
                else:
                    job = yaml.safe_load(job_file.path.read_text())
                    job["items"] = {"class": "Directory", "location": str(stage_items(items, folder / "items"))}
                    job_file.path.write_text(json.dumps(job))
                    entry = package.entry
                figures[kind].append(_run([*cwltool_command(folder), entry, str(job_file.path)], folder))
    print(f"demo package, one 20 km tile (1000 x 1000 px), {args.rounds} rounds, interleaved")
    for kind, runs in figures.items():
        walls, cpus = zip(*runs, strict=True)
        print(f"  {kind:8s} wall {statistics.median(walls):6.2f} s   CPU {statistics.median(cpus):6.2f} s   (medians)")
    (ww, wc), (bw, bc) = ((statistics.median(v) for v in zip(*figures[k], strict=True)) for k in ("wrapped", "bare"))
    print(f"  the stage steps cost {ww - bw:+.2f} s wall, {wc - bc:+.2f} s CPU per tile ({(ww / bw - 1) * 100:+.0f} %)")


if __name__ == "__main__":
    main()
