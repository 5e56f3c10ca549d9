"""Does ogc-upscaler run each job exactly once on a real OGC API – Processes server, when answers are
lost and the manager is SIGKILLed? Measured from outside.

Run by hand::

    python bench/bench_exactly_once.py --server pygeoapi            # pygeoapi 0.21, TinyDB jobs
    python bench/bench_exactly_once.py --server endpoint            # our endpoint, cwltool per job
    python bench/bench_exactly_once.py --server pygeoapi --kills 0 --lose 0.08
    python bench/bench_exactly_once.py --server pygeoapi --backend-setting on_doubt=resubmit

To measure another copy of ``ogc_upscaler`` than the one installed (say the last commit, while the
working tree is being edited: ``git archive HEAD | tar -x -C /tmp/head``), put it first on
``PYTHONPATH=/tmp/head``: the bench, the manager runs and our endpoint's workers all import it
(the first line printed, ``code``, says which was measured).

A server that counts its executions per job (``tests/servers/counting.py``: the ``count``
process appends one line per execution to a ledger) runs behind ``tests/servers/fault_proxy.py``,
which loses the answer to ``--lose`` of the POSTs that create or start a job after the server has
acted on them. A campaign of about ``--jobs`` jobs (a 1 km grid ``EPSG:32632:1000`` over a thin
bbox, one window; each job's ``name`` input is its job id) is planned for the ``ogcapi`` backend
pointed at the proxy, then ``ogc-upscaler run`` runs as a subprocess and is SIGKILLed ``--kills``
times, each kill once a random share of the jobs has ended and some job has moved since the last
kill, and started again until it exits by itself with every job terminal (or ``--deadline``).

Printed at the end: jobs planned, lost (not terminal, or missing from the store), run twice or
more on the server (from the ledger), executions, final states (read with sqlite3 from the store),
lost answers injected, kills, wall and CPU time. Everything stays in the work folder (``--workdir``,
default a fresh folder in /tmp): config, store, ledger, logs of each run and of the server,
``figures.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "servers"))

from counting import counting_endpoint, counting_pygeoapi, read_ledger  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

TERMINAL = ("collected", "failed", "cancelled", "no_inputs", "in_doubt")  # in doubt: settled, for a person
GRID = "EPSG:32632:1000"
RESOLUTION = 20
#: The thin bbox's fixed edges (degrees): south, north, west; the east edge is searched.
SOUTH, NORTH, WEST = 45.0, 45.004, 9.0
CLI = Path(sys.executable).with_name("ogc-upscaler")


@dataclass
class Figures:
    """What one campaign measured."""

    server: str
    command: str
    code: str = ""
    jobs_planned: int = 0
    jobs_lost: int = 0
    jobs_not_terminal: int = 0
    jobs_missing: int = 0
    jobs_run_twice_or_more: int = 0
    jobs_run_twice_after_lost_answer: int = 0
    jobs_never_run: int = 0
    collected_never_run: int = 0
    failed_but_ran: int = 0
    executions: int = 0
    most_runs_of_one_job: int = 0
    server_jobs_created: int = 0
    server_jobs_active: int = 0
    states: dict[str, int] = field(default_factory=dict)
    in_doubt: int = 0
    lost_answers: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    upstream_ms: dict[str, float] = field(default_factory=dict)
    cut_short: int = 0
    kills: int = 0
    runs: int = 0
    restarts_after_exit: int = 0
    exit_codes: list[int] = field(default_factory=list)
    finished: bool = False
    wall_s: float = 0.0
    cpu_managers_s: float = 0.0
    cpu_server_s: float = 0.0
    cpu_bench_s: float = 0.0
    cpu_machine_s: float = 0.0


# -- the campaign -------------------------------------------------------------------------------


def thin_bbox(jobs: int) -> str:
    """A bbox W,S,E,N whose grid cells number ``jobs`` (or as near as the grid allows)."""
    from ogc_upscaler.aoi import load_aoi
    from ogc_upscaler.grid import grid_from_spec

    grid = grid_from_spec(GRID, resolution=RESOLUTION)

    def tiles(east: float) -> int:
        return len(grid.tiles(load_aoi(f"{WEST},{SOUTH},{east},{NORTH}")))

    low, high = WEST + 1e-4, WEST + 0.02 * jobs + 0.1
    while high - low > 1e-7:
        middle = (low + high) / 2
        low, high = (middle, high) if tiles(middle) < jobs else (low, middle)
    return f"{WEST},{SOUTH},{high + 1e-7:.7f},{NORTH}"  # rounded up: the cell just reached stays in


def write_config(folder: Path, args: argparse.Namespace, url: str) -> Path:
    """The campaign's config: ``count`` on the ogcapi backend behind the proxy, one job per tile."""
    inputs: dict[str, Any] = {"name": "{job_id}", "seconds": args.seconds}
    if args.server == "endpoint":
        inputs |= {"bbox": "{tile.bbox}", "epsg": "{tile.epsg}"}
    backend: dict[str, Any] = {"type": "ogcapi", "url": url, "process": "count", "parallel": args.parallel}
    for setting in args.backend_setting:
        key, _, value = setting.partition("=")
        backend[key.strip()] = yaml.safe_load(value)
    config = {
        "name": "exactly-once",
        "aoi": thin_bbox(args.jobs),
        "grid": GRID,
        "resolution": RESOLUTION,
        "time": {"windows": [{"start": "2024-01-01", "end": "2024-01-02"}]},
        "process": {"inputs": inputs},
        "backend": backend,
        "retries": {
            "attempts": args.attempts,
            "backoff": "PT2S",
            "max_backoff": "PT30S",
            "time_limit": "PT30M",
            **({"on_doubt": args.on_doubt} if args.on_doubt else {}),
        },
        "store": "campaign.sqlite",
        "workdir": "runs",
        "output": "catalog",
    }
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- the store, read from outside -----------------------------------------------------------------


