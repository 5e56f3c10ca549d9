"""CWL types as values: read from a package's packed document, shown as text, described as JSON Schema,
and checked against the values a campaign or an execute request gives.

A type is parsed once from what cwltool's packing gives (named types resolved from the
``SchemaDefRequirement`` types, unions with ``null`` read as optional), so every part asks the type
instead of reading CWL's many spellings: ``string[]``, ``{type: array, items: string}``, ``[null, X]``,
``X?``, a record named by URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SCALARS: dict[str, type] = {"string": str, "int": int, "long": int, "float": float, "double": float, "boolean": bool}
JSON_SCALARS = {"string": "string", "int": "integer", "long": "integer", "float": "number", "double": "number"}


class TypeMismatch(ValueError):
    """A value that does not fit a CWL type; the message says where and what was expected."""


@dataclass(frozen=True)
class CwlType:
    """One CWL type. ``kind`` is a scalar name, ``File``, ``Directory``, ``Any``, ``array``, ``enum``,
    ``record`` or ``union``; ``optional`` when ``null`` is among its alternatives."""

    kind: str
    optional: bool = False
    items: CwlType | None = None
    symbols: tuple[str, ...] = ()
    fields: tuple[tuple[str, CwlType], ...] = ()
    options: tuple[CwlType, ...] = ()
    name: str = ""
    doc: str = field(default="", compare=False)

    @property
    def text(self) -> str:
        """How the type reads in CWL's short form: ``string[]``, ``Directory?``, ``BBox``, ``enum(a|b)``."""
        if self.kind == "array":
            assert self.items is not None
            inner = self.items.text
            core = f"({inner})[]" if self.items.kind == "union" else f"{inner}[]"
        elif self.kind == "enum":
            core = self.name or f"enum({'|'.join(self.symbols)})"
        elif self.kind == "record":
            core = self.name or "record"
        elif self.kind == "union":
            core = " | ".join(o.text for o in self.options)
        else:
            core = self.kind
        return f"{core}?" if self.optional else core

    def __str__(self) -> str:
        return self.text

    def is_(self, kind: str) -> bool:
        """Whether this is ``kind`` (``File``, ``Directory``, ``string``…), optional or not."""
        return self.kind == kind

    def array_of(self, kind: str) -> bool:
        """Whether this is an array of ``kind`` (``Directory[]``…), optional or not."""
        return self.kind == "array" and self.items is not None and self.items.kind == kind

    def json_schema(self, directory: Mapping[str, Any], file: Mapping[str, Any]) -> dict[str, Any]:
        """This type as JSON Schema for a process description; ``directory`` and ``file`` are the schemas
        of what a client sends for a ``Directory`` and a ``File``."""
        schema = self._schema(directory, file)
        if self.optional:
            return {"oneOf": [schema, {"type": "null"}]} if "type" not in schema else _nullable(schema)
        return schema

    def _schema(self, directory: Mapping[str, Any], file: Mapping[str, Any]) -> dict[str, Any]:
        if self.kind in JSON_SCALARS:
            return {"type": JSON_SCALARS[self.kind]}
        if self.kind == "boolean":
            return {"type": "boolean"}
        if self.kind == "Directory":
            return dict(directory)
        if self.kind == "File":
            return dict(file)
        if self.kind == "array":
            assert self.items is not None
            return {"type": "array", "items": self.items.json_schema(directory, file)}
        if self.kind == "enum":
            return {"type": "string", "enum": list(self.symbols)}
        if self.kind == "record":
            properties = {n: t.json_schema(directory, file) for n, t in self.fields}
            required = [n for n, t in self.fields if not t.optional]
            schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
            if self.name:
                schema["title"] = self.name
            return schema
        if self.kind == "union":
            return {"oneOf": [o.json_schema(directory, file) for o in self.options]}
        return {}

    def check(self, value: Any, where: str, leaf: Callable[[CwlType, Any, str], Any] | None = None) -> Any:
        """``value`` converted to this type (``"3"`` to 3 for an int), or :class:`TypeMismatch` naming
        ``where``. ``leaf`` converts each ``File`` and ``Directory`` value (staging it, say); without it they
        pass as they are."""
        if value is None:
            if self.optional:
                return None
            raise TypeMismatch(f"{where} takes a {self.text}, got nothing")
        if self.kind in SCALARS:
            return _scalar(self, value, where)
        if self.kind in {"File", "Directory"}:
            return leaf(self, value, where) if leaf else value
        if self.kind == "array":
            assert self.items is not None
            values = value if isinstance(value, list) else None
            if values is None:
                raise TypeMismatch(f"{where} takes a {self.text} (a list), got {_show(value)}")
            return [self.items.check(v, f"{where}[{i}]", leaf) for i, v in enumerate(values)]
        if self.kind == "enum":
            if value not in self.symbols:
                raise TypeMismatch(f"{where} takes one of {', '.join(self.symbols)}; got {_show(value)}")
            return value
        if self.kind == "record":
            if not isinstance(value, dict):
                raise TypeMismatch(f"{where} takes a {self.text} record (an object), got {_show(value)}")
            unknown = sorted(set(value) - {n for n, _ in self.fields})
            if unknown:
                raise TypeMismatch(
                    f"{where}: {self.text} has no field {', '.join(unknown)}; its fields are "
                    + ", ".join(f"{n} ({t.text})" for n, t in self.fields)
                )
            return {
                n: t.check(value.get(n), f"{where}.{n}", leaf) for n, t in self.fields if n in value or not t.optional
            }
        if self.kind == "union":
            problems = []
            for option in self.options:
                try:
                    return option.check(value, where, leaf)
                except TypeMismatch as err:
                    problems.append(str(err))
            raise TypeMismatch(f"{where} takes a {self.text}; {_show(value)} fits none: " + "; ".join(problems))
        return value  # Any


