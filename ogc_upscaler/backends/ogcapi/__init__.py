"""The OGC API – Processes backend: a client hardened against real servers, each execution paid for once.

:mod:`~.backend` is the backend and its settings; :mod:`~.client` the HTTP client of one
endpoint (its errors mapped in one place, :mod:`~.http`); :mod:`~.auth` who gets the
credentials; :mod:`~.outputs` results fetched as COGs; :mod:`~.lookup` submissions whose
answer was lost, found again in the server's job list.
"""

from ogc_upscaler.backends.base import BackPressure
from ogc_upscaler.backends.ogcapi.auth import Auth
from ogc_upscaler.backends.ogcapi.backend import SYNC_PREFIX, OgcApiBackend, Settings

__all__ = ["SYNC_PREFIX", "Auth", "BackPressure", "OgcApiBackend", "Settings"]
