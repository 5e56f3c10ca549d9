"""Fetching what packages import, offline where we can: the ``eoap/schemas`` types most packages
``$import`` from GitHub are served from the copies shipped in ``ogc_upscaler/data/cwl_schemas/eoap``."""

from __future__ import annotations

from importlib import resources

from schema_salad.fetcher import DefaultFetcher

#: Where packages import the eoap schemas from, and the shipped stand-ins (file name → same name here).
OFFLINE = {
    "https://raw.githubusercontent.com/eoap/schemas/main/": "eoap",
    "https://raw.githubusercontent.com/eoap/schemas/refs/heads/main/": "eoap",
}


def offline_text(url: str) -> str | None:
    """The shipped stand-in for ``url`` (fragment ignored), or None if none is shipped."""
    base = url.split("#", 1)[0]
    for prefix, folder in OFFLINE.items():
        if base.startswith(prefix):
            resource = resources.files("ogc_upscaler") / "data" / "cwl_schemas" / folder / base[len(prefix) :]
            return resource.read_text(encoding="utf-8") if resource.is_file() else None
    return None


class OfflineFetcher(DefaultFetcher):
    """schema-salad's fetcher, answering the shipped schema URLs from disk (no network needed for them)."""

    def fetch_text(self, url: str, content_types: list[str] | None = None) -> str:
        text = offline_text(url)
        return text if text is not None else super().fetch_text(url, content_types)

    def check_exists(self, url: str) -> bool:
        return offline_text(url) is not None or super().check_exists(url)
