"""How fast does the command line start? Goals (issue 13), each as a ratio measured in one run:

- ``import ogc_upscaler`` ≤ 2× ``import pystac``;
- ``ogc-upscaler --help`` ≤ 0.5× ``rio --help`` (≤ 0.3 s on an idle machine);
- ``ogc-upscaler grid`` on 27 country-like polygons (EU27's class of input: neighbours sharing detailed
  borders, MultiPolygon countries with islands) with ``laea-20km``, GeoJSON written: ≤ 1 s whole command.

Run by hand::

    python bench/bench_startup.py             # 5 rounds, interleaved
    python bench/bench_startup.py --rounds 9

Each figure is the median over the rounds of a fresh process (wall time, and CPU time of the process and
its children from ``getrusage``); the commands are interleaved so a busy machine weighs on all alike.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def countries(path: Path, n_x: int = 9, n_y: int = 3, vertices: int = 400) -> Path:
    """27 country-like features over Europe's extent: a 9 × 3 block of neighbours whose shared borders are
    wavy lines (the same vertices on both sides), every third one a MultiPolygon with two islands."""
    west, south, east, north = -10.0, 42.0, 28.0, 60.0
    dx, dy = (east - west) / n_x, (north - south) / n_y

    def wavy(a: tuple[float, float], b: tuple[float, float]) -> list[list[float]]:
        line = []
        for k in range(vertices + 1):
            t = k / vertices
            x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
            wobble = 0.2 * math.sin(9 * math.pi * t) * math.sin(math.pi * t)
            nx, ny = -(b[1] - a[1]), b[0] - a[0]
            norm = math.hypot(nx, ny)
            line.append([round(x + wobble * nx / norm, 6), round(y + wobble * ny / norm, 6)])
        return line

    def edge(a: tuple[float, float], b: tuple[float, float]) -> list[list[float]]:
        key = (min(a, b), max(a, b))  # each border drawn once, then walked either way: shared exactly
        line = edges.setdefault(key, wavy(*key))
        return line if key[0] == a else line[::-1]

    edges: dict[tuple[tuple[float, float], tuple[float, float]], list[list[float]]] = {}
    features = []
    for i in range(n_x):
        for j in range(n_y):
            corners = [(west + i * dx, south + j * dy), (west + (i + 1) * dx, south + j * dy)]
            corners += [(west + (i + 1) * dx, south + (j + 1) * dy), (west + i * dx, south + (j + 1) * dy)]
            ring = []
            for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
                ring += edge(a, b)[:-1]
            ring.append(ring[0])
            geometry: dict = {"type": "Polygon", "coordinates": [ring]}
            if (i + j) % 3 == 0:
                cx, cy = west + (i + 0.5) * dx, south + j * dy + 0.5 * dy
                islands = [
                    [[[cx + s, cy + 0.1], [cx + s + 0.3, cy + 0.1], [cx + s + 0.3, cy + 0.3], [cx + s, cy + 0.1]]]
                    for s in (40.0, 41.0)
                ]
                geometry = {"type": "MultiPolygon", "coordinates": [[ring], *islands]}
            features.append({"type": "Feature", "properties": {"n": len(features)}, "geometry": geometry})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _time(command: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # as an installed package is: compiled (an editable install under PYTHONDONTWRITEBYTECODE=1 would
    # compile every changed module on every start, 40-65 ms of the grid command measured here)
    for package in ("ogc_upscaler", "pystac", "rasterio", "click", "rich"):
        folder = Path(__import__(package).__file__).parent
        compileall.compile_dir(folder, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        aoi = countries(Path(tmp) / "countries.geojson")
        commands = {
            "import pystac": [sys.executable, "-c", "import pystac"],
            "import ogc_upscaler": [sys.executable, "-c", "import ogc_upscaler"],
            "rio --help": [str(BIN / "rio"), "--help"],
            "ogc-upscaler --help": [str(BIN / "ogc-upscaler"), "--help"],
            "grid EU27-like": [
                str(BIN / "ogc-upscaler"),
                "grid",
                "--aoi",
                str(aoi),
                "--grid",
                "laea-20km",
                "-o",
                f"{tmp}/tiles.geojson",
            ],
        }
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                figures[name].append(_time(command))
        tiles = len(json.loads(Path(f"{tmp}/tiles.geojson").read_text())["features"])
    median = {n: tuple(statistics.median(v) for v in zip(*runs, strict=True)) for n, runs in figures.items()}
    for name, (wall, cpu) in median.items():
        print(f"{name:22s} wall {wall:6.3f} s   CPU {cpu:6.3f} s")
    ratio = median["import ogc_upscaler"][1] / median["import pystac"][1]
    print(f"import ogc_upscaler / import pystac (CPU): {ratio:.2f}  (goal ≤ 2)")
    ratio = median["ogc-upscaler --help"][1] / median["rio --help"][1]
    print(f"ogc-upscaler --help / rio --help (CPU):    {ratio:.2f}  (goal ≤ 0.5)")
    wall, cpu = median["grid EU27-like"]
    print(f"grid on 27 country-like polygons: {tiles:,} tiles, {wall:.2f} s wall, {cpu:.2f} s CPU (goal ≤ 1 s)")


if __name__ == "__main__":
    main()
