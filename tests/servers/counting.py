"""Servers that count, per job, how often they really ran it: a ledger file with one line per execution.

- :class:`CountingProcessor`: a pygeoapi processor, process ``count`` (inputs ``name``, a string,
  and ``seconds``, optional), asynchronous or synchronous: it sleeps ``seconds``, appends one line
  ``name`` to the ledger (``O_APPEND``, one ``write``: concurrent runs never mix their lines; one
  more line, at the start, to ``LEDGER.started``) and returns ``{"id": "name", "value": name}``. The
  ledger's path comes from the processor definition (``ledger:``) or the environment
  (``COUNTING_LEDGER``). pygeoapi loads it by dotted path (``processor: {name:
  counting.CountingProcessor}``: ``load_plugin`` imports the module before the last dot), so this
  folder must be on the server's PYTHONPATH.
- :func:`counting_pygeoapi`: pygeoapi 0.21 (``pygeoapi serve``, TinyDB jobs, as in the tests'
  ``tests/servers/pygeoapi.yml``) serving only ``count``; yields its URL.
- :func:`counting_endpoint`: our endpoint (``ogc-upscaler serve``) serving only
  ``tests/packages/count.cwl`` (the same ``count`` process as an application package run by
  cwltool, with ``bbox`` and ``epsg`` inputs too), its ledger path written into a copy of the
  package; yields its URL.
- :func:`read_ledger`: executions per name.

Both servers run in their own session with their output in ``STATE/server.log``, and are stopped
(their process group) when the block ends; the endpoint's detached job workers are not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

LEDGER_ENV = "COUNTING_LEDGER"
HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "packages" / "count.cwl"
#: Longest sleep a request may ask for.
MAX_SECONDS = 600.0

PROCESS_METADATA: dict[str, Any] = {
    "version": "0.1.0",
    "id": "count",
    "title": {"en": "Count executions"},
    "description": {"en": "Sleeps, then records one execution of `name` in the server's ledger file."},
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["test"],
    "links": [],
    "inputs": {
        "name": {
            "title": "Name",
            "description": "What the ledger records for this execution (one line)",
            "schema": {"type": "string"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "seconds": {
            "title": "Seconds",
            "description": "How long the execution sleeps before it records itself",
            "schema": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {"name": {"title": "Name", "description": "The name, echoed", "schema": {"type": "string"}}},
    "example": {"inputs": {"name": "T1", "seconds": 0.5}},
}


class CountingProcessor(BaseProcessor):
    """The ``count`` process: sleep ``seconds``, append ``name`` to the ledger, echo ``name``."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        super().__init__(processor_def, PROCESS_METADATA)
        self.ledger = processor_def.get("ledger") or os.environ.get(LEDGER_ENV)

    def execute(self, data: dict[str, Any], outputs: dict[str, Any] | None = None) -> tuple[str, Any]:
        """Run once; the ledger gets exactly one line."""
        name, seconds = data.get("name"), data.get("seconds", 0)
        if not isinstance(name, str) or not name or "\n" in name:
            raise ProcessorExecuteError("name: give a non-empty string on one line")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SECONDS:
            raise ProcessorExecuteError(f"seconds: give a number from 0 to {MAX_SECONDS:.0f}")
        if not self.ledger:
            raise ProcessorExecuteError(f"no ledger: set `ledger` in the processor definition or ${LEDGER_ENV}")
        append_line(started_ledger(Path(self.ledger)), name)
        time.sleep(float(seconds))
        append_line(Path(self.ledger), name)
        return "application/json", {"id": "name", "value": name}

    def __repr__(self) -> str:
        return f"<CountingProcessor> {self.ledger}"


def append_line(ledger: Path, line: str) -> None:
    """Append ``line`` to ``ledger`` in one ``write`` on an ``O_APPEND`` descriptor."""
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def started_ledger(ledger: Path) -> Path:
    """The ledger of executions that started (one line each, written before the sleep)."""
    return ledger.with_name(ledger.name + ".started")