def parse(raw: Any, named: Mapping[str, Any]) -> CwlType:
    """The type cwltool's packed document spells as ``raw``; ``named`` maps type names (as the document
    writes them) to their definitions."""
    return _parse(raw, named, ())


def short_name(name: str) -> str:
    """``#ogc.yaml/BBox`` or ``https://…/ogc.yaml#BBox`` → ``BBox``; ``#main/x/sym`` → ``sym``."""
    tail = name.rsplit("#", 1)[-1]
    return tail.rsplit("/", 1)[-1]


def _parse(raw: Any, named: Mapping[str, Any], seen: tuple[str, ...]) -> CwlType:
    if isinstance(raw, str):
        if raw.endswith("?"):
            return _optional(_parse(raw[:-1], named, seen))
        if raw.endswith("[]"):
            return CwlType("array", items=_parse(raw[:-2], named, seen))
        if raw in SCALARS or raw in {"File", "Directory", "Any", "null"}:
            return CwlType(raw)
        definition = named.get(raw) or named.get(raw.lstrip("#"))
        if definition is None:
            return CwlType("Any", name=short_name(raw))
        if raw in seen:  # a recursive type: described once
            return CwlType("Any", name=short_name(raw))
        return _parse(definition, named, (*seen, raw))
    if isinstance(raw, list):
        options = [_parse(r, named, seen) for r in raw if r != "null"]
        optional = "null" in raw
        if len(options) == 1:
            return _optional(options[0]) if optional else options[0]
        return CwlType("union", optional=optional, options=tuple(options))
    if isinstance(raw, dict):
        kind = raw.get("type")
        name = short_name(str(raw["name"])) if raw.get("name") else ""
        if kind == "array":
            return CwlType("array", items=_parse(raw.get("items"), named, seen), name=name)
        if kind == "enum":
            symbols = tuple(short_name(str(s)) if "#" in str(s) else str(s) for s in raw.get("symbols", []))
            return CwlType("enum", symbols=_enum_symbols(raw, symbols), name=name)
        if kind == "record":
            fields = tuple(
                (short_name(str(f["name"])), _parse(f.get("type"), named, seen)) for f in raw.get("fields", [])
            )
            return CwlType("record", fields=fields, name=name, doc=str(raw.get("doc", "")))
        return _parse(kind, named, seen)
    return CwlType("Any")


def _enum_symbols(raw: Mapping[str, Any], short: tuple[str, ...]) -> tuple[str, ...]:
    """Symbols as a client writes them. Packing qualifies inline symbols (``#main/mode/fast``) but leaves
    those of imported enums as written (``http://www.opengis.net/def/crs/OGC/1.3/CRS84``), so only a
    prefix that is the enum's own id is taken off."""
    name = str(raw.get("name", ""))
    out = []
    for symbol, fallback in zip((str(s) for s in raw.get("symbols", [])), short, strict=True):
        if name and symbol.startswith(name + "/"):
            out.append(symbol[len(name) + 1 :])
        elif symbol.startswith("#"):
            out.append(fallback)
        else:
            out.append(symbol)
    return tuple(out)


def _optional(kind: CwlType) -> CwlType:
    return CwlType(kind.kind, True, kind.items, kind.symbols, kind.fields, kind.options, kind.name, kind.doc)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]} if isinstance(schema.get("type"), str) else schema


def _scalar(kind: CwlType, value: Any, where: str) -> Any:
    try:
        if kind.kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in {"true", "false"}:
                return str(value).lower() == "true"
            raise ValueError
        if kind.kind in {"int", "long"}:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind.kind in {"float", "double"}:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(value, dict | list):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise TypeMismatch(f"{where} takes a {kind.kind}, got {_show(value)}") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
