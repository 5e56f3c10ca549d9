"""Execute requests are checked before anything runs: types, required and unknown inputs, hrefs (files under
a data root, URLs of public hosts), paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ogc_upscaler.cwl import load_package
from ogc_upscaler.errors import InvalidRequest
from ogc_upscaler.server.describe import package_description, upscale_description
from ogc_upscaler.server.inputs import ReadPolicy, check_href, check_inputs, check_text

NDVI = Path(__file__).parents[2] / "app_packages" / "ndvi" / "ndvi.cwl"
PUBLIC = "https://93.184.216.34/x.json"  # a public address: no name to resolve, so the test needs no DNS


@pytest.fixture(scope="module")
def ndvi() -> dict:
    return package_description(load_package(NDVI, validate=False), "ndvi")


def good(**changes) -> dict:
    inputs = {
        "items": ["https://example.org/item.json"],
        "bbox": "700000,5320000,720000,5340000",
        "epsg": 32632,
        "resolution": 20,
        "tile_id": "UTM20KM-32N-E700N5320",
        "datetime": "2024-04-01/2024-05-01",
    }
    inputs.update(changes)
    return {k: v for k, v in inputs.items() if v is not None}


def test_the_description_follows_the_cwl(ndvi) -> None:
    assert set(ndvi["inputs"]) == {"items", "bbox", "epsg", "resolution", "tile_id", "datetime"}
    assert ndvi["inputs"]["epsg"]["schema"] == {"type": "integer"}
    assert ndvi["inputs"]["resolution"]["schema"] == {"type": "number"}
    assert ndvi["inputs"]["items"]["schema"]["type"] == "array"
    assert ndvi["outputs"]["ndvi"]["schema"]["items"]["contentMediaType"].startswith("image/tiff")
    assert "async-execute" in ndvi["jobControlOptions"]
    assert ndvi["title"] == "NDVI composite of a tile"


def test_good_inputs_pass_and_qualified_values_are_unwrapped(ndvi) -> None:
    values = check_inputs(ndvi, good(epsg={"value": 32632}, items=[{"href": "https://example.org/a.json"}]))
    assert values["epsg"] == 32632 and values["items"] == ["https://example.org/a.json"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (good(bbox=None), "missing input 'bbox'"),
        (good(colour="red"), "unknown input 'colour'"),
        (good(epsg="32632; rm -rf /"), "input 'epsg': expected integer"),
        (good(epsg=True), "input 'epsg': expected integer"),
        (good(resolution="20"), "input 'resolution': expected number"),
        (good(items="https://example.org/item.json"), "input 'items': expected array"),
        (good(items=[3]), "input 'items': item 0: expected string"),
        (["not", "a", "mapping"], "must be a JSON object"),
    ],
)
def test_bad_inputs_are_refused_with_what_was_wrong(ndvi, inputs, message) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        check_inputs(ndvi, inputs)
    assert caught.value.hint


def test_upscale_offers_the_servers_packages() -> None:
    description = upscale_description(["ndvi", "flaky"])
    assert description["inputs"]["process"]["schema"]["enum"] == ["ndvi", "flaky"]
    with pytest.raises(InvalidRequest, match="'other' is not one of ndvi, flaky"):
        check_inputs(
            description,
            {
                "process": "other",
                "aoi": [0, 0, 1, 1],
                "grid": "utm-20km",
                "resolution": 20,
                "start": "2024-01-01",
                "end": "2024-02-01",
                "stac": "https://example.org/stac",
                "templates": {},
            },
        )


def test_hrefs_are_urls_or_files_under_a_data_root(tmp_path) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "item.json").write_text("{}")
    assert check_href(PUBLIC, (), "items") == PUBLIC
    assert check_href("s3://bucket/x.json", (), "items") == "s3://bucket/x.json"
    assert check_href(str(root / "sub" / "item.json"), (root,), "items") == str(root / "sub" / "item.json")
    assert check_href(f"file://{root}/sub/item.json", (root,), "items") == str(root / "sub" / "item.json")
    outside = [
        "/etc/passwd",
        f"{root}/../secret.json",
        f"file://{root}/sub/../../secret.json",
        "sub/item.json",  # relative: to what?
        "ftp://example.org/x.json",
        "http:///no-host",
    ]
    for href in outside:
        with pytest.raises(InvalidRequest):
            check_href(href, (root,), "items")
    (root / "escape").symlink_to("/etc")  # a link out of the root is followed before the check
    with pytest.raises(InvalidRequest, match="not a file this server may read"):
        check_href(str(root / "escape" / "passwd"), (root,), "items")


@pytest.mark.parametrize("value", ["/etc/passwd", "../../x", "a/../../b", "~/x"])
def test_text_inputs_may_not_name_paths_outside_the_job(value) -> None:
    with pytest.raises(InvalidRequest, match="outside the job's folder"):
        check_text(value, "input 'tile_id'")


@pytest.mark.parametrize("value", ["UTM20KM-32N-E700N5320", "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z", "a..b"])
def test_ordinary_text_passes(value) -> None:
    assert check_text(value, "input") == value


@pytest.mark.parametrize(
    ("href", "host"),
    [
        ("http://127.0.0.1:8080/x.json", "the host 127.0.0.1 is"),
        ("http://localhost/x.json", "the host localhost (127.0.0.1) is"),
        ("http://[::1]/x.json", "the host ::1 is"),
        ("http://[::ffff:127.0.0.1]/x.json", "the host ::ffff:127.0.0.1 is"),
        ("http://2130706433/x.json", "the host 2130706433 (127.0.0.1) is"),  # 127.0.0.1 as one number
        ("http://0/x.json", "the host 0 (0.0.0.0) is"),
        ("http://169.254.169.254/latest/meta-data/", "the host 169.254.169.254 is"),  # cloud metadata
        ("http://10.0.0.8/x.json", "the host 10.0.0.8 is"),
        ("https://192.168.1.1/x.json", "the host 192.168.1.1 is"),
        ("http://100.64.0.1/x.json", "the host 100.64.0.1 is"),  # carrier-grade NAT
        ("http://[fd00::1]/x.json", "the host fd00::1 is"),
        ("http://224.0.0.1/x.json", "the host 224.0.0.1 is"),
    ],
)
def test_urls_of_internal_hosts_are_refused_unless_allowed(href: str, host: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(f"items: {host} an internal address")) as caught:
        check_href(href, (), "items")
    assert "--allow-internal-urls" in (caught.value.hint or "") and "allow_internal_urls" in (caught.value.hint or "")
    assert check_href(href, ReadPolicy((), allow_internal_urls=True), "items") == href


def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"the host no-such-host\.invalid cannot be resolved"):
        check_href("https://no-such-host.invalid/x.json", (), "items")
    with pytest.raises(InvalidRequest, match="is not a valid URL"):
        check_href("http://[::1/x.json", (), "items")


def test_a_read_policy_comes_from_the_processor_definition(tmp_path) -> None:
    policy = ReadPolicy.from_definition({"data_roots": [str(tmp_path)], "allow_internal_urls": True})
    assert list(policy) == [tmp_path] and policy.allow_internal_urls
    assert not ReadPolicy.from_definition({}).allow_internal_urls
