"""The backend contract (tests/backends/contract.py) run against every backend that can run here:
in-process, cwltool, Toil on one machine, and OGC API – Processes on pygeoapi and on our endpoint."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from ogc_upscaler.backends.base import Backend, JobRequest
from ogc_upscaler.backends.cwltool import CwltoolBackend
from ogc_upscaler.backends.inprocess import InProcessBackend
from ogc_upscaler.backends.ogcapi import OgcApiBackend
from ogc_upscaler.backends.registry import parse
from ogc_upscaler.backends.toil import ToilBackend
from ogc_upscaler.cwl import Package, load_package

from ..conftest import PACKAGES
from .contract import Contract, Harness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flaky() -> Package:
    return load_package(PACKAGES / "flaky.cwl")


class InProcess(Harness):
    """A Python function called at submission; the manager's own process is the backend, so a "restart"
    of the manager within that process keeps it."""

    runs_detached = False

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.instance = InProcessBackend(self._work, slots=4)

    def _work(self, job: JobRequest) -> None:
        self.calls[job.job_id] += 1
        time.sleep(job.inputs["seconds"])
        if job.inputs["broken"]:
            raise ValueError(f"job {job.job_id} is broken")

    def backend(self) -> Backend:
        return self.instance

    def request(self, job_id: str, attempt: int = 1, *, seconds: float = 0.0, broken: bool = False) -> JobRequest:
        return JobRequest(job_id, attempt, {"seconds": seconds, "broken": broken})

    def executions(self, job_id: str) -> int:
        return self.calls[job_id]

    def running(self, job_id: str) -> bool:
        return False


class FlakyPackage(Harness):
    """tests/packages/flaky.cwl: it counts its runs per tile in ``state`` and sleeps as asked."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.state = folder / "state"

    def request(self, job_id: str, attempt: int = 1, *, seconds: float = 0.0, broken: bool = False) -> JobRequest:
        inputs = {
            "tile_id": job_id,
            "bbox": "not,a,bbox,at all" if broken else "600000,5300000,600640,5300640",
            "epsg": 32632,
            "state_dir": str(self.state),
            "fail_times": 0,
            "broken_tile": "none",
            "seconds": float(seconds),
        }
        return JobRequest(job_id, attempt, inputs)

    def executions(self, job_id: str) -> int:
        counter = self.state / f"{job_id}.count"
        return int(counter.read_text()) if counter.exists() else 0

    def running(self, job_id: str) -> bool:
        found = subprocess.run(["pgrep", "-f", f"flaky.py {job_id} "], capture_output=True, text=True)
        return bool(found.stdout.strip())


class Cwltool(FlakyPackage):
    """Each job forked from the warm cwltool server (the default), or with ``warm`` False a cwltool of its own."""

    def __init__(self, folder: Path, package: Package, *, warm: bool = True) -> None:
        super().__init__(folder)
        self.package = package
        self.warm = warm

    def backend(self) -> Backend:
        return CwltoolBackend(self.package, self.folder / "jobs", slots=4, warm=self.warm)


class ToilSingleMachine(FlakyPackage):
    def __init__(self, folder: Path, package: Package) -> None:
        super().__init__(folder)
        self.package = package
        self.settings = parse({"type": "toil", "parallel": 4, "toil": {"batch_size": 4}}).resolve(folder, folder)

    def backend(self) -> Backend:
        backend = ToilBackend(self.package, self.settings)
        backend.linger = 0.0  # a lone tile starts its batch at once
        return backend


class TestInProcess(Contract):
    @pytest.fixture
    def harness(self) -> Harness:
        return InProcess()


class TestCwltool(Contract):
    @pytest.fixture
    def harness(self, tmp_path, flaky) -> Harness:
        return Cwltool(tmp_path, flaky)


class TestCwltoolCold(Contract):
    @pytest.fixture
    def harness(self, tmp_path, flaky) -> Harness:
        return Cwltool(tmp_path, flaky, warm=False)


