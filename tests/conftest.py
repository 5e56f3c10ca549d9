"""Small builders shared by the tests: campaign config files and AOIs written to a temp folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

AOI_SQUARE = {
    "type": "Polygon",
    "coordinates": [[[11.8, 47.8], [12.2, 47.8], [12.2, 48.1], [11.8, 48.1], [11.8, 47.8]]],
}


def write_config(folder: Path, **overrides: Any) -> Path:
    """A campaign config in ``folder`` (AOI file beside it); keys in ``overrides`` replace the defaults."""
    (folder / "aoi.geojson").write_text(json.dumps(AOI_SQUARE))
    config: dict[str, Any] = {
        "name": "test",
        "aoi": "aoi.geojson",
        "grid": "utm-20km",
        "resolution": 20,
        "time": {"start": "2024-01-01", "end": "2024-04-01", "step": "P1M"},
        "process": {"application": "app.cwl", "inputs": {"bbox": "{tile.bbox}", "epsg": "{tile.epsg}"}},
    }
    config.update(overrides)
    config = {k: v for k, v in config.items() if v is not None}
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The default test campaign's config file."""
    return write_config(tmp_path)