class Store:
    """The campaign's SQLite store, read with sqlite3 only (never the manager's lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def states(self) -> dict[str, int]:
        """Jobs per state."""
        return dict(self._query("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state"))

    def job_ids(self, state: str | None = None) -> set[str]:
        """Every job's id, or those in ``state``."""
        where = f" WHERE state = '{state}'" if state else ""
        return {row[0] for row in self._query(f"SELECT job_id FROM jobs{where}")}

    def terminal(self) -> int:
        """Jobs in a terminal state."""
        marks = ",".join(f"'{s}'" for s in TERMINAL)
        return self._query(f"SELECT count(*) FROM jobs WHERE state IN ({marks})")[0][0]

    def last_move(self) -> str:
        """The latest transition's time."""
        rows = self._query("SELECT max(updated_at) FROM jobs")
        return (rows[0][0] if rows else None) or ""


# -- the manager, run and killed ---------------------------------------------------------------


class Driver:
    """Runs ``ogc-upscaler run`` again and again, SIGKILLs it ``kills`` times, until it ends by itself."""

    def __init__(self, config: Path, store: Store, logs: Path, kills: int, deadline: float, rng: random.Random) -> None:
        self.config = config
        self.store = store
        self.logs = logs
        self.kills_wanted = kills
        self.deadline = deadline
        self.rng = rng
        self.kills = 0
        self.runs = 0
        self.restarts_after_exit = 0
        self.exit_codes: list[int] = []

    def thresholds(self, planned: int) -> list[int]:
        """Terminal-job counts at which to kill: one random point in each of ``kills`` slices of the run."""
        n = self.kills_wanted
        return [int(planned * 0.95 * self.rng.uniform(i / n, (i + 1) / n)) for i in range(n)]

    def drive(self, planned: int) -> bool:
        """Run to the end; True if ``run`` exited by itself with every job terminal."""
        pending = self.thresholds(planned)
        mark = self.store.last_move()
        while time.monotonic() < self.deadline:
            process = self._start()
            try:
                while process.poll() is None and time.monotonic() < self.deadline:
                    if pending and self.store.terminal() >= pending[0] and self.store.last_move() > mark:
                        time.sleep(self.rng.uniform(0.0, 1.0))  # a random instant, not just after a transition
                        if process.poll() is None:
                            os.kill(process.pid, signal.SIGKILL)  # the manager alone: ogcapi starts no children
                            self.kills += 1
                        pending.pop(0)
                        mark = self.store.last_move()
                        break
                    time.sleep(0.1)
            finally:
                if process.poll() is None:  # past the deadline, or the bench itself is stopped
                    process.kill()
                self.exit_codes.append(process.wait())
            if process.returncode == -signal.SIGKILL:
                continue
            if self.store.terminal() == planned:
                return True
            self.restarts_after_exit += 1
            time.sleep(1.0)
        return False

    def _start(self) -> subprocess.Popen[bytes]:
        self.runs += 1
        with (self.logs / f"run-{self.runs:03d}.log").open("wb") as log:
            return subprocess.Popen(
                [str(CLI), "run", str(self.config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )


# -- the server, from outside -------------------------------------------------------------------


def server_jobs(url: str) -> list[dict[str, Any]]:
    """Every job the upstream server lists (paged)."""
    jobs: list[dict[str, Any]] = []
    while True:
        with urllib.request.urlopen(f"{url}/jobs?f=json&limit=500&offset={len(jobs)}", timeout=60) as reply:
            page = json.loads(reply.read()).get("jobs") or []
        jobs += page
        if len(page) < 500:
            return jobs


def quiesce(url: str, timeout: float) -> list[dict[str, Any]]:
    """Wait until the server runs nothing (orphaned duplicates finish too); its jobs."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = server_jobs(url)
        if not any(j.get("status") in ("accepted", "running") for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(1.0)


def machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (every process, not only ours)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the measurement ----------------------------------------------------------------------------


def code() -> str:
    """Where the ogc_upscaler that runs comes from (a copy put first on PYTHONPATH is measured instead)."""
    import importlib.util

    spec = importlib.util.find_spec("ogc_upscaler")
    return str(Path(spec.origin).parent) if spec and spec.origin else "?"


def serving(kind: str, folder: Path, ledger: Path) -> AbstractContextManager[str]:
    """The counting server of ``kind``: its upstream URL while the block runs."""
    return (counting_pygeoapi if kind == "pygeoapi" else counting_endpoint)(folder / "server", ledger)


def measure(args: argparse.Namespace, folder: Path) -> Figures:
    """Plan, run with kills behind the lossy proxy, and count."""
    figures = Figures(server=args.server, command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), code=code())
    ledger = folder / "ledger.txt"
    rng = random.Random(args.seed)
    wall, machine, bench = time.monotonic(), machine_cpu_s(), self_cpu_s()
    with serving(args.server, folder, ledger) as upstream:
        with FaultProxy(upstream, lose_answers=args.lose, seed=args.seed) as proxy:
            config = write_config(folder, args, proxy.url)
            store = Store(folder / "campaign.sqlite")
            plan = subprocess.run([str(CLI), "plan", str(config)], capture_output=True, text=True)
            (folder / "plan.log").write_text(plan.stdout + plan.stderr)
            if plan.returncode != 0:
                raise SystemExit(f"ogc-upscaler plan failed:\n{plan.stdout}{plan.stderr}")
            planned = store.job_ids()
            figures.jobs_planned = len(planned)
            logs = folder / "logs"
            logs.mkdir(exist_ok=True)
            driver = Driver(config, store, logs, args.kills, time.monotonic() + args.deadline, rng)
            cpu_before = children_cpu_s()  # while it drives, our only children are the runs
            figures.finished = driver.drive(len(planned))
            figures.cpu_managers_s = children_cpu_s() - cpu_before
            jobs = quiesce(upstream, timeout=300.0 + 4 * args.seconds)
            figures.server_jobs_created = len(jobs)
            figures.server_jobs_active = sum(j.get("status") in ("accepted", "running") for j in jobs)
            lost = proxy.lost_answers
            figures.lost_answers = dict(proxy.lost)
            figures.requests = dict(sorted(proxy.requests.items()))
            figures.cut_short = sum(proxy.cut_short.values())
            figures.upstream_ms = {r: 1000 * proxy.upstream_seconds[r] / n for r, n in figures.requests.items()}
        cpu_before = children_cpu_s()  # the server is reaped as the block ends
    figures.cpu_server_s = children_cpu_s() - cpu_before
    figures.wall_s = time.monotonic() - wall
    figures.cpu_machine_s = machine_cpu_s() - machine
    figures.cpu_bench_s = self_cpu_s() - bench
    count(figures, store, planned, read_ledger(ledger), lost)
    figures.kills, figures.runs = driver.kills, driver.runs
    figures.restarts_after_exit, figures.exit_codes = driver.restarts_after_exit, driver.exit_codes
    return figures


def count(figures: Figures, store: Store, planned: set[str], ledger: Counter[str], lost: list[Any]) -> None:
    """The figures that come from the store, the ledger and the proxy's list of lost answers."""
    states = store.states()
    figures.states = states
    figures.in_doubt = states.get("in_doubt", 0)
    figures.jobs_not_terminal = sum(n for s, n in states.items() if s not in TERMINAL)
    figures.jobs_missing = len(planned - store.job_ids())
    figures.jobs_lost = figures.jobs_not_terminal + figures.jobs_missing
    twice = {name for name, n in ledger.items() if n >= 2}
    figures.jobs_run_twice_or_more = len(twice)
    figures.jobs_run_twice_after_lost_answer = len(twice & set(_names(lost)))
    figures.jobs_never_run = len(planned - set(ledger))
    figures.executions = sum(ledger.values())
    figures.most_runs_of_one_job = max(ledger.values(), default=0)
    figures.collected_never_run = len(store.job_ids("collected") - set(ledger))
    figures.failed_but_ran = len(store.job_ids("failed") & set(ledger))


def _names(lost: list[Any]) -> Iterator[str]:
    for answer in lost:
        try:
            yield json.loads(answer.request)["inputs"]["name"]
        except (ValueError, KeyError, TypeError):
            continue


def show(f: Figures, folder: Path) -> None:
    """Print the figures."""
    states = ", ".join(f"{s} {n}" for s, n in f.states.items())
    print(f"exactly once against {f.server}: {f.command}")
    print(f"  code                         {f.code}")
    print(f"  jobs planned                 {f.jobs_planned}")
    lost_jobs = f"not terminal {f.jobs_not_terminal}, missing {f.jobs_missing}"
    print(f"  jobs lost                    {f.jobs_lost} ({lost_jobs})")
    print(
        f"  jobs run twice or more       {f.jobs_run_twice_or_more} "
        f"({f.jobs_run_twice_after_lost_answer} of them after a lost answer; most runs of one job "
        f"{f.most_runs_of_one_job})"
    )
    print(
        f"  executions                   {f.executions} (server jobs created {f.server_jobs_created}, still active "
        f"{f.server_jobs_active}; jobs never run {f.jobs_never_run}, of them collected {f.collected_never_run})"
    )
    print(f"  final states                 {states} (failed ones that ran on the server: {f.failed_but_ran})")
    print(f"  in_doubt                     {f.in_doubt}")
    lost = ", ".join(f"{route} {n}" for route, n in f.lost_answers.items()) or "none"
    print(f"  lost answers injected        {sum(f.lost_answers.values())} ({lost})")
    print(f"  kills done                   {f.kills} (runs {f.runs}, restarts after an exit {f.restarts_after_exit})")
    print(f"  finished by itself           {'yes' if f.finished else 'NO (deadline)'}")
    print(f"  wall                         {f.wall_s:.0f} s")
    print(
        f"  CPU                          managers {f.cpu_managers_s:.0f} s, server {f.cpu_server_s:.0f} s "
        f"(as reaped), bench+proxy {f.cpu_bench_s:.0f} s; machine {f.cpu_machine_s:.0f} s (every process on it)"
    )
    requests = ", ".join(f"{r} {n}" for r, n in f.requests.items())
    print(f"  requests via the proxy       {requests} (cut short by a kill, not forwarded: {f.cut_short})")
    print(f"  upstream mean ms per request {', '.join(f'{r} {ms:.0f}' for r, ms in f.upstream_ms.items())}")
    print(f"  work folder                  {folder}")


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("pygeoapi", "endpoint"), default="pygeoapi")
    parser.add_argument("--jobs", type=int, default=206, help="jobs to plan (about; default 206)")
    parser.add_argument("--lose", type=float, default=0.08, help="share of job-creating POSTs whose answer is lost")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the manager (default 20)")
    parser.add_argument("--seconds", type=float, default=1.0, help="each execution's sleep (default 1)")
    parser.add_argument("--parallel", type=int, default=8, help="the backend's parallel (default 8)")
    parser.add_argument("--attempts", type=int, default=3, help="retries.attempts (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the proxy's faults and the kill moments")
    parser.add_argument("--on-doubt", choices=("wait", "resubmit", "fail"), default=None, help="retries.on_doubt")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds before giving up (default 1800)")
    parser.add_argument(
        "--backend-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra backend setting (value parsed as YAML), e.g. on_doubt=resubmit; repeatable",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="work folder (default: a new one in /tmp)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Measure once and print."""
    args = arguments(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):  # stop cleanly: the run killed, the server stopped
        signal.signal(sig, lambda number, _: sys.exit(128 + number))
    folder = args.workdir or Path(tempfile.mkdtemp(prefix=f"exactly-once-{args.server}-"))
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty: give a new --workdir")
    figures = measure(args, folder.resolve())
    (folder / "figures.json").write_text(json.dumps(asdict(figures), indent=2))
    show(figures, folder)


if __name__ == "__main__":
    main()
