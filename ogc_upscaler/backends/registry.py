"""Backend types by name, from the ``ogc_upscaler.backends`` entry points.

A backend is one module that defines the backend and its ``Settings`` (a
:class:`~ogc_upscaler.backends.base.BackendSettings` whose ``type`` is a ``Literal`` of
its name), registered in the packaging metadata::

    [project.entry-points."ogc_upscaler.backends"]
    cwltool = "ogc_upscaler.backends.cwltool:Settings"

so another distribution can add one without touching this package. A config's
``backend:`` section is parsed by the settings its ``type`` names (``cwltool`` when it
names none), with the backend's own keys and checks.

>>> sorted(types())
['cwltool', 'ogcapi', 'toil']
>>> parse({"type": "cwltool", "parallel": 4}).parallel
4
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any

from ogc_upscaler.backends.base import BackendSettings
from ogc_upscaler.errors import InvalidConfig

GROUP = "ogc_upscaler.backends"
DEFAULT = "cwltool"


@functools.cache
def types() -> dict[str, type[BackendSettings]]:
    """Every installed backend type's settings model, by type name."""
    found: dict[str, type[BackendSettings]] = {}
    for point in entry_points(group=GROUP):
        settings = point.load()
        if not (isinstance(settings, type) and issubclass(settings, BackendSettings)):
            raise TypeError(f"entry point {point.value} ({GROUP}) is not a BackendSettings subclass")
        found[point.name] = settings
    if DEFAULT not in found:
        raise InvalidConfig(
            "no backend types are registered: ogc-upscaler's packaging metadata is missing",
            hint="reinstall it: pip install -e .",
        )
    return found


def parse(section: Any) -> BackendSettings:
    """One ``backend:`` mapping as the settings of the backend its ``type`` names.

    Raises pydantic's ``ValidationError`` for a wrong key or value (the config reports it
    with its location) and :class:`InvalidConfig` for an unknown type.
    """
    if not isinstance(section, dict):
        raise InvalidConfig(
            f"backend: expected a mapping (type, parallel, …), got {type(section).__name__}",
            hint=f"the backend types are: {', '.join(sorted(types()))}",
        )
    name = section.get("type", DEFAULT)
    known = types()
    if name not in known:
        raise InvalidConfig(
            f"backend.type: unknown backend type {name!r}", hint=f"the backend types are: {', '.join(sorted(known))}"
        )
    return known[name].model_validate({**section, "type": name})
