"""The worker: one detached process per endpoint job, outside the web server.

``python -m ogc_upscaler.server.worker JOBS_DB JOB_ID`` claims the job, rebuilds its
processor from the definition stored with it, runs :meth:`work` in the job's folder,
and records the outcome. It runs in its own session, so restarting or killing the
web server leaves it running; SIGTERM (a dismissal) makes it stop its work and exit,
also when it arrives while the worker is still starting. Its standard error is the job
folder's ``worker.log``, where it notes each claim (one line per run of the job).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from pygeoapi.plugin import load_plugin

from ogc_upscaler.backends.runner import record
from ogc_upscaler.errors import UpscalerError
from ogc_upscaler.server.jobs import EndpointJob, EndpointJobs

RESULT = "result.json"
LOG = logging.getLogger("ogc_upscaler.server.worker")


def launch(db: Path, job: EndpointJob) -> str:
    """Start the job's worker, detached; how it is recorded (pid and start time, see
    :meth:`EndpointJobs.launched`). The worker records itself in the job row when it claims it."""
    job.folder.mkdir(parents=True, exist_ok=True)
    with (job.folder / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ogc_upscaler.server.worker", str(db), job.identifier],
            cwd=job.folder,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    return record(worker.pid)


def processor_for(definition: dict[str, Any]) -> Any:
    """The processor a definition names (a dotted class path in ``name``), loaded as pygeoapi loads it."""
    return load_plugin("process", definition)


def main(argv: list[str]) -> int:
    """Claim, run and record one job."""
    db, job_id = Path(argv[0]), argv[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    jobs = EndpointJobs(db)
    me = record(os.getpid())
    if stop.is_set() or not jobs.claim(job_id, me):
        LOG.info("job %s: not claimed (dismissed, ended, or taken by another worker)", job_id)
        return 0
    LOG.info("job %s: claimed by worker %s", job_id, me)
    job = jobs.get(job_id)
    if job is None:
        return 0  # dismissed and forgotten in between
    from ogc_upscaler.server.processes import Dismissed

    try:
        if stop.is_set():
            raise Dismissed
        processor = processor_for(job.processor)
        result = processor.work(job_id, job.inputs, job.folder, lambda p, m: jobs.progress(job_id, p, m), stop)
    except Dismissed:
        jobs.finish(job_id, "dismissed", "dismissed")
        return 0
    except UpscalerError as err:
        jobs.finish(job_id, "failed", err.message + (f" ({err.hint})" if err.hint else ""))
        return 1
    except Exception as err:
        traceback.print_exc()
        jobs.finish(job_id, "failed", f"{type(err).__name__}: {err} (the trace is in worker.log)")
        return 1
    path = job.folder / RESULT
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    jobs.finish(job_id, "successful", "finished", location=str(path), mimetype="application/json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
