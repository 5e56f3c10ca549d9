"""How fast does ``ogc-upscaler serve`` listen with many application packages? Goal (issue 12): 12
packages, listening within 5 s.

Run by hand::

    python bench/bench_serve.py              # 12 packages, cold cache then warm, 2 rounds each
    python bench/bench_serve.py --packages 24 --rounds 3

The packages are the real-pattern test packages (``tests/packages/ecosystem``), each written again under
its own process id into a fresh folder, so each is one process of its own. Each round starts
``ogc-upscaler serve`` as a subprocess and measures the time until ``/processes`` lists every package
(wall time; and CPU time of the server and all its children, from ``getrusage`` once it is stopped, so
it includes the short while between listing and stopping):

- cold: an empty package cache (``OGC_UPSCALER_CACHE`` points at a fresh folder): every package is
  loaded and validated by cwltool (in parallel processes);
- warm: the cache of the cold round: packages whose files are unchanged are read from it.

Cold and warm rounds are interleaved, so a busy machine weighs on both alike. There is no peer here:
pygeoapi's own CWL processes (ZOO, ADES) are not installable on this machine.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ECOSYSTEM = ROOT / "tests" / "packages" / "ecosystem"
PATTERNS = ("platform-style.cwl", "image-required.cwl", "expressions.cwl", "packed.cwl", "types.cwl")


def write_packages(folder: Path, count: int) -> list[str]:
    """``count`` packages in ``folder``, cycling through the patterns, each with its own process id."""
    ids = []
    for n in range(count):
        source = ECOSYSTEM / PATTERNS[n % len(PATTERNS)]
        text = source.read_text()
        ident = f"p{n:02d}"
        if source.name == "packed.cwl":
            text = text.replace('"#main', f'"#{ident}')
        else:
            first = re.search(r"^    id: (\S+)$", text, re.M)
            assert first, source
            text = text.replace(f"id: {first[1]}\n", f"id: {ident}\n", 1)
            text = text.replace(f"#{first[1]}/", f"#{ident}/")
        (folder / f"{ident}.cwl").write_text(text)
        ids.append(ident)
    return ids


def serve_once(packages: Path, ids: list[str], cache: Path, state: Path) -> tuple[float, float]:
    """Start serve; the wall and CPU seconds until /processes lists every package; then stop it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("ogc-upscaler")
    env = {**os.environ, "OGC_UPSCALER_CACHE": str(cache)}
    command = [str(exe), "serve", "--state", str(state), "--port", str(port), "--packages", str(packages)]
    started, before = time.perf_counter(), _children_cpu()
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                listed = requests.get(f"http://127.0.0.1:{port}/processes?f=json&limit=100", timeout=5).json()
                if set(ids) <= {p["id"] for p in listed["processes"]}:
                    wall = time.perf_counter() - started
                    break
            except (requests.ConnectionError, requests.Timeout, ValueError, KeyError):
                pass
            if server.poll() is not None:
                raise SystemExit(f"serve exited with {server.returncode}")
            if time.perf_counter() - started > 600:
                raise SystemExit("serve did not list the packages within 600 s")
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return wall, _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    packages = work / "packages"
    packages.mkdir()
    ids = write_packages(packages, args.packages)
    figures: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
    for n in range(args.rounds):
        cold_cache = work / f"cache-{n}"
        figures["cold"].append(serve_once(packages, ids, cold_cache, work / f"state-cold-{n}"))
        figures["warm"].append(serve_once(packages, ids, cold_cache, work / f"state-warm-{n}"))
    print(f"serve with {args.packages} packages, until /processes lists them all ({args.rounds} rounds each)")
    for kind, runs in figures.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"  {kind}: wall {statistics.median(walls):.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}),"
            f" CPU {statistics.median(cpus):.2f} s"
        )
    warm = statistics.median(w for w, _ in figures["warm"])
    print(
        f"  goal: listening within 5 s: warm {warm:.2f} s ({warm / 5:.0%} of the goal); "
        f"cold/warm {statistics.median(w for w, _ in figures['cold']) / warm:.1f}x"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
