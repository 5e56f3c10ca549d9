"""Coastlines and borders for maps: Natural Earth's 1:50m countries, as the world-atlas npm package ships
them (TopoJSON), from the watch page's build (``scripts/web.sh``); the PNG maps and the page draw the same.

TopoJSON keeps each boundary once, as an *arc* shared by the countries on both sides, quantized and
delta-encoded. The arcs of the ``land`` object are the coastlines; the countries' other arcs are borders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

WORLD = Path(str(resources.files("ogc_upscaler.watch") / "static" / "build" / "world.json"))


@dataclass(frozen=True)
class Basemap:
    """Coastlines and land borders as lines of longitude, latitude (each an ``(n, 2)`` array)."""

    coastlines: tuple[np.ndarray, ...]
    borders: tuple[np.ndarray, ...]


@cache
def basemap(path: Path = WORLD) -> Basemap | None:
    """Natural Earth's coastlines and borders, or None where the watch page was never built."""
    if not path.is_file():
        return None
    return from_topojson(json.loads(path.read_text()))


def from_topojson(topology: dict[str, Any]) -> Basemap:
    """The coastlines (arcs of ``land``) and borders (the other arcs of ``countries``) of a world-atlas file."""
    scale = np.asarray(topology["transform"]["scale"], dtype=float)
    translate = np.asarray(topology["transform"]["translate"], dtype=float)
    arcs = [np.cumsum(np.asarray(arc, dtype=float), axis=0) * scale + translate for arc in topology["arcs"]]
    coast = _arcs_of(topology["objects"]["land"])
    countries = _arcs_of(topology["objects"]["countries"])
    return Basemap(tuple(arcs[i] for i in sorted(coast)), tuple(arcs[i] for i in sorted(countries - coast)))


def _arcs_of(geometry: dict[str, Any]) -> set[int]:
    """The arcs a TopoJSON geometry uses (``~i`` is arc ``i`` reversed)."""
    if geometry["type"] == "GeometryCollection":
        return set().union(*(_arcs_of(g) for g in geometry["geometries"]))
    found: set[int] = set()

    def walk(value: Any) -> None:
        if isinstance(value, int):
            found.add(value if value >= 0 else ~value)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(geometry.get("arcs", []))
    return found
