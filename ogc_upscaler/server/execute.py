"""Execute requests as the endpoint reads them: the JSON body of ``POST /processes/{id}/execution`` and of
Part 4's ``POST /jobs``, and the ``Prefer`` header.

A body is read once, at the edge, into checked plain values; whatever is wrong with it (not JSON, not an
object, nested absurdly deep, members of the wrong type) is :class:`InvalidRequest`, answered with 400
and an OGC exception, before anything else reads it.

>>> read_body(b'{"inputs": {"epsg": 32632}}')
{'inputs': {'epsg': 32632}}
>>> preferences('respond-async, status="created"')
{'respond-async': '', 'status': 'created'}
>>> process_of("http://example.org/api/processes/ndvi", ["ndvi"], "http://example.org/api")
'ndvi'
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from ogc_upscaler.errors import InvalidRequest

#: How deep a body may nest. An execute request's deepest inputs, GeoJSON MultiPolygons, sit about 8
#: levels down; much deeper only costs the server (Python's JSON parser recurses per level).
MAX_DEPTH = 64
RESPONSES = ("raw", "document")
EXECUTE_HINT = 'send an execute request: a JSON object such as {"inputs": {...}}'


def read_body(data: bytes) -> dict[str, Any]:
    """The body as a JSON object; :class:`InvalidRequest` if it is empty, not UTF-8 JSON, not an object, or
    nested deeper than :data:`MAX_DEPTH`."""
    if not data.strip():
        raise InvalidRequest("the request has no body", hint=EXECUTE_HINT)
    try:
        body = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InvalidRequest(f"the request body is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except RecursionError:
        raise InvalidRequest(f"the request body nests deeper than {MAX_DEPTH} levels", hint=EXECUTE_HINT) from None
    except ValueError as err:
        raise InvalidRequest(f"the request body is not JSON: {err}", hint=EXECUTE_HINT) from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the request body must be a JSON object, got {_kind(body)}", hint=EXECUTE_HINT)
    if _depth_over(body, MAX_DEPTH):
        raise InvalidRequest(f"the request body nests deeper than {MAX_DEPTH} levels", hint=EXECUTE_HINT)
    return body


def check_members(body: dict[str, Any]) -> dict[str, Any]:
    """The execute request's members of a known type: ``inputs`` and ``outputs`` objects, ``response`` raw or
    document, ``subscriber`` an object; returned without the others (``process`` included)."""
    for key in ("inputs", "outputs", "subscriber"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise InvalidRequest(f"the request's {key!r} must be a JSON object, got {_kind(body[key])}")
    response = body.get("response", "raw")
    if response not in RESPONSES:
        raise InvalidRequest(f"the request's 'response' must be one of {', '.join(RESPONSES)}, got {response!r}")
    members = {"inputs": body.get("inputs") or {}, "outputs": body.get("outputs"), "response": response}
    if body.get("subscriber") is not None:
        members["subscriber"] = body["subscriber"]
    return members


def process_of(reference: Any, known: Collection[str], base_url: str) -> str:
    """The id of the process an execute request names in ``process``: its id, or its URL (``.../processes/<id>``;
    the host is not compared, as clients behind proxies or on other networks name this server otherwise)."""
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidRequest(
            "the request names no process",
            hint=f'POST /jobs takes an execute request with "process": "{base_url}/processes/<id>"',
        )
    path = "/" + (urlsplit(reference.strip()).path if "://" in reference else reference.strip()).strip("/")
    identifier = path.rsplit("/processes/", 1)[-1] if "/processes/" in path else path.lstrip("/")
    if identifier not in known:
        raise InvalidRequest(
            f"process {reference!r} is not served here",
            hint=f"the processes are {base_url}/processes/<id> with <id> one of {', '.join(known)}",
        )
    return identifier


def preferences(header: str | None) -> dict[str, str]:
    """The preferences of a ``Prefer`` header (RFC 7240): name to value ('' for a bare name); the
    parameters after ``;`` are dropped."""
    found: dict[str, str] = {}
    for part in (header or "").split(","):
        token = part.split(";", 1)[0].strip()
        if token:
            name, _, value = token.partition("=")
            found[name.strip().lower()] = value.strip().strip('"')
    return found


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` levels (walked without recursion)."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        todo.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