class TestToilSingleMachine(Contract):
    @pytest.fixture
    def harness(self, tmp_path, flaky) -> Harness:
        return ToilSingleMachine(tmp_path, flaky)


@pytest.fixture(scope="module")
def counting_pygeoapi(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """pygeoapi 0.21 with the ``count`` process (tests/servers/counting.py) on loopback: its URL and ledger."""
    from ..servers.counting import counting_pygeoapi as serving

    folder = tmp_path_factory.mktemp("counting-pygeoapi")
    with serving(folder / "server", folder / "ledger.txt") as url:
        yield url, folder / "ledger.txt"


class Pygeoapi(Harness):
    """OGC API – Processes Part 1 on pygeoapi 0.21: its jobs (threads of the server) count their runs in a
    ledger. Its dismiss forgets a job but does not stop it (a known limit of pygeoapi), and a failed
    execution says nothing of whether trying again may help."""

    cancel_stops = False
    failure_retryable = True
    shared: ClassVar[set[str]] = set()  # one campaign store for the module: the server's other jobs are ours

    def __init__(self, url: str, ledger: Path, folder: Path) -> None:
        super().__init__()
        self.known = self.shared
        self.url, self.ledger, self.folder = url, ledger, folder
        self.prefix = uuid.uuid4().hex[:8]

    def backend(self) -> Backend:
        return OgcApiBackend(self.url, "count", self.folder / "jobs", slots=4)

    def request(self, job_id: str, attempt: int = 1, *, seconds: float = 0.0, broken: bool = False) -> JobRequest:
        name = f"{self.prefix}-{job_id}"
        return JobRequest(job_id, attempt, {"name": "two\nlines" if broken else name, "seconds": float(seconds)})

    def executions(self, job_id: str) -> int:
        from ..servers.counting import read_ledger, started_ledger

        return read_ledger(started_ledger(self.ledger))[f"{self.prefix}-{job_id}"]

    def running(self, job_id: str) -> bool:
        from ..servers.counting import read_ledger, started_ledger

        name = f"{self.prefix}-{job_id}"
        return read_ledger(started_ledger(self.ledger))[name] > read_ledger(self.ledger)[name]


class TestOgcApiOnPygeoapi(Contract):
    @pytest.fixture
    def harness(self, tmp_path, counting_pygeoapi) -> Harness:
        url, ledger = counting_pygeoapi
        return Pygeoapi(url, ledger, tmp_path)


@pytest.fixture(scope="module")
def counting_endpoint(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """Our endpoint serving tests/packages/count.cwl (Part 4: create, then start): its URL and ledger."""
    from ..servers.counting import counting_endpoint as serving

    folder = tmp_path_factory.mktemp("counting-endpoint")
    with serving(folder / "server", folder / "ledger.txt") as url:
        yield url, folder / "ledger.txt"


class Endpoint(Pygeoapi):
    """OGC API – Processes Part 4 on our endpoint: each job a worker running the package with cwltool.
    Its dismiss stops the worker, cwltool and the tool."""

    cancel_stops = True

    def backend(self) -> Backend:
        backend = OgcApiBackend(self.url, "count", self.folder / "jobs", slots=4)
        assert backend.job_management, "the endpoint declares Part 4"
        return backend

    def request(self, job_id: str, attempt: int = 1, *, seconds: float = 0.0, broken: bool = False) -> JobRequest:
        inputs = {
            "name": f"{self.prefix}-{job_id}",
            "bbox": "not,a,bbox,here" if broken else "600000,5300000,600640,5300640",
            "epsg": 32632,
            "seconds": float(seconds),
        }
        return JobRequest(job_id, attempt, inputs)

    def running(self, job_id: str) -> bool:
        found = subprocess.run(["pgrep", "-f", f"count.py {self.prefix}-{job_id} "], capture_output=True, text=True)
        return bool(found.stdout.strip())


class TestOgcApiOnOurEndpoint(Contract):
    @pytest.fixture
    def harness(self, tmp_path, counting_endpoint) -> Harness:
        url, ledger = counting_endpoint
        return Endpoint(url, ledger, tmp_path)
