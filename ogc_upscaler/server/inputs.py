"""Checking an execute request's inputs before anything runs: against the process description, and
every href against what the server may read.

Values reach packages only as CWL inputs (cwltool passes them as argv, never through a
shell; packages that ask for a shell are not served), and references reach the disk or
the network only through :func:`check_href`: a URL of a remote scheme whose host is
public (not loopback, private, link-local or otherwise internal, unless the operator
allows it), or a file under one of the server's data roots. Anything else is
:class:`InvalidRequest`, answered with 400.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pystac

from ogc_upscaler.errors import InvalidRequest

REMOTE_SCHEMES = ("http", "https", "s3")
#: Schemes whose host is a network address the server connects to (an s3 URL names a bucket).
NETWORK_SCHEMES = ("http", "https")
#: How long a host's addresses are trusted before they are resolved again.
RESOLVED_FOR = 60.0
_resolved: dict[str, tuple[float, tuple[str, ...]]] = {}


@dataclass(frozen=True)
class ReadPolicy:
    """What the server may read for a request: files under ``roots``, and URLs of public hosts (or of any
    host, with ``allow_internal_urls``). Iterating it gives the roots."""

    roots: tuple[Path, ...] = ()
    allow_internal_urls: bool = False

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> ReadPolicy:
        """The policy a processor definition carries (``data_roots``, ``allow_internal_urls``)."""
        roots = tuple(Path(r) for r in definition.get("data_roots", ()))
        return cls(roots, bool(definition.get("allow_internal_urls", False)))

    def __iter__(self) -> Iterator[Path]:
        return iter(self.roots)


TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def check_inputs(description: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """``data`` as a mapping of input id to value, checked against the description's inputs."""
    if not isinstance(data, dict):
        raise InvalidRequest("the request's inputs must be a JSON object of input id to value")
    declared: Mapping[str, Any] = description.get("inputs", {})
    unknown = sorted(set(data) - set(declared))
    if unknown:
        raise InvalidRequest(
            f"unknown input {', '.join(map(repr, unknown))} for process {description['id']!r}",
            hint=f"the inputs are: {', '.join(declared)}",
        )
    missing = [k for k, d in declared.items() if int(d.get("minOccurs", 1)) > 0 and data.get(k) is None]
    if missing:
        raise InvalidRequest(
            f"missing input {', '.join(map(repr, missing))} for process {description['id']!r}",
            hint=f"GET /processes/{description['id']} describes each input",
        )
    # a qualified value ({"value": …}) is unwrapped, unless the input is itself an object (a record such as
    # the eoap URI, {"value": "https://…"})
    values = {
        k: v if declared[k].get("schema", {}).get("type") == "object" else _unwrap(v)
        for k, v in data.items()
        if v is not None
    }
    for key, value in values.items():
        problem = _mismatch(declared[key].get("schema", {}), value)
        if problem:
            raise InvalidRequest(f"input {key!r}: {problem}", hint=f"it takes {_schema_text(declared[key]['schema'])}")
    return values


def check_href(href: str, roots: ReadPolicy | Iterable[Path], where: str) -> str:
    """``href`` if the server may read it: a URL of a public host, or a file under a data root (returned
    resolved). ``roots`` is a :class:`ReadPolicy`, or bare roots (then internal hosts are refused)."""
    policy = roots if isinstance(roots, ReadPolicy) else ReadPolicy(tuple(roots))
    if not isinstance(href, str) or not href:
        raise InvalidRequest(f"{where}: expected a URL, got {href!r}")
    try:
        parts = urlsplit(href)
        host = parts.hostname
    except ValueError as err:  # a malformed netloc, e.g. an unclosed IPv6 bracket
        raise InvalidRequest(f"{where}: {_short(href)} is not a valid URL ({err})") from None
    if parts.scheme in REMOTE_SCHEMES:
        if not parts.netloc or not host:
            raise InvalidRequest(f"{where}: {href!r} has no host")
        if parts.scheme in NETWORK_SCHEMES and not policy.allow_internal_urls:
            check_public_host(host, where)
        return href
    if parts.scheme not in ("", "file"):
        raise InvalidRequest(
            f"{where}: the {parts.scheme!r} scheme is not accepted", hint=f"give a {'/'.join(REMOTE_SCHEMES)} URL"
        )
    path = Path(unquote(parts.path) if parts.scheme == "file" else href)
    real = path.resolve()
    if path.is_absolute() and any(real.is_relative_to(root.resolve()) for root in policy.roots):
        return str(real)
    raise InvalidRequest(
        f"{where}: {href!r} is not a file this server may read",
        hint="give an http(s) URL; the server's operator can allow a local folder with `serve --data-root`",
    )


