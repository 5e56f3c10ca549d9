"""The two steps run around every package, as EOEPCA's ADES and ZOO-DRU run theirs: ``cwl/stage-in.cwl``
and ``cwl/stage-out.cwl`` are CommandLineTools calling :func:`stage_in_main` and :func:`stage_out_main`.

- **Stage-in**: STAC item hrefs (URLs or paths) become a local Directory holding a ``catalog.json``
  that lists copies of the items, their assets left where they are (absolute hrefs) or, for a run
  that sees only the Directory (a container), carried inside it. A local folder given instead of
  items is taken as it is (its files hard-linked, so nothing is copied on one filesystem).
- **Stage-out**: the package's result Directories are checked before anything is collected: at
  least one holds a ``catalog.json``, and every local asset of every item in it is there. The
  catalogs become one Directory (one catalog as it is; several under one root catalog), which is
  what the collector reads. A package that wrote no catalog fails here, with what it wrote.

Each ends with one line on stderr saying what went wrong, the line the manager reports as the
job's cause. This module imports only pystac (and obstore for an ``s3://`` item), so a step costs a fraction
of a second.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pystac

from ogc_upscaler.assets import Carried, carry_item_assets, link_or_copy, local_path
from ogc_upscaler.s3_stac_io import S3StacIO


class StageError(Exception):
    """A stage step that cannot do its work: the message is the job's cause, as the tool's own words."""


def stage_items(hrefs: Sequence[str], folder: Path, *, carry_assets: bool = False) -> Path:
    """Copy STAC items into ``folder`` with a ``catalog.json`` listing them. Local assets stay
    absolute, or with ``carry_assets`` are hard-linked (else copied) into ``folder/assets/``."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog(id="inputs", description="STAC items staged for one job")
    for href in hrefs:
        try:
            item = pystac.Item.from_file(href)
        except Exception as err:  # whatever reading a document the job named raises: it is the job's cause
            raise StageError(f"{href} is not a STAC Item that can be read here ({type(err).__name__}: {err})") from None
        item.make_asset_hrefs_absolute()
        catalog.add_item(item.clone())
    catalog.normalize_hrefs(str(folder))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    if carry_assets:
        carried = Carried(folder)
        for item in catalog.get_items():
            carry_item_assets(Path(item.get_self_href()), carried)
    return folder


def stage_in(references: Sequence[str], target: Path, *, carry_assets: bool = False) -> Path:
    """Stage ``references`` into ``target``: one local folder as it is, else STAC items (see module)."""
    if not references:
        raise StageError("no STAC item was given to stage")
    folder = local_path(references[0]) or Path(references[0])
    if len(references) == 1 and folder.is_dir():
        shutil.copytree(folder, target, copy_function=link_or_copy, symlinks=True)
        return target
    return stage_items(references, target, carry_assets=carry_assets)


def stage_out(results: Sequence[Path], target: Path) -> Path:
    """Check the package's result Directories and put their catalogs into ``target`` (see module)."""
    catalogs = [r for r in results if (r / "catalog.json").is_file()]
    if not catalogs:
        wrote = "; ".join(f"{r.name}/ holds {_listing(r)}" for r in results) or "no Directory"
        raise StageError(
            f"the package's output holds no catalog.json ({wrote}): an application package's result is a "
            "Directory with a STAC catalog.json listing its items"
        )
    for catalog in catalogs:
        _check_assets(catalog)
    if len(catalogs) == 1:
        shutil.copytree(catalogs[0], target, copy_function=link_or_copy, symlinks=True)
        return target
    target.mkdir()
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for n, catalog in enumerate(catalogs):
        shutil.copytree(catalog, target / f"{n:05d}", copy_function=link_or_copy, symlinks=True)
        links.append({"rel": "child", "href": f"./{n:05d}/catalog.json", "type": "application/json"})
    root = {
        "type": "Catalog",
        "stac_version": pystac.get_stac_version(),
        "id": "results",
        "description": f"the {len(catalogs)} catalogs one run of the package wrote",
        "links": links,
    }
    (target / "catalog.json").write_text(json.dumps(root, indent=1))
    return target


def _check_assets(folder: Path) -> None:
    """Every item of the catalog in ``folder`` is readable, and each of its local assets is there."""
    try:
        items = list(pystac.Catalog.from_file(str(folder / "catalog.json")).get_items(recursive=True))
    except Exception as err:  # whatever a malformed catalog makes pystac raise
        raise StageError(f"{folder.name}/catalog.json is not a STAC catalog ({type(err).__name__}: {err})") from None
    for item in items:
        for key, asset in item.assets.items():
            href = asset.get_absolute_href() or asset.href
            path = local_path(href)
            if path is not None and not path.exists():
                raise StageError(f"item {item.id}: its asset {key!r} is {asset.href}, which the package did not write")


def _listing(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir())[:5] if folder.is_dir() else []
    return ", ".join(names) if names else "nothing"


def _run(step: str, work: list[str], call: Callable[[], object]) -> int:
    """Run one step's work; its failure is one line on stderr (the job's cause) and exit code 1."""
    try:
        call()
    except StageError as err:
        print(f"{step}: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{step}: {work}: {err}", file=sys.stderr)
        return 1
    return 0


def stage_in_main(argv: Sequence[str] | None = None) -> int:
    """``ogc-upscaler-stage-in [--carry-assets] --name NAME HREF...``: stage into ``./NAME``."""
    parser = argparse.ArgumentParser(prog="ogc-upscaler-stage-in", description=stage_in.__doc__)
    parser.add_argument("--name", default="staged", help="the folder to write, in the working directory")
    parser.add_argument("--carry-assets", action="store_true", help="copy local assets inside (for containers)")
    parser.add_argument("references", nargs="*", help="STAC item hrefs, or one local folder")
    args = parser.parse_args(argv)
    target = Path(args.name)
    pystac.StacIO.set_default(S3StacIO)  # this step's process reads s3:// items and the collections they link to
    return _run("stage-in", args.references, lambda: stage_in(args.references, target, carry_assets=args.carry_assets))


def stage_out_main(argv: Sequence[str] | None = None) -> int:
    """``ogc-upscaler-stage-out --name NAME DIRECTORY...``: check the results and write ``./NAME``."""
    parser = argparse.ArgumentParser(prog="ogc-upscaler-stage-out", description=stage_out.__doc__)
    parser.add_argument("--name", default="results", help="the folder to write, in the working directory")
    parser.add_argument("results", nargs="*", type=Path, help="the package's result Directories")
    args = parser.parse_args(argv)
    return _run("stage-out", [str(r) for r in args.results], lambda: stage_out(args.results, Path(args.name)))
