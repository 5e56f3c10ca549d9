"""How grids are named in configs and on the command line: the named grids and the custom form.

Kept apart from the grids themselves so that the command line's help costs no import of numpy,
shapely or pyproj.
"""

from __future__ import annotations

import re

#: Named grids: kind and tile size in metres.
NAMED_GRIDS: dict[str, tuple[str, float]] = {
    "laea-20km": ("laea", 20_000.0),
    "laea-100km": ("laea", 100_000.0),
    "utm-10km": ("utm", 10_000.0),
    "utm-20km": ("utm", 20_000.0),
    "utm-100km": ("utm", 100_000.0),
    "mgrs": ("mgrs", 100_000.0),  # the MGRS 100 km squares (Sentinel-2's tiles), ids MGRS-32TQM
}

#: A custom grid: EPSG:CODE:TILE_SIZE[:ORIGIN_X,ORIGIN_Y].
CUSTOM = re.compile(r"EPSG:(\d{4,6}):([0-9.]+)(?::(-?[0-9.]+),(-?[0-9.]+))?", re.I)

GRID_HELP = (
    f"a named grid ({', '.join(NAMED_GRIDS)}), a custom grid EPSG:CODE:TILE_SIZE[:ORIGIN_X,ORIGIN_Y] "
    "in metres (e.g. EPSG:32633:5000), or a GeoJSON grid file of tiles"
)
