"""Backends: where jobs run. One module per backend behind :class:`Backend`."""

from ogc_upscaler.backends.base import Backend, JobRequest, Outputs, RemoteState, RemoteStatus
from ogc_upscaler.backends.cwltool import CwltoolBackend

__all__ = ["Backend", "CwltoolBackend", "JobRequest", "Outputs", "RemoteState", "RemoteStatus"]
