"""Execute request bodies are read at the edge: anything but a JSON object of sane depth is a 400."""

from __future__ import annotations

import pytest

from ogc_upscaler.errors import InvalidRequest
from ogc_upscaler.server.execute import MAX_DEPTH, check_members, preferences, process_of, read_body

BASE = "http://example.org/api"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "has no body"),
        (b"  \n", "has no body"),
        (b"[1, 2]", "got an array"),
        (b'"a string"', "got a string"),
        (b"3.5", "got a number"),
        (b"true", "got a boolean"),
        (b"null", "got null"),
        (b"{", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 10_000 + b"]" * 10_000, f"nests deeper than {MAX_DEPTH} levels"),
        (b'{"inputs": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}", "nests deeper than"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "not JSON"),  # an integer of 5,000 digits
    ],
)
def test_bodies_that_are_not_execute_requests_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        read_body(body)
    assert caught.value.hint


def test_an_execute_request_and_its_members() -> None:
    aoi = {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}
    body = read_body(b'{"inputs": {"aoi": %s}, "response": "document"}' % str(aoi).replace("'", '"').encode())
    assert body["inputs"]["aoi"] == aoi
    assert check_members(body) == {"inputs": {"aoi": aoi}, "outputs": None, "response": "document"}
    assert check_members({})["inputs"] == {}
    for bad, message in [
        ({"inputs": [1]}, "'inputs' must be a JSON object, got an array"),
        ({"outputs": "all"}, "'outputs' must be a JSON object"),
        ({"subscriber": "http://x"}, "'subscriber' must be a JSON object"),
        ({"response": "everything"}, "'response' must be one of raw, document"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            check_members(bad)


def test_the_process_is_named_by_id_or_by_its_url_here() -> None:
    known = ["ndvi", "upscale"]
    assert process_of("ndvi", known, BASE) == "ndvi"
    assert process_of(f"{BASE}/processes/upscale", known, BASE) == "upscale"
    assert process_of(f"{BASE}/processes/upscale/", known, BASE) == "upscale"
    assert process_of("/processes/ndvi", known, BASE) == "ndvi"
    assert process_of("http://10.0.0.5:8080/api/processes/ndvi", known, BASE) == "ndvi", "named from elsewhere"
    for other in (f"{BASE}/processes/other", "other", f"{BASE}/jobs/ndvi", "processes"):
        with pytest.raises(InvalidRequest, match="not served here") as caught:
            process_of(other, known, BASE)
        assert "ndvi, upscale" in (caught.value.hint or "")
    for missing in (None, "", 3, ["ndvi"]):
        with pytest.raises(InvalidRequest, match="names no process"):
            process_of(missing, known, BASE)


def test_prefer_headers_are_read_as_rfc_7240_preferences() -> None:
    assert preferences('status="created"') == {"status": "created"}
    assert preferences("respond-async, status=created; x=y") == {"respond-async": "", "status": "created"}
    assert preferences(None) == {} and preferences("") == {}
