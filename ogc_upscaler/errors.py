"""The exception tree of ogc-upscaler.

Every error the package raises on purpose derives from :class:`UpscalerError`.
Each carries a one-line message (what was wrong, and where) and a ``hint``
(what to do about it)::

    UpscalerError
    ├── InvalidInput            bad input from the user: exit code 2
    │   ├── InvalidAOI          an area of interest that cannot be used
    │   ├── InvalidGrid         an unknown or inconsistent grid, or a bad grid file
    │   ├── InvalidConfig       a campaign config with a wrong key or value
    │   ├── InvalidPackage      a CWL application package that cannot run here
    │   ├── PlanConflict        re-planning would change jobs already in the store
    │   └── InvalidRequest      an OGC API execute request the endpoint refuses (answered with 400)
    ├── StoreError              the job store cannot be used as asked
    │   └── StoreLocked         another process is already writing the store
    └── JobError                one job's trouble; it fails (or retries) that job and never ends a run
        ├── BackendError        a backend refused or failed a call (``retryable`` says if trying again may help)
        │   ├── BackPressure    the backend asks us to slow down: not the job's fault (backends.base)
        │   ├── Unreachable     the backend could not be reached: the request never left (backends.base)
        │   └── InDoubt         a submission whose answer was lost: it may have reached the backend (backends.base)
        └── CollectError        a job succeeded but its outputs cannot be collected (collect)

Whatever a lower library raises inside a call from the manager into a backend or the
collector becomes a :class:`JobError` of that job in one place, :mod:`ogc_upscaler.boundary`.
"""

from __future__ import annotations

import re


class UpscalerError(Exception):
    """Root of every error raised on purpose by ogc-upscaler.

    ``hint`` says what to do; a raise that gives none gets the class's ``default_hint``.
    """

    exit_code = 1
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(UpscalerError):
    """Input given by the user is wrong; nothing was written."""

    exit_code = 2


class InvalidAOI(InvalidInput):
    """An area of interest that is unreadable, empty, invalid or outside WGS84."""

    default_hint = "an AOI is a GeoJSON file of Polygons in WGS84, a bbox W,S,E,N in degrees, or WKT"


class InvalidGrid(InvalidInput):
    """An unknown grid name, inconsistent grid parameters, or a bad grid file."""

    default_hint = "`ogc-upscaler grid --help` lists the grids; a grid file is a GeoJSON FeatureCollection of tiles"


class InvalidConfig(InvalidInput):
    """A campaign configuration with an unknown key or a wrong value."""

    default_hint = "see the example config in the README"


class InvalidPackage(InvalidInput):
    """An application package that is not valid CWL or breaks a rule that running it here needs."""

    default_hint = "`ogc-upscaler package inspect PATH.cwl` checks a package and lists its inputs"


class PlanConflict(InvalidInput):
    """A new plan would change jobs that the store already holds."""


class InvalidRequest(InvalidInput):
    """An execute request to our endpoint with a missing, unknown or wrong input, or a forbidden href."""

    default_hint = "GET /processes/{id} describes the inputs the process takes"


class StoreError(UpscalerError):
    """The job store cannot be opened or used as asked."""

    default_hint = "check the `store:` path in the config"


class StoreLocked(StoreError):
    """Another process holds the store's writer lock."""


class JobError(UpscalerError):
    """Something went wrong with one job; ``retryable`` tells whether trying again may help.

    ``trace`` holds the traceback when the error stands for an exception nobody expected.
    """

    def __init__(self, message: str, *, retryable: bool, hint: str | None = None, trace: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable
        self.trace = trace


class BackendError(JobError):
    """A backend call failed; ``retryable`` tells whether the same call may succeed later."""


_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?:[^/\s@'\"]*@)?(?P<rest>[^\s?#'\"]*)(?:\?[^\s#'\"]*)?", re.I)


def redact(text: str) -> str:
    """``text`` with every URL's credentials and query string (presigned signatures, tokens) removed.

    >>> redact("GET https://user:pw@bucket.s3.example.org/a.tif?X-Amz-Signature=abc failed")
    'GET https://bucket.s3.example.org/a.tif?… failed'
    """

    def clean(match: re.Match[str]) -> str:
        query = "?…" if "?" in match[0] else ""
        return f"{match['scheme']}{match['rest']}{query}"

    return _URL.sub(clean, text)