def read_ledger(ledger: Path) -> Counter[str]:
    """Executions per name so far (an absent ledger: none)."""
    if not ledger.exists():
        return Counter()
    return Counter(line for line in ledger.read_text().splitlines() if line)


# -- the servers ---------------------------------------------------------------------------------


def pygeoapi_config(ledger: Path) -> dict[str, Any]:
    """tests/servers/pygeoapi.yml with ``count`` as its only process (and room for long job lists)."""
    import yaml

    config = yaml.safe_load((HERE / "pygeoapi.yml").read_text())
    config["server"]["limits"] = {"default_items": 100, "max_items": 10_000}
    config["metadata"]["identification"]["description"] = "pygeoapi with the counting process"
    config["resources"] = {
        "count": {"type": "process", "processor": {"name": "counting.CountingProcessor", "ledger": str(ledger)}}
    }
    return config


@contextlib.contextmanager
def counting_pygeoapi(state: Path, ledger: Path, *, port: int | None = None) -> Iterator[str]:
    """pygeoapi 0.21 on loopback serving ``count`` (TinyDB jobs, async) until the block ends; its URL."""
    import yaml

    state.mkdir(parents=True, exist_ok=True)
    (state / "outputs").mkdir(exist_ok=True)
    (state / "pygeoapi.yml").write_text(yaml.safe_dump(pygeoapi_config(ledger.resolve()), sort_keys=False))
    port = port or free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "STATE": str(state.resolve()),
        "PYGEOAPI_CONFIG": str(state / "pygeoapi.yml"),
        "PYGEOAPI_OPENAPI": str(state / "openapi.yml"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p),
        LEDGER_ENV: str(ledger.resolve()),
    }
    exe = str(Path(sys.executable).with_name("pygeoapi"))
    subprocess.run(
        [exe, "openapi", "generate", env["PYGEOAPI_CONFIG"], "--output-file", env["PYGEOAPI_OPENAPI"]],
        env=env,
        check=True,
        capture_output=True,
    )
    with _serving([exe, "serve"], f"http://127.0.0.1:{port}", state, env) as url:
        yield url


def count_package(target: Path, ledger: Path) -> Path:
    """A copy of tests/packages/count.cwl at ``target`` whose runs append to ``ledger``."""
    import yaml

    document = yaml.safe_load(PACKAGE.read_text())
    workflow = next(p for p in document["$graph"] if p["class"] == "Workflow")
    workflow["steps"]["run"]["in"]["ledger"] = {"default": str(ledger.resolve())}
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


@contextlib.contextmanager
def counting_endpoint(state: Path, ledger: Path, *, port: int | None = None) -> Iterator[str]:
    """``ogc-upscaler serve`` on loopback serving only the ``count`` package until the block ends; its URL."""
    state.mkdir(parents=True, exist_ok=True)
    package = count_package(state.parent / f"{state.name}-count.cwl", ledger)
    port = port or free_port()
    command = [
        str(Path(sys.executable).with_name("ogc-upscaler")),
        "serve",
        "--state",
        str(state),
        "--port",
        str(port),
        "--packages",
        str(package),
    ]
    with _serving(command, f"http://127.0.0.1:{port}", state, dict(os.environ)) as url:
        yield url


@contextlib.contextmanager
def _serving(command: list[str], url: str, state: Path, env: dict[str, str]) -> Iterator[str]:
    """Run a server in its own session (output in STATE/server.log) until the block ends."""
    with (state / "server.log").open("ab") as log:
        server = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        _wait_until_up(f"{url}/conformance?f=json", server, state / "server.log")
        yield url
    finally:
        _stop_group(server)


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"{server.args[0]} exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)
    _stop_group(server)
    raise RuntimeError(f"no answer at {url} after {timeout:.0f} s; see {log}")


def _stop_group(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (pygeoapi's reloader runs the server as a child), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=grace)
            return


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
