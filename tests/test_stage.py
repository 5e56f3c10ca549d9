"""The stage steps run around every package (cwl/stage-in.cwl, cwl/stage-out.cwl): their work, their
failures as one line that names the cause, and the CWL files themselves run by cwltool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pystac
import pytest

from ogc_upscaler.backends.cwltool import tool_path
from ogc_upscaler.cwl.wrap import tool_file
from ogc_upscaler.stage import StageError, stage_in, stage_out

ROOT = Path(__file__).resolve().parents[1]


def _items(demo_archive: Path, n: int) -> list[str]:
    return [str(p) for p in sorted(demo_archive.parent.glob("demo-s2-l2a/*/*.json"))[:n]]


def test_the_shipped_step_files_are_the_projects_cwl_folder() -> None:
    for name in ("stage-in", "stage-out"):
        assert tool_file(name).read_text() == (ROOT / "cwl" / f"{name}.cwl").read_text()


def test_stage_in_lists_the_items_with_absolute_assets(tmp_path, demo_archive) -> None:
    items = _items(demo_archive, 2)
    staged = stage_in(items, tmp_path / "items")
    copies = list(pystac.Catalog.from_file(str(staged / "catalog.json")).get_items())
    assert sorted(i.id for i in copies) == sorted(Path(i).stem for i in items)
    href = copies[0].assets["B04"].href
    assert href.startswith("/") and Path(href).is_file()


def test_stage_in_carries_local_assets_inside_for_a_container(tmp_path, demo_archive) -> None:
    items = _items(demo_archive, 2)
    staged = stage_in(items, tmp_path / "items", carry_assets=True)
    for item in pystac.Catalog.from_file(str(staged / "catalog.json")).get_items():
        original = pystac.Item.from_file(next(i for i in items if Path(i).stem == item.id))
        for key, asset in item.assets.items():  # relative in the file, so valid wherever the Directory is mounted
            raw = json.loads(Path(item.get_self_href()).read_text())["assets"][key]["href"]
            assert raw.startswith("../assets/"), raw
            carried = Path(asset.get_absolute_href())
            assert carried.is_relative_to(staged)
            # on one filesystem the asset is hard-linked: no copy of the archive
            assert carried.stat().st_ino == Path(original.assets[key].get_absolute_href()).stat().st_ino


def test_stage_in_takes_one_local_folder_as_it_is(tmp_path) -> None:
    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "w.bin").write_bytes(b"w")
    staged = stage_in([str(folder)], tmp_path / "staged")
    assert (staged / "weights" / "w.bin").stat().st_ino == (folder / "weights" / "w.bin").stat().st_ino


def test_stage_in_names_an_item_it_cannot_read(tmp_path) -> None:
    with pytest.raises(StageError, match=r"nowhere\.json is not a STAC Item that can be read here"):
        stage_in([str(tmp_path / "nowhere.json")], tmp_path / "staged")


def _result(folder: Path, item_id: str, write_asset: bool = True) -> Path:
    folder.mkdir(parents=True)
    if write_asset:
        (folder / "data.tif").write_bytes(b"pixels")
    item = pystac.Item(item_id, None, None, pystac.utils.str_to_datetime("2024-04-01T00:00:00Z"), {})
    item.add_asset("data", pystac.Asset(str(folder / "data.tif"), roles=["data"]))
    catalog = pystac.Catalog(id=item_id, description="one result")
    catalog.add_item(item)
    catalog.normalize_hrefs(str(folder))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return folder


def test_stage_out_keeps_one_catalog_as_it_is_and_puts_several_under_one_root(tmp_path) -> None:
    one = stage_out([_result(tmp_path / "a", "a")], tmp_path / "one")
    assert [i.id for i in pystac.Catalog.from_file(str(one / "catalog.json")).get_items()] == ["a"]
    several = stage_out([_result(tmp_path / "b", "b"), _result(tmp_path / "c", "c")], tmp_path / "several")
    items = pystac.Catalog.from_file(str(several / "catalog.json")).get_items(recursive=True)
    assert sorted(i.id for i in items) == ["b", "c"]


def test_stage_out_refuses_results_without_a_catalog_saying_what_they_held(tmp_path) -> None:
    (tmp_path / "result").mkdir()
    (tmp_path / "result" / "out.tif").write_bytes(b"x")
    with pytest.raises(StageError, match=r"holds no catalog\.json \(result/ holds out\.tif\)"):
        stage_out([tmp_path / "result"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_stage_out_refuses_an_item_whose_asset_was_not_written(tmp_path) -> None:
    with pytest.raises(StageError, match=r"item a: its asset 'data' is \.\./data\.tif, which the package did not"):
        stage_out([_result(tmp_path / "a", "a", write_asset=False)], tmp_path / "out")


@pytest.mark.slow
def test_the_stage_in_tool_runs_under_cwltool_as_a_platform_would_run_it(tmp_path, demo_archive) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"reference": _items(demo_archive, 2), "name": "scenes"}))
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("cwltool")),
            "--quiet",
            "--outdir",
            str(tmp_path / "out"),
            str(ROOT / "cwl" / "stage-in.cwl"),
            str(job),
        ],
        capture_output=True,
        text=True,
        env=tool_path() | {"HOME": str(tmp_path)},
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    staged = Path(json.loads(out.stdout)["staged"]["path"])
    assert (
        staged.name == "scenes" and len(list(pystac.Catalog.from_file(str(staged / "catalog.json")).get_items())) == 2
    )
