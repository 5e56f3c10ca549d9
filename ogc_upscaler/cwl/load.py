"""Loading application packages with cwltool, as the ecosystem writes them.

cwltool reads and validates the document (``$import``\\ ed schemas served offline by
:mod:`~ogc_upscaler.cwl.fetch`, JavaScript checked with Node.js), the entry is chosen (``#id``, else
``#main``, else the only top-level Workflow), and the packed document it gives is read into typed
values. Loaded packages are cached by the file's content, so a server with many packages starts fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Iterator, Mapping
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from ogc_upscaler.cwl.package import Package, Parameter, Resources, Tool
from ogc_upscaler.cwl.resources import FIELDS, Expressions, bindings
from ogc_upscaler.cwl.types import parse, short_name
from ogc_upscaler.errors import InvalidPackage

log = logging.getLogger(__name__)

#: Where loaded packages are cached (``OGC_UPSCALER_CACHE`` or ``XDG_CACHE_HOME`` moves it).
CACHE_VERSION = 3


def load_package(reference: str | Path, *, validate: bool = True) -> Package:
    """Load and check the package at ``path[#workflow]``; :class:`InvalidPackage` says what is wrong.

    A folder holding one ``.cwl`` file is that file. ``validate=False`` skips cwltool's schema checks
    (for a package already checked, e.g. by the server that published it).
    """
    path, wanted = _reference(reference)
    key = hashlib.sha256(b"\0".join([_digest(path).encode(), str(path).encode(), wanted.encode(), _versions()]))
    cached = _cache_read(key.hexdigest())
    if isinstance(cached, Package):
        return cached
    package, sources = _load(path, wanted, validate)
    if validate:
        _cache_write(key.hexdigest(), package, sources)
    return package


def workflows(reference: str | Path) -> list[str]:
    """The ids of the top-level Workflows of a package file (those no other Workflow runs as a step)."""
    path, _ = _reference(reference)
    key = hashlib.sha256(b"\0".join([b"workflows", _digest(path).encode(), str(path).encode(), _versions()]))
    cached = _cache_read(key.hexdigest())
    if isinstance(cached, list):
        return cached
    with _loading(f"package {path}"):
        context, document, _uri, _order = _resolve(path, validate=False)
        found = [short_name(w["id"]) for w in _entries(_nodes(context, document, path))]
        sources = _sources(context)
    _cache_write(key.hexdigest(), found, sources)
    return found


def pack_process(path: Path) -> dict[str, Any]:
    """The one process in the CWL file ``path`` (a CommandLineTool of ours), packed as cwltool packs it."""
    from cwltool.load_tool import make_tool
    from cwltool.main import print_pack

    with _loading(f"CWL file {path}"):
        context, _raw, uri, _order = _resolve(path, validate=True)
        tool = make_tool(uri, context)
        packed: dict[str, Any] = json.loads(print_pack(context, tool.tool["id"]))
    return packed


def _reference(reference: str | Path) -> tuple[Path, str]:
    path_text, _, wanted = str(reference).partition("#")
    path = Path(path_text)
    where = f"package {path}"
    if path.is_dir():
        files = sorted(path.glob("*.cwl"))
        if len(files) != 1:
            found = ", ".join(f.name for f in files) or "none"
            raise InvalidPackage(
                f"{where}: a folder, holding {len(files)} .cwl files ({found})",
                hint="give the path of the package's CWL file, e.g. FOLDER/app.cwl",
            )
        path = files[0]
    if not path.is_file():
        raise InvalidPackage(f"package {path}: no such file", hint="give the path of a CWL file")
    return path.resolve(), wanted


def _load(path: Path, wanted: str, validate: bool) -> tuple[Package, list[Path]]:
    from cwltool.load_tool import make_tool
    from cwltool.main import print_pack

    where = f"package {path.name}"
    with _loading(where):
        context, raw, _uri, order = _resolve(path, validate)
        if not isinstance(raw, Mapping) or "cwlVersion" not in raw:
            raise InvalidPackage(f"{where}: not a CWL document (no cwlVersion)", hint="an application package is CWL")
        nodes = _nodes(context, raw, path)
        workflow = _choose(nodes, wanted, where)
        tool = make_tool(workflow["id"], context)
        packed = json.loads(print_pack(context, tool.tool["id"]))
    graph = packed.get("$graph", [packed])
    main = next(n for n in graph if n.get("id") == "#main")
    named = _named_types(graph)
    processes = list(_processes(graph))
    tools = [n for n in processes if n.get("class") == "CommandLineTool"]
    if not tools:
        raise InvalidPackage(f"{where}: holds no CommandLineTool", hint="a package needs at least one CommandLineTool")
    text = json.dumps(packed)
    sources = _sources(context)
    return Package(
        path=path,
        workflow=short_name(workflow["id"]),
        label=str(main.get("label", "")),
        doc=str(main.get("doc", "")).strip(),
        version=_software_version(raw),
        inputs=_in_order(main.get("inputs", []), named, order.get(short_name(workflow["id"]), [])),
        outputs=_in_order(main.get("outputs", []), named, order.get(short_name(workflow["id"]), [])),
        temporary_fail_codes=frozenset(int(c) for n in tools for c in n.get("temporaryFailCodes", [])),
        tools=tuple(_tool(n, main) for n in tools),
        javascript=any(_requirement(n, "InlineJavascriptRequirement") for n in processes),
        packed=text,
        metadata=json.dumps(_metadata(raw), default=str),
    ), sources


def _processes(nodes: list[Any]) -> Iterator[dict[str, Any]]:
    """Every process of a packed graph, the ones written inline as a step's ``run`` included."""
    for node in nodes:
        if isinstance(node, dict):
            yield node
            runs = [step.get("run") for step in node.get("steps", []) if isinstance(step, dict)]
            yield from _processes([r for r in runs if isinstance(r, dict)])


def _resolve(path: Path, validate: bool) -> tuple[Any, Any, str, dict[str, list[str]]]:
    from cwltool.context import LoadingContext
    from cwltool.load_tool import fetch_document, resolve_and_validate_document

    from ogc_upscaler.cwl.fetch import OfflineFetcher

    context = LoadingContext({"fetcher_constructor": OfflineFetcher, "do_update": True, "do_validate": validate})
    context, document, uri = fetch_document(str(path), context)
    order = _declared_order(document)  # resolving turns maps into lists sorted by id
    context, uri = resolve_and_validate_document(context, document, uri)
    return context, document, uri, order


def _declared_order(document: Any) -> dict[str, list[str]]:
    """Each Workflow's parameter names in the order the file declares them (``inputs`` and ``outputs``)."""
    nodes = document.get("$graph", [document]) if isinstance(document, Mapping) else []
    order: dict[str, list[str]] = {}
    for node in nodes:
        if isinstance(node, Mapping) and node.get("class") == "Workflow":
            names = []
            for section in ("inputs", "outputs"):
                value = node.get(section) or []
                items = value.keys() if isinstance(value, Mapping) else (p.get("id", "") for p in value)
                names += [short_name(str(name)) for name in items]
            order[short_name(str(node.get("id", "main")))] = names
    return order


def _nodes(context: Any, raw: Any, path: Path) -> list[dict[str, Any]]:
    resolved = context.loader.resolve_ref(path.as_uri())[0]
    nodes = resolved.get("$graph", [resolved]) if isinstance(resolved, Mapping) else resolved
    return [n for n in nodes if isinstance(n, Mapping)]


def _entries(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    workflows = [n for n in nodes if n.get("class") == "Workflow"]
    run = {str(s.get("run")) for w in workflows for s in w.get("steps", []) if isinstance(s.get("run"), str)}
    return [w for w in workflows if w["id"] not in run]


def _choose(nodes: list[dict[str, Any]], wanted: str, where: str) -> dict[str, Any]:
    workflows = [n for n in nodes if n.get("class") == "Workflow"]
    if not workflows:
        raise InvalidPackage(f"{where}: holds no Workflow", hint="a package is one entry Workflow and its tools")
    if wanted:
        chosen = [w for w in workflows if short_name(w["id"]) == wanted or w["id"].endswith(f"#{wanted}")]
        if not chosen:
            raise InvalidPackage(
                f"{where}: no Workflow called {wanted!r}", hint=f"its Workflows are: {_ids(workflows)}"
            )
        return chosen[0]
    entries = _entries(nodes)
    main = [w for w in entries if short_name(w["id"]) == "main"]
    if main:
        return main[0]
    if len(entries) == 1:
        return entries[0]
    raise InvalidPackage(
        f"{where}: holds several Workflows ({_ids(entries)})",
        hint=f"name the entry point as {Path(where.split(' ', 1)[1]).name}#ID, one of: {_ids(entries)}",
    )


def _ids(workflows: list[dict[str, Any]]) -> str:
    return ", ".join(short_name(w["id"]) for w in workflows)


def _named_types(graph: list[dict[str, Any]]) -> dict[str, Any]:
    named: dict[str, Any] = {}
    for node in graph:
        for requirement in node.get("requirements", []) + node.get("hints", []):
            if requirement.get("class") == "SchemaDefRequirement":
                for kind in requirement.get("types", []):
                    if isinstance(kind, Mapping) and kind.get("name"):
                        named[str(kind["name"])] = kind
    return named


def _in_order(packed: list[Any], named: Mapping[str, Any], declared: list[str]) -> tuple[Parameter, ...]:
    """The packed parameters (sorted by id) in the order the file declares them."""
    rank = {name: i for i, name in enumerate(declared)}
    parameters = [_parameter(p, named) for p in packed]
    return tuple(sorted(parameters, key=lambda p: rank.get(p.id, len(rank))))


def _parameter(raw: Mapping[str, Any], named: Mapping[str, Any]) -> Parameter:
    return Parameter(
        id=short_name(str(raw["id"])),
        type=parse(raw.get("type"), named),
        label=str(raw.get("label", "")),
        doc=_text(raw.get("doc", "")),
        default=raw.get("default"),
        has_default=raw.get("default") is not None,
    )


def _tool(node: Mapping[str, Any], main: Mapping[str, Any]) -> Tool:
    base = node.get("baseCommand")
    command = (base[0] if isinstance(base, list) and base else base) if base else None
    docker = _requirement(node, "DockerRequirement")
    required = any(r.get("class") == "DockerRequirement" for r in node.get("requirements", []))
    env = _requirement(node, "EnvVarRequirement") or {}
    names = tuple(str(e.get("envName")) for e in env.get("envDef", []) if isinstance(e, Mapping))
    return Tool(
        id=short_name(str(node.get("id", "tool"))),
        command=str(command) if command else None,
        image=(docker or {}).get("dockerPull") or (docker or {}).get("dockerImageId"),
        image_required=required,
        environment=names,
        resources=_resources(node, main),
    )


def _resources(node: Mapping[str, Any], main: Mapping[str, Any]) -> Resources:
    requirement = _requirement(node, "ResourceRequirement") or {}
    values: dict[str, float | None] = {}
    expressions = []
    for key, name in FIELDS.items():
        value = requirement.get(key)
        if isinstance(value, bool) or value is None:
            values[name] = None
        elif isinstance(value, int | float):
            values[name] = float(value)
        else:
            values[name] = None
            expressions.append((key, str(value)))
    if not expressions:
        return Resources(**values)
    inherited = [*main.get("requirements", []), *node.get("requirements", [])]
    found = Expressions(tuple(expressions), json.dumps(bindings(main, node)), json.dumps(inherited, default=str))
    return Resources(**values, expressions=found)


def _requirement(node: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """A requirement of ``node`` (requirements first, then hints), or None."""
    for section in ("requirements", "hints"):
        for requirement in node.get(section, []) or []:
            if isinstance(requirement, Mapping) and requirement.get("class") == name:
                return dict(requirement)
    return None


def _metadata(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The document's schema.org fields, as ``s:name`` (cwltool expands the prefix to the full URL)."""
    found = {}
    for key, value in raw.items():
        name = str(key)
        if name.startswith(("https://schema.org/", "http://schema.org/")):
            found["s:" + name.rsplit("/", 1)[-1]] = value
        elif name.startswith("s:"):
            found[name] = value
    return found


def _software_version(raw: Mapping[str, Any]) -> str | None:
    for key, value in raw.items():
        if str(key).endswith("softwareVersion"):
            return str(value)
    return None


def _text(value: Any) -> str:
    return "\n".join(map(str, value)).strip() if isinstance(value, list) else str(value).strip()


@contextlib.contextmanager
def _loading(where: str) -> Iterator[None]:
    """The one boundary for what cwltool and schema-salad raise while loading: a clear InvalidPackage."""
    import cwltool.loghandler  # noqa: F401  (sets cwltool's log level on import: before ours)
    from cwltool.errors import WorkflowException
    from schema_salad.exceptions import SchemaSaladException

    quiet = [logging.getLogger(name) for name in ("cwltool", "salad")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # "Resolved …" lines, JSHint's ES5 remarks, schema warnings: the error says what matters
        logger.setLevel(logging.ERROR)
    try:
        yield
    except InvalidPackage:
        raise
    except (SchemaSaladException, WorkflowException) as err:
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if "Node.js engine" in message or ("nodejs" in message and "couldn't find" in message):
            raise InvalidPackage(
                f"{where}: uses JavaScript expressions and no Node.js is installed",
                hint="install Node.js (Debian: apt-get install nodejs); cwltool runs the expressions with it",
            ) from None
        raise InvalidPackage(
            f"{where}: not valid CWL: {message[:800]}", hint="`cwltool --validate FILE` shows the full report"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InvalidPackage(f"{where}: cannot be read: {type(err).__name__}: {err}") from None
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _versions() -> bytes:
    return f"{CACHE_VERSION} {installed_version('ogc-upscaler')} {installed_version('cwltool')}".encode()


def _cache_dir() -> Path:
    base = os.environ.get("OGC_UPSCALER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ogc-upscaler"
    )
    return Path(base) / "packages"


def _sources(context: Any) -> list[Path]:
    """The local files a load read (the package, its ``run`` files, its imports)."""
    return sorted(
        {Path(url.split("#")[0][len("file://") :]) for url in context.loader.idx if url.startswith("file://")}
    )


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _cache_read(key: str) -> Any:
    """The cached package (or list of workflows), if every file it was loaded from (imports, ``run`` files)
    is unchanged."""
    try:
        sources, package = pickle.loads((_cache_dir() / f"{key}.pickle").read_bytes())
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    if not isinstance(package, Package | list) or any(_digest(Path(p)) != digest for p, digest in sources):
        return None
    return package


def _cache_write(key: str, package: Package | list[str], sources: list[Path]) -> None:
    folder = _cache_dir()
    record = ([(str(p), _digest(p)) for p in sources], package)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_bytes(pickle.dumps(record))
        tmp.replace(folder / f"{key}.pickle")