def check_public_host(host: str, where: str) -> None:
    """Refuse a host that is, or resolves to, a loopback, private, link-local or otherwise internal address:
    the server would fetch it from inside the operator's network."""
    for address in _addresses(host, where):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            named = host if host == address else f"{host} ({address})"
            raise InvalidRequest(
                f"{where}: the host {named} is an internal address; this server fetches only public hosts",
                hint="give a URL on a public host; an operator who means to serve internal hosts starts the "
                "endpoint with `serve --allow-internal-urls` (the allow_internal_urls setting)",
            )


def _addresses(host: str, where: str) -> tuple[str, ...]:
    """The addresses ``host`` resolves to now (remembered for :data:`RESOLVED_FOR` seconds)."""
    known = _resolved.get(host)
    if known and time.monotonic() - known[0] < RESOLVED_FOR:
        return known[1]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as err:
        raise InvalidRequest(
            f"{where}: the host {host} cannot be resolved from this server ({err})",
            hint="check the URL; the server fetches it from its own network",
        ) from None
    addresses = tuple(sorted({str(info[4][0]) for info in infos}))
    if len(_resolved) > 1024:
        _resolved.clear()
    _resolved[host] = (time.monotonic(), addresses)
    return addresses


def check_assets(item: pystac.Item, roots: ReadPolicy | Iterable[Path], where: str) -> None:
    """Every asset of ``item`` passes :func:`check_href` (assets are what a package's tool reads)."""
    for key, asset in item.assets.items():
        check_href(asset.get_absolute_href() or asset.href, roots, f"{where}{item.id}/{key}")


def check_text(value: str, where: str) -> str:
    """A string input that does not name a path outside the job's folder (absolute, ``~``, or ``..``)."""
    path = PurePosixPath(value)
    if path.is_absolute() or value.startswith("~") or ".." in path.parts:
        raise InvalidRequest(
            f"{where}: {_short(value)} reads as a path outside the job's folder",
            hint="text inputs may not start with / or ~ or hold a .. segment; pass data as URLs",
        )
    return value


def _unwrap(value: Any) -> Any:
    """A qualified value ``{"value": v, ...}`` as its value; a link ``{"href": h}`` as its href."""
    if isinstance(value, dict) and set(value) <= {"value", "mediaType", "encoding", "schema"} and "value" in value:
        return value["value"]
    if (
        isinstance(value, dict)
        and isinstance(value.get("href"), str)
        and set(value) <= {"href", "type", "rel", "title"}
    ):
        return value["href"]
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _mismatch(schema: Mapping[str, Any], value: Any) -> str | None:
    if "oneOf" in schema:
        if all(_mismatch(option, value) for option in schema["oneOf"]):
            return f"got {_short(value)}, which matches none of the accepted forms"
        return None
    kind = schema.get("type")
    if isinstance(kind, list):  # a nullable type: ["string", "null"]
        kinds = [k for k in kind if k != "null" and k in TYPES]
        kind = next((k for k in kinds if TYPES[k](value)), None)
        if kind is None:
            return f"expected {' or '.join(kinds)}, got {_short(value)}"
    if kind and not TYPES[kind](value):
        return f"expected {kind}, got {_short(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{value!r} is not one of {', '.join(map(str, schema['enum']))}"
    if kind == "array":
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            return f"expected {schema.get('minItems', 0)}..{schema.get('maxItems', 'n')} items, got {len(value)}"
        for i, item in enumerate(value):
            problem = _mismatch(schema.get("items", {}), item)
            if problem:
                return f"item {i}: {problem}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            problem = _mismatch(schema["additionalProperties"], item)
            if problem:
                return f"{key!r}: {problem}"
    if kind == "number" and "minimum" in schema and value < schema["minimum"]:
        return f"must be at least {schema['minimum']}"
    return None


def _schema_text(schema: Mapping[str, Any]) -> str:
    if "oneOf" in schema:
        return " or ".join(_schema_text(s) for s in schema["oneOf"])
    kind = schema.get("type", "any value")
    if isinstance(kind, list):
        kind = " or ".join(k for k in kind if k != "null") or "any value"
    if kind == "array":
        return f"an array of {_schema_text(schema.get('items', {}))}"
    if "enum" in schema:
        return f"one of {', '.join(map(str, schema['enum']))}"
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
