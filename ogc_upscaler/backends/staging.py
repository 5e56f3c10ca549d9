"""A tile packed for a node that does not share our filesystem, and its outcome unpacked back.

With ``staging: jobstore`` (always on Kubernetes, whose tile pods get no shared volume from
Toil), a tile's run travels through Toil's job store. The leader packs what the run reads
into one archive:

    package.cwl   the run file: the application package wrapped in its stage steps (one file)
    job.yml       the job file, its local File and Directory locations made relative, and the
                  local STAC item hrefs its stage-in steps read made relative too
    staged.json   the inputs whose values are item hrefs (made absolute again on the node)
    items/NAME/   the local STAC items of those inputs, each with its local assets beside it
    stage/NAME/   the STAC items staged on the leader for a Directory deeper in an input, their
                  local assets copied into stage/NAME/assets/ (cwltool stages a Directory alone)
    assets/...    the other local files and folders the job reads (each copied once)

The node runs it in a scratch folder and sends back its outcome: ``started``, ``stdout``,
``stderr.log``, ``exit_code``, ``out/`` and ``ran_in`` (the scratch folder). Unpacked into
the tile's folder, with the scratch paths in cwltool's output JSON rewritten to the folder's,
it reads exactly like a run on the shared path. Remote inputs (http, https, s3) stay remote.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from ogc_upscaler.assets import Carried, carry_item_assets, link_or_copy, local_path
from ogc_upscaler.backends.runner import record_exit

#: Links a carried item keeps: the ones a node can follow.
REMOTE = ("http://", "https://", "s3://")
OUTCOME = ("started", "stdout", "stderr.log", "ran_in")


def pack(folder: Path, package: Path, target: Path, staged: Sequence[str] = ()) -> Path:
    """Pack the tile in ``folder`` (job.yml, staged items) with the run file ``package`` into the archive
    ``target``; ``staged`` names the inputs whose item hrefs the run's stage-in steps read."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pack-") as tmp:
        root = Path(tmp)
        shutil.copyfile(package, root / "package.cwl")
        assets = Carried(root)
        if (folder / "stage").is_dir():
            shutil.copytree(folder / "stage", root / "stage", copy_function=link_or_copy)
            for directory in (root / "stage").iterdir():  # cwltool stages each Directory alone: copies go inside
                own = Carried(directory)
                for document in directory.rglob("*.json"):
                    if "assets" not in document.relative_to(directory).parts:  # not a carried asset itself
                        carry_item_assets(document, own)
        job = yaml.safe_load((folder / "job.yml").read_text()) or {}
        for name in staged:
            job[name] = _carry_items(job[name], root, root / "items" / name)
        (root / "staged.json").write_text(json.dumps(list(staged)))
        for key, value in job.items():
            if key in staged:
                continue
            for entry in value if isinstance(value, list) else [value]:
                if isinstance(entry, dict) and entry.get("class") in ("File", "Directory"):
                    entry["location"] = _relocate(entry["location"], folder, root, assets)
        (root / "job.yml").write_text(yaml.safe_dump(job, sort_keys=False))
        _tar(root, sorted(p.name for p in root.iterdir()), target)
    return target


