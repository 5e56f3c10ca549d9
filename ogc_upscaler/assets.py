"""Local STAC assets carried into a run's own folder, for runs that see nothing else.

A run in a container sees only the Directory cwltool mounts, and a run on a node without our
filesystem sees only what travelled with it: a staged item whose asset href is an absolute
path on this machine is unreadable there. :class:`Carried` places each local file or folder
once under ``ROOT/assets/N/NAME`` (hard-linked where the filesystem allows, so a local archive
costs no space, else copied) and :func:`carry_item_assets` points an item's hrefs at the
copies, relative to the item. Remote hrefs (http, https, s3) stay as they are.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse


class Carried:
    """Local files and folders placed under ``root/assets/N/NAME``, once each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.placed: dict[Path, Path] = {}

    def add(self, path: Path) -> Path:
        """The copy of ``path`` under ``root`` (placed on first use); FileNotFoundError if it is gone."""
        source = path.resolve()
        if source not in self.placed:
            if not source.exists():
                raise FileNotFoundError(f"{source} does not exist")
            target = self.root / "assets" / str(len(self.placed)) / source.name
            target.parent.mkdir(parents=True)
            if source.is_dir():
                shutil.copytree(source, target, copy_function=link_or_copy)
            else:
                link_or_copy(source, target)
            self.placed[source] = target
        return self.placed[source]


def local_path(href: str) -> Path | None:
    """The absolute local path ``href`` names, or None for a remote or relative href."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "" and os.path.isabs(href):
        return Path(href)
    return None


def carry_item_assets(document: Path, carried: Carried) -> None:
    """Point the local asset hrefs of the STAC item ``document`` at their carried copies."""
    data = json.loads(document.read_text())
    changed = False
    for asset in (data.get("assets") or {}).values() if isinstance(data, dict) else ():
        path = local_path(str(asset.get("href", "")))
        if path is not None:
            asset["href"] = os.path.relpath(carried.add(path), document.parent)
            changed = True
    if changed:  # a new file replaces the document: it may be a hard link, whose original must not change
        fresh = document.with_name(document.name + ".tmp")
        fresh.write_text(json.dumps(data, indent=1))
        fresh.replace(document)


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Hard-link ``source`` to ``target``; copy it where linking is refused (another filesystem, not ours)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
