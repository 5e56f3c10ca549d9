# A test application package: fails with a temporary error the first `fail_times` attempts of each
# tile (counted in `state_dir`, outside the job folders), always fails for `broken_tile`, sleeps
# `seconds`, then writes a small COG and a STAC catalog like a real package.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: flaky
    label: A tile job that fails on purpose
    inputs:
      tile_id: string
      bbox: string
      epsg: int
      state_dir: string
      fail_times: int
      broken_tile: string
      seconds: double
    outputs:
      result:
        type: Directory
        outputSource: run/result
    steps:
      run:
        run: "#flaky-tool"
        in: {tile_id: tile_id, bbox: bbox, epsg: epsg, state_dir: state_dir, fail_times: fail_times,
             broken_tile: broken_tile, seconds: seconds}
        out: [result]
  - class: CommandLineTool
    id: flaky-tool
    hints:
      DockerRequirement: {dockerPull: "localhost/flaky:0.1"}
    requirements:
      InitialWorkDirRequirement:
        listing:
          - entryname: flaky.py
            entry: |
              import os, sys, time
              from pathlib import Path
              import numpy as np, pystac, rasterio
              from rasterio.transform import from_origin
              tile, bbox, epsg, state, fail_times, broken, seconds = sys.argv[1:8]
              Path(state).mkdir(parents=True, exist_ok=True)
              counter = Path(state) / f"{tile}.count"
              count = int(counter.read_text()) + 1 if counter.exists() else 1
              counter.write_text(str(count))
              time.sleep(float(seconds))
              if tile == broken:
                  print(f"flaky: tile {tile} is broken (attempt {count})", file=sys.stderr)
                  sys.exit(75)
              if count <= int(fail_times):
                  print(f"flaky: transient failure of {tile} (attempt {count})", file=sys.stderr)
                  sys.exit(75)
              xmin, ymin, xmax, ymax = (float(v) for v in bbox.split(","))
              folder = Path(tile); folder.mkdir()
              data = np.full((64, 64), count, dtype="float32")
              profile = dict(driver="COG", width=64, height=64, count=1, dtype="float32", crs=f"EPSG:{epsg}",
                             transform=from_origin(xmin, ymax, (xmax - xmin) / 64, (ymax - ymin) / 64), nodata=-1)
              with rasterio.open(folder / f"{tile}.tif", "w", **profile) as dst:
                  dst.write(data, 1)
              item = pystac.Item(tile, {"type": "Point", "coordinates": [0, 0]}, [0, 0, 0, 0],
                                 pystac.utils.str_to_datetime("2024-01-01T00:00:00Z"), {})
              item.add_asset("data", pystac.Asset(str((folder / f"{tile}.tif").resolve()), roles=["data"],
                                                  media_type=pystac.MediaType.COG))
              catalog = pystac.Catalog("out", "flaky output")
              catalog.add_item(item)
              catalog.normalize_hrefs(str(folder))
              catalog.make_all_asset_hrefs_relative()
              catalog.save(pystac.CatalogType.SELF_CONTAINED)
              print(f"flaky: {tile} done after {count} attempts", file=sys.stderr)
    baseCommand: [python3, flaky.py]
    inputs:
      tile_id: {type: string, inputBinding: {position: 1}}
      bbox: {type: string, inputBinding: {position: 2}}
      epsg: {type: int, inputBinding: {position: 3}}
      state_dir: {type: string, inputBinding: {position: 4}}
      fail_times: {type: int, inputBinding: {position: 5}}
      broken_tile: {type: string, inputBinding: {position: 6}}
      seconds: {type: double, inputBinding: {position: 7}}
    outputs:
      result:
        type: Directory
        outputBinding: {glob: $(inputs.tile_id)}
    temporaryFailCodes: [75]
