"""A warm cwltool: a server that pays cwltool's start-up once and forks a detached run per job.

A cold run of cwltool imports it, loads the CWL schema and starts ogc-upscaler's stage steps as
processes of their own: about two seconds of CPU per job before and around the tool. The server
does the imports and the schema once, then forks one child per job. The child is what
:mod:`~ogc_upscaler.backends.runner` is for a cold run, with the same files in the job's folder
(``runner.pid``, ``stdout``, ``stderr.log``, ``exit_code`` written last): it leaves the server's
session, runs cwltool's ``main`` on the job (the schema already loaded, the stage steps called in
the child instead of started as programs) and records its exit code. So each job is a process
tree of its own: the manager's death, the server's death or another job's crash leaves it
running; cancelling it stops it and its tools; its own crash is its own job's loss only, which
the backend reads as a lost runner (retryable).

The server listens on an abstract Unix socket named after the interpreter and the jobs' folder,
so a restarted manager finds the one its predecessor started; it ends when its backend closes or
after :data:`IDLE_S` without a request. A request is one line of JSON (the job's folder, cwltool's
arguments, the environment), the answer the child's pid.

Started by :class:`WarmCwltool` as ``python -c SERVE ADDRESS`` (see :data:`SERVE`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: A server with no request for this long ends (its runs go on: they are not its).
IDLE_S = 60.0
#: How long a manager waits for a server it started to listen before it runs jobs cold.
START_S = 60.0
#: The server's program (``-m`` would import this module twice: the package imports it).
SERVE = "import sys; from ogc_upscaler.backends.warm import serve; serve(sys.argv[1])"
#: The stage steps' programs, called in the child instead of started (their mains take argv).
IN_PROCESS = {
    "ogc-upscaler-stage-in": "ogc_upscaler.stage:stage_in_main",
    "ogc-upscaler-stage-out": "ogc_upscaler.stage:stage_out_main",
}


def address(workdir: Path) -> str:
    """The name of the server's abstract socket for jobs under ``workdir`` run by this interpreter."""
    key = hashlib.sha256(f"{sys.executable}\0{workdir.resolve()}".encode()).hexdigest()[:24]
    return f"ogc-upscaler-warm-{key}"


