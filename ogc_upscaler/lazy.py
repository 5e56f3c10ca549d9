"""Packages whose public names are imported on first use (PEP 562), so that importing a package, or the
command line, costs milliseconds instead of the seconds numpy, rasterio and matplotlib take.

A package calls :func:`attach` with where each name lives. Importing a submodule that shares a public
name (``ogc_upscaler.plan`` and the function ``plan``) leaves the name to the function, as importing
everything at once did.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from typing import Any


def attach(package: str, homes: Mapping[str, str]) -> None:
    """Make the names of ``homes`` (name → module) attributes of ``package``, imported on first use."""
    module = sys.modules[package]
    names = dict(homes)

    class Lazy(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name not in names:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(names[name]), name)
            types.ModuleType.__setattr__(self, name, value)
            return value

        def __setattr__(self, name: str, value: Any) -> None:
            if name in names and isinstance(value, types.ModuleType):
                return  # the submodule named like a public name: the name stays the public one
            types.ModuleType.__setattr__(self, name, value)

        def __dir__(self) -> list[str]:
            return sorted({*vars(self), *names})

    module.__class__ = Lazy
