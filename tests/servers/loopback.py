"""Real servers started on loopback, for the tests (through the fixtures of ``tests/conftest.py``) and for the
benchmarks (``bench/``, which put this folder on ``sys.path``): an S3-compatible store and a STAC API with
transactions. Each is a context manager that stops what it started."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The S3 server's own venv (scripts/test.sh makes it: ministack pins a botocore that Toil's does not take).
S3_VENV = Path(__file__).parents[2] / ".venv-s3"
S3_ADMIN = Path(__file__).parent / "s3_admin.py"


def wait_until_up(url: str, server: Any, name: str, timeout: float = 600.0, stderr: Any = None) -> None:
    """Poll ``url`` until it answers, for up to ``timeout`` seconds (on a loaded machine a server that
    validates its packages takes minutes to start); fail with the server's standard error (its pipe, or
    the file ``stderr``) if it exits first or never answers."""

    def tail() -> str:
        if stderr is None:
            return server.stderr.read().decode(errors="replace")[-2000:]
        stderr.seek(0)
        return stderr.read().decode(errors="replace")[-2000:]

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=10).read()
            return
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"{name} exited: {tail()}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer at {url} within {timeout:.0f} s: {tail()}") from None
            time.sleep(0.2)


@contextlib.contextmanager
def running_server(command: list[str], ready: str, name: str, **popen: Any) -> Iterator[None]:
    """Run a server process until the block ends; enter once ``ready`` answers. Its standard error goes to a
    temporary file, not a pipe: a pipe nobody reads fills up and blocks a server that logs every request."""
    with tempfile.TemporaryFile() as stderr:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, **popen)
        try:
            wait_until_up(ready, server, name, stderr=stderr)
            yield
        finally:
            server.terminate()
            try:
                server.wait(timeout=120)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=120)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class S3Server:
    """A real S3-compatible server on loopback (ministack, signatures checked), and a key it takes."""

    endpoint: str
    key: str
    secret: str

    def credentials(self) -> dict[str, str]:
        """The environment a client signs its requests with."""
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_REGION": "us-east-1"}

    def make_bucket(self, name: str) -> str:
        """Create the bucket ``name``; its name."""
        admin = [str(S3_VENV / "bin" / "python"), str(S3_ADMIN)]
        subprocess.run([*admin, self.endpoint, "bucket", name, self.key, self.secret], check=True, capture_output=True)
        return name


@contextlib.contextmanager
def running_s3_server(folder: Path) -> Iterator[S3Server]:
    """ministack with signatures checked (AUTH=true) on loopback, its files in ``folder``: of the
    S3-compatible servers the registries offer it is the one that checks header and presigned signatures,
    honours conditional requests and serves the ranges GDAL reads (see ../shared/notes/s3-and-stac-api.md);
    objects kept in memory. Its key is an IAM user's (the root key test/test is not checked)."""
    exe = S3_VENV / "bin" / "ministack"
    assert exe.exists(), "the S3 server is not installed: bash scripts/test.sh makes .venv-s3"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "cwd").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AUTH": "true",
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "MINISTACK_HOST": "127.0.0.1",
        "SERVICES": "s3,iam,sts",
        "S3_DATA_DIR": str(folder / "data"),
    }
    with running_server([str(exe)], endpoint + "/", "ministack", env=env, cwd=folder / "cwd"):
        admin = [str(S3_VENV / "bin" / "python"), str(S3_ADMIN)]
        key = json.loads(subprocess.run([*admin, endpoint, "user"], check=True, capture_output=True).stdout)
        yield S3Server(endpoint, key["key"], key["secret"])


@contextlib.contextmanager
def running_stac_transactions_api() -> Iterator[str]:
    """A real STAC API with the Transactions extension: stac-fastapi-pgstac on Debian's PostgreSQL 15 with
    PostGIS, migrated with pypgstac, all on loopback (scripts/test.sh installs them); its URL. PostgreSQL
    refuses to run as root: as root, the cluster belongs to the postgres user."""
    import psycopg

    bin_dir = Path("/usr/lib/postgresql/15/bin")
    assert (bin_dir / "initdb").exists(), "PostgreSQL 15 is not installed: bash scripts/test.sh installs it"
    folder = Path(tempfile.mkdtemp(prefix="upscaler-pg-"))  # in /tmp: the postgres user must reach it
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    init = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    subprocess.run([*as_postgres, *init, "--locale=C.UTF-8"], check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} -c fsync=off"
    pg_ctl = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w"]
    subprocess.run([*pg_ctl, "-t", "600", "-o", options, "start"], check=True, capture_output=True)
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as db:
            db.execute("ALTER USER postgres PASSWORD 'upscaler'")
            db.execute("CREATE DATABASE stac")
        dsn = f"postgresql://postgres:upscaler@127.0.0.1:{port}/stac"
        pypgstac = Path(sys.executable).with_name("pypgstac")
        subprocess.run([str(pypgstac), "migrate", "--dsn", dsn], check=True, capture_output=True)
        with psycopg.connect(dsn, autocommit=True) as db:  # numberMatched in searches
            db.execute("UPDATE pgstac.pgstac_settings SET value = 'on' WHERE name = 'context'")
        api_port = free_port()
        url = f"http://127.0.0.1:{api_port}"
        env = {
            **os.environ,
            "PGUSER": "postgres",
            "PGPASSWORD": "upscaler",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(port),
            "PGDATABASE": "stac",
            "ENABLE_TRANSACTIONS_EXTENSIONS": "true",
        }
        app = "stac_fastapi.pgstac.app:create_app"
        command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(api_port)]
        cwd = folder / "api"  # its settings read a .env from the working folder: a clean one
        cwd.mkdir()
        with running_server(command, url + "/_mgmt/ping", "stac-fastapi-pgstac", env=env, cwd=cwd):
            yield url
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