class WarmCwltool:
    """The manager's side: hands each job to the server, starting the server when none listens."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.address = address(workdir)
        self._server: subprocess.Popen[bytes] | None = None
        self._broken = False

    def start(self, folder: Path, argv: Sequence[str], environment: Mapping[str, str]) -> bool:
        """Run cwltool with ``argv`` in ``folder`` through the server; False if no server could take it
        (the caller then runs it cold). Once the request is sent the job is the server's, whatever the
        answer: a child that never wrote its pid reads as a runner that never started (retryable)."""
        if self._broken:
            return False
        request = json.dumps({"folder": str(folder), "argv": list(argv), "env": dict(environment)}).encode()
        connection = self._connect() or self._launch()
        if connection is None:
            return False
        with connection:
            try:
                connection.sendall(request + b"\n")
            except OSError:  # the server went before it had the whole request: it starts nothing from a part
                return False
            connection.settimeout(30.0)
            with contextlib.suppress(OSError):
                connection.recv(64)
        return True

    def close(self) -> None:
        """Stop the server this manager started (runs it forked go on)."""
        connection = self._connect()
        if connection is not None:
            with connection, contextlib.suppress(OSError):
                connection.sendall(b'{"quit": true}\n')
        if self._server is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._server.wait(timeout=10)
            self._server = None

    def _connect(self) -> socket.socket | None:
        """A connection to the server, if one of this user's listens (another user's could hold the name: an
        abstract socket has no owner; it would be sent the jobs' environment, keys included)."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(f"\0{self.address}")
        except OSError:
            connection.close()
            return None
        if peer_uid(connection) != os.getuid():
            connection.close()
            log.warning("the warm cwltool address %s is held by another user; jobs run cold", self.address)
            self._broken = True
            return None
        return connection

    def _launch(self) -> socket.socket | None:
        log_file = self.workdir / ".warm-cwltool.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as err:
            self._server = subprocess.Popen(
                [sys.executable, "-c", SERVE, self.address],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and self._server.poll() is None:
            connection = self._connect()
            if connection is not None:
                return connection
            time.sleep(0.05)
        connection = self._connect()  # another manager's server may have taken the address
        if connection is None:
            self._broken = True
            log.warning("the warm cwltool server did not start (see %s); jobs run cold", log_file)
        return connection


def serve(name: str, idle: float = IDLE_S) -> None:
    """Warm up, listen on ``name`` and fork a run per request until told to quit or idle for ``idle`` s."""
    warm_up()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(f"\0{name}")  # abstract: no file to leave behind
    except OSError:
        return  # another server has the address: the managers use that one
    listener.listen(64)
    listener.settimeout(idle)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the runs: no zombies, no waiting
    packages = Loaded()
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            return
        with connection:
            if peer_uid(connection) != os.getuid():  # anyone on the host may connect to an abstract socket
                print("refused a connection from another user", file=sys.stderr, flush=True)
                continue
            connection.settimeout(30.0)
            try:
                request = json.loads(_line(connection))
            except (OSError, ValueError) as err:
                print(f"a request that could not be read: {err}", file=sys.stderr, flush=True)
                continue
            if request.get("quit"):
                return
            loaded = packages.get(request["argv"])
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                connection.close()
                run_forked(Path(request["folder"]), request["argv"], request["env"], loaded)  # never returns
            with contextlib.suppress(OSError):
                connection.sendall(f"{pid}\n".encode())


def warm_up() -> None:
    """What every run would pay otherwise: the imports and CWL's schema (the versions a package may use)."""
    import cwltool.main
    import cwltool.process

    import ogc_upscaler.stage  # noqa: F401 - the stage steps run in the children

    cwltool.main.setup_schema(cwltool.main.arg_parser().parse_args(["x"]), None)
    for version in ("v1.0", "v1.1", "v1.2"):
        cwltool.process.get_schema(version)


@dataclasses.dataclass(frozen=True)
class Package:
    """A run file as cwltool's ``main`` loads it (the document fetched, resolved and validated, its tool
    made), made once in the server with ``main``'s own functions; a forked run uses it as it is."""

    uri: str
    fetched: tuple[Any, Any, str]
    resolved: tuple[Any, str]
    tool: Any

    @classmethod
    def load(cls, argv: list[str]) -> Package:
        from cwltool.context import RuntimeContext
        from cwltool.load_tool import fetch_document, make_tool, resolve_and_validate_document, resolve_tool_uri
        from cwltool.main import arg_parser, setup_loadingContext

        args = arg_parser().parse_args(argv)
        loading = setup_loadingContext(None, RuntimeContext(vars(args)), args)
        uri, _ = resolve_tool_uri(
            args.workflow, resolver=loading.resolver, fetcher_constructor=loading.fetcher_constructor
        )
        fetched = fetch_document(uri, loading)
        resolved = resolve_and_validate_document(fetched[0], fetched[1], fetched[2], preprocess_only=False)
        return cls(uri, fetched, resolved, make_tool(resolved[1], resolved[0]))

    def install(self) -> None:
        """Make cwltool's ``main`` (in this forked run) take this package instead of loading it again; any
        other document is loaded as ``main`` always does."""
        import cwltool.main

        fetch, resolve, make = (
            cwltool.main.fetch_document,
            cwltool.main.resolve_and_validate_document,
            cwltool.main.make_tool,
        )

        def fetched(uri: Any, *args: Any, **kwargs: Any) -> Any:
            return self.fetched if uri == self.uri else fetch(uri, *args, **kwargs)

        def resolved(context: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
            return self.resolved if document is self.fetched[1] else resolve(context, document, *args, **kwargs)

        def made(uri: Any, context: Any) -> Any:
            return self.tool if context is self.resolved[0] and uri == self.resolved[1] else make(uri, context)

        cwltool.main.fetch_document = fetched
        cwltool.main.resolve_and_validate_document = resolved
        cwltool.main.make_tool = made


class Loaded:
    """The run files the server has loaded, by what they are loaded with (cwltool's options and the run file,
    without the job's own folders); one that cannot be loaded here is left to each run (which says why)."""

    PER_JOB = frozenset({"--outdir", "--tmpdir-prefix"})

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, ...], Package | None] = {}

    def get(self, argv: list[str]) -> Package | None:
        if "CWLTOOL_OPTIONS" in os.environ or len(argv) < 2:
            return None
        key = self.key(argv)
        if key not in self._loaded:
            try:
                self._loaded[key] = Package.load(argv)
            except Exception:  # the run loads it again and reports it in its own log
                traceback.print_exc()
                self._loaded[key] = None
        return self._loaded[key]

    @classmethod
    def key(cls, argv: list[str]) -> tuple[str, ...]:
        options, kept, skip = argv[:-1], [], False
        for word in options:
            if skip:
                skip = False
            elif word in cls.PER_JOB:
                skip = True
            else:
                kept.append(word)
        return tuple(kept)


