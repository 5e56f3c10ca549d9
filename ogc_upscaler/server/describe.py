"""OGC API – Processes descriptions: one generated from each application package's CWL, and ``upscale``'s.

CWL types map to JSON Schema (:meth:`CwlType.json_schema`): ``string`` → string, ``int``/``long`` →
integer, ``float``/``double`` → number, ``boolean`` → boolean, ``T[]`` → array of T, enums → a string
with its symbols, records (``SchemaDefRequirement`` types such as the eoap ``BBox``) → an object with
their fields, optional types → nullable. An input with a default has ``minOccurs: 0`` and the default in
its schema. A ``Directory`` input takes an array of STAC Item URLs, staged into a folder of the job as
the EO Application Package best practice's stage-in does (a ``Directory[]`` one such array per
Directory, or one URL each); a ``File`` input takes a URL. A ``Directory`` output (a folder with a STAC
catalog) is returned as links to its Cloud-Optimized GeoTIFFs and to the catalog.
"""

from __future__ import annotations

from typing import Any

from ogc_upscaler.cwl import Package, Parameter
from ogc_upscaler.grid.named import NAMED_GRIDS

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
URL = {"type": "string", "format": "uri"}
LINK = {"type": "string", "format": "uri", "contentEncoding": "binary", "contentMediaType": COG}


STAC_ITEMS = {"type": "array", "minItems": 0, "items": URL, "description": "URLs of STAC Items"}


def input_schema(parameter: Parameter) -> dict[str, Any]:
    """The JSON Schema of a package input (with its default, if it has one)."""
    schema = parameter.type.json_schema(directory=STAC_ITEMS, file=URL)
    if parameter.has_default:
        schema["default"] = parameter.default
    return schema


def output_schema(parameter: Parameter) -> dict[str, Any]:
    """The JSON Schema of a package output."""
    return parameter.type.json_schema(directory={"type": "array", "items": LINK}, file=LINK)


def package_description(package: Package, process_id: str) -> dict[str, Any]:
    """pygeoapi's ``PROCESS_METADATA`` for a package."""
    return {
        "version": package.version or "0.0.0",
        "id": process_id,
        "title": package.label or process_id,
        "description": package.doc or package.label or process_id,
        "keywords": ["application package", "CWL", "ogc-upscaler"],
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "outputTransmission": ["value", "reference"],
        "links": [],
        "inputs": {
            p.id: {
                "title": p.label or p.id,
                "description": p.doc or p.label or p.id,
                "schema": input_schema(p),
                "minOccurs": 1 if p.required else 0,
                "maxOccurs": 1,
            }
            for p in package.inputs
        },
        "outputs": {
            p.id: {"title": p.label or p.id, "description": p.doc or p.label or p.id, "schema": output_schema(p)}
            for p in package.outputs
        },
    }


def upscale_description(packages: list[str]) -> dict[str, Any]:
    """pygeoapi's ``PROCESS_METADATA`` for ``upscale``, offering the packages this server holds."""
    text = {"type": "string"}
    return {
        "version": "0.1.0",
        "id": "upscale",
        "title": "Upscale an application package over an area",
        "description": (
            "Splits the area into pixel-aligned grid tiles, runs the chosen application package once per tile "
            "and time window with ogc-upscaler's manager (retries, resumable), and returns a link to the STAC "
            "Collection of Cloud-Optimized GeoTIFFs. Progress is the share of tile jobs finished."
        ),
        "keywords": ["upscaling", "tiling", "STAC", "COG"],
        "jobControlOptions": ["async-execute", "sync-execute", "dismiss"],
        "outputTransmission": ["value", "reference"],
        "links": [],
        "inputs": {
            "process": _input(
                "Application package",
                "the id of one of this server's package processes",
                {
                    "type": "string",
                    "enum": packages,
                },
            ),
            "aoi": _input(
                "Area of interest",
                "a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection in WGS84, or a bbox [W, S, E, N]",
                {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                    ]
                },
            ),
            "grid": _input(
                "Grid",
                "a named grid or EPSG:CODE:TILE_SIZE in metres",
                {
                    "type": "string",
                    "example": next(iter(NAMED_GRIDS)),
                },
            ),
            "resolution": _input("Pixel size", "in metres", {"type": "number", "minimum": 0}),
            "start": _input("Start", "ISO 8601 date, inclusive", {"type": "string", "format": "date"}),
            "end": _input("End", "ISO 8601 date, exclusive", {"type": "string", "format": "date"}),
            "step": _input("Window length", "ISO 8601 duration such as P1M; one window when absent", text, 0),
            "stac": _input("Input catalog", "URL of a STAC API or a static STAC catalog", URL),
            "collections": _input(
                "Collections",
                "STAC collection ids to search",
                {
                    "type": "array",
                    "items": text,
                },
                0,
            ),
            "templates": _input(
                "Package inputs",
                "for each package input, a template such as {tile.bbox}, {tile.epsg}, {tile.pixel_size}, "
                "{tile.id}, {window.interval} or {inputs.stac_items}",
                {"type": "object", "additionalProperties": text},
            ),
        },
        "outputs": {
            "catalog": {
                "title": "STAC Collection",
                "description": "the Collection of the campaign's outputs",
                "schema": {"type": "string", "format": "uri", "contentMediaType": "application/json"},
            },
            "jobs": {
                "title": "Job counts",
                "description": "how many tile jobs ended in each state",
                "schema": {"type": "object"},
            },
        },
    }


def _input(title: str, description: str, schema: dict[str, Any], min_occurs: int = 1) -> dict[str, Any]:
    return {"title": title, "description": description, "schema": schema, "minOccurs": min_occurs, "maxOccurs": 1}
