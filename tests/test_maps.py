"""The plan and status maps are real pictures: tiles drawn, coloured by state."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np

from ogc_upscaler import maps
from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.grid import grid_from_spec


def test_a_status_map_shows_the_state_colours(tmp_path) -> None:
    aoi = load_aoi("11.6,47.6,12.4,48.2")
    tiles = grid_from_spec("utm-20km").tiles(aoi)
    states = ["failed" if i % 2 else "collected" for i in range(len(tiles))]
    path = tmp_path / "status.png"
    maps.draw(path, aoi.geometry, tiles.footprints, states, title="t", labels=list(tiles.ids))
    image = mpimg.imread(path)[:, :, :3]
    assert image.shape[0] > 400 and image.shape[1] > 400
    for colour in (maps.STATE_COLOURS["failed"], maps.STATE_COLOURS["collected"]):
        rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(image - rgb).sum(axis=2) < 0.02).sum() > 1000, colour


def test_tile_states_take_the_least_advanced_job_and_failed_first() -> None:
    ids = ["a", "a", "b", "b", "c"]
    states = ["collected", "running", "collected", "failed", "planned"]
    assert maps.tile_states(ids, states) == {"a": "running", "b": "failed", "c": "planned"}
