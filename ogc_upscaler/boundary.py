"""The one place where whatever a lower library raises becomes one job's classified error.

Every call from the manager into a backend or the collector runs inside
:func:`job_errors`, as httpx runs every call into httpcore inside
``map_httpcore_exceptions``: a :class:`~ogc_upscaler.errors.JobError` passes
through as it is; any other exception becomes one, so it fails (or retries) that job
and never ends the run. What may pass is retryable (the network, the disk, memory,
a subprocess that timed out); anything else is a defect, permanent, and carries its
traceback for the job's log.

>>> with contextlib.suppress(BackendError):
...     with job_errors("polling"):
...         raise KeyError("access_token")
>>> try:
...     with job_errors("fetching results"):
...         raise ConnectionResetError(104, "Connection reset by peer")
... except BackendError as err:
...     print(err.retryable, err.message)
True fetching results: ConnectionResetError: [Errno 104] Connection reset by peer
"""

from __future__ import annotations

import contextlib
import subprocess
import traceback
from collections.abc import Iterator

from ogc_upscaler.errors import BackendError, JobError, UpscalerError, redact

#: Exceptions that may pass by themselves: trying the same call later may work.
TRANSIENT: tuple[type[BaseException], ...] = (OSError, TimeoutError, MemoryError, subprocess.TimeoutExpired)


@contextlib.contextmanager
def job_errors(doing: str, kind: type[JobError] = BackendError) -> Iterator[None]:
    """Run the block; re-raise anything but a :class:`JobError` as a ``kind`` saying what was being done."""
    try:
        yield
    except JobError:
        raise
    except UpscalerError as err:  # a config or package problem met while serving one job
        raise kind(f"{doing}: {redact(err.message)}", retryable=False, hint=err.hint) from err
    except TRANSIENT as err:
        raise kind(f"{doing}: {_describe(err)}", retryable=True, trace=traceback.format_exc()) from err
    except Exception as err:
        raise kind(
            f"{doing}: unexpected {_describe(err)}",
            retryable=False,
            hint="this is a bug of ogc-upscaler or of a library it uses; the job's traceback file shows where",
            trace=traceback.format_exc(),
        ) from err


def _describe(err: BaseException) -> str:
    text = redact(str(err))  # a presigned URL's signature never reaches the store or a log
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__