def unpack(archive: Path, into: Path) -> Path:
    """Unpack a tile packed by :func:`pack` into ``into`` (created), where it runs: the item hrefs of the
    staged inputs are made absolute (stage-in runs in a folder of its own)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (into / "tmp").mkdir(exist_ok=True)
    staged = json.loads((into / "staged.json").read_text()) if (into / "staged.json").is_file() else []
    if staged:
        job = yaml.safe_load((into / "job.yml").read_text()) or {}
        for name in staged:
            job[name] = _absolute(job[name], into)
        (into / "job.yml").write_text(yaml.safe_dump(job, sort_keys=False))
    return into


def pack_outcome(work: Path, target: Path) -> Path:
    """Pack the outcome of the run in ``work`` (its files and ``out/``) into ``target``."""
    (work / "ran_in").write_text(f"{work}\n")
    _tar(work, [n for n in (*OUTCOME, "exit_code", "out") if (work / n).exists()], target)
    return target


def unpack_outcome(archive: Path, folder: Path) -> int:
    """Unpack a run's outcome into the tile's ``folder``; its exit code is recorded last. Returns it."""
    landing = folder / ".outcome"
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(landing, filter="data")
    work = (landing / "ran_in").read_text().strip()
    if (landing / "out").is_dir():
        shutil.rmtree(folder / "out", ignore_errors=True)
        (landing / "out").replace(folder / "out")
    if (landing / "stdout").is_file():
        (landing / "stdout").write_text(_rewrite((landing / "stdout").read_text(), work, str(folder)))
    for name in OUTCOME:
        if (landing / name).exists():
            (landing / name).replace(folder / name)
    code = int((landing / "exit_code").read_text().strip()) if (landing / "exit_code").is_file() else 1
    shutil.rmtree(landing)
    record_exit(folder, code)
    return code


def _carry_items(value: Any, root: Path, folder: Path) -> Any:
    """A staged input's item hrefs (a list, or a list per element) with each local item copied under
    ``folder`` (its local assets carried beside it) and its href made relative to ``root``."""
    if isinstance(value, list):
        return [_carry_items(v, root, folder / str(n)) for n, v in enumerate(value)]
    path = local_path(str(value)) or (Path(value) if Path(str(value)).exists() else None)
    if path is None:
        return value  # remote: stage-in reads it where it is
    if path.is_dir():  # a folder given instead of items travels whole
        target = folder / path.name
        shutil.copytree(path, target, copy_function=link_or_copy)
        return str(target.relative_to(root))
    data = json.loads(path.read_text())
    for asset in (data.get("assets") or {}).values() if isinstance(data, dict) else ():
        href = str(asset.get("href", ""))
        if href and "://" not in href and not os.path.isabs(href):  # relative to the item, which moves
            asset["href"] = str((path.parent / href).resolve())
    if isinstance(data, dict):  # its collection, parent and root do not travel: relative links to them would break
        data["links"] = [ln for ln in data.get("links", []) if str(ln.get("href", "")).startswith(REMOTE)]
    target = folder / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data))
    carry_item_assets(target, Carried(folder))
    return str(target.relative_to(root))


def _absolute(value: Any, root: Path) -> Any:
    """Item hrefs made relative by :func:`_carry_items`, absolute under ``root`` again."""
    if isinstance(value, list):
        return [_absolute(v, root) for v in value]
    text = str(value)
    return str(root / text) if "://" not in text and not os.path.isabs(text) else value


def _relocate(location: str, folder: Path, root: Path, assets: Carried) -> str:
    """A job.yml location as the archive sees it: relative for local paths, unchanged for remote ones."""
    path = local_path(location)
    if path is None:
        return location
    if path.is_relative_to(folder) and (root / path.relative_to(folder)).exists():
        return str(path.relative_to(folder))
    return str(assets.add(path).relative_to(root))


def _rewrite(stdout: str, work: str, folder: str) -> str:
    """cwltool's output JSON with the node's scratch paths replaced by the tile folder's."""
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return stdout  # a failed run printed no output JSON: nothing points into the scratch folder
    pairs = [(f"file://{quote(work)}", f"file://{quote(folder)}"), (work, folder)]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            for old, new in pairs:
                if value == old or value.startswith(old + "/"):
                    return new + value[len(old) :]
        return value

    return json.dumps(walk(document), indent=2)


def _tar(root: Path, names: list[str], target: Path) -> None:
    """Write ``names`` (under ``root``) into the uncompressed archive ``target``, atomically (COGs are compressed)."""
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for name in names:
            tar.add(root / name, arcname=name)
    tmp.replace(target)