def run_forked(folder: Path, argv: list[str], environment: dict[str, str], loaded: Package | None = None) -> None:
    """The child: a runner of its own (session, pid file, output files), then cwltool, then the exit code."""
    from ogc_upscaler.backends.runner import record, record_exit, write_atomically

    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # cwltool waits for its tools
        write_atomically(folder / "runner.pid", record(os.getpid()) + "\n")
        _stop_on_signal(folder)
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(environment)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(folder / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(folder / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        if loaded is not None:
            loaded.install()
        code = _cwltool(argv)
    except BaseException:  # whatever broke, the job's log says it and its exit code is kept
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
            record_exit(folder, code)
        os._exit(0)


def _cwltool(argv: list[str]) -> int:
    import cwltool.job
    import cwltool.main

    cwltool.job._job_popen = _in_process(cwltool.job._job_popen)
    sys.argv[0] = "cwltool"  # the name its log starts with
    return cwltool.main.main(argv, stdout=sys.stdout, stderr=sys.stderr, custom_schema_callback=lambda: None)


def _in_process(popen: Callable[..., int]) -> Callable[..., int]:
    """cwltool's way of starting a tool, calling the stage steps' mains here instead (a step in a
    container, or with a shell script, still runs as cwltool starts it)."""

    def start(commands: list[str], *args: Any, **kwargs: Any) -> int:
        target = IN_PROCESS.get(Path(commands[0]).name) if commands else None
        if target is None or kwargs.get("job_script_contents") is not None:
            return popen(commands, *args, **kwargs)
        cwd = kwargs["cwd"] if "cwd" in kwargs else args[4]
        make_job_dir = kwargs["make_job_dir"] if "make_job_dir" in kwargs else args[5]
        make_job_dir()
        module, function = target.split(":")
        main = getattr(__import__(module, fromlist=[function]), function)
        here = os.getcwd()
        try:
            os.chdir(cwd)
            return int(main(commands[1:]) or 0)
        except SystemExit as stop:  # its arguments refused: argparse said why on stderr
            return stop.code if isinstance(stop.code, int) else 1
        except Exception:  # as the program would: the traceback on stderr, exit 1
            traceback.print_exc()
            return 1
        finally:
            sys.stderr.flush()
            os.chdir(here)

    return start


def _stop_on_signal(folder: Path) -> None:
    """SIGTERM/SIGINT end the run as they end the cold runner's: ``-N`` recorded, its tools told to stop
    (without waiting for them, as cwltool's own handler would: whoever stops the job stops its tree)."""
    from ogc_upscaler.backends.runner import record_exit

    def stop(signum: int, _frame: object) -> None:
        with contextlib.suppress(BaseException):
            record_exit(folder, -signum)
        with contextlib.suppress(BaseException):
            import cwltool.job

            for process in list(cwltool.job.processes_to_kill):
                process.terminate()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket, from the kernel."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
