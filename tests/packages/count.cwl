# A test application package that counts its own executions: appends one line `name` to LEDGER.started,
# sleeps `seconds`, appends one line `name` to a ledger file (O_APPEND, one write: concurrent runs never
# mix their lines), then writes a
# small COG and a STAC catalog like a real package. The ledger's path is the step's default for
# `ledger`, not a process input (an endpoint refuses absolute paths in text inputs): a harness
# writes a copy of this file with its own path there (tests/servers/counting.py does).
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: count
    label: A tile job that records each time it runs
    inputs:
      name: string
      bbox: string
      epsg: int
      seconds: double
    outputs:
      result:
        type: Directory
        outputSource: run/result
    steps:
      run:
        run: "#count-tool"
        in:
          name: name
          bbox: bbox
          epsg: epsg
          seconds: seconds
          ledger: {default: count.ledger}
        out: [result]
  - class: CommandLineTool
    id: count-tool
    hints:
      DockerRequirement: {dockerPull: "localhost/count:0.1"}
    requirements:
      InitialWorkDirRequirement:
        listing:
          - entryname: count.py
            entry: |
              import os, sys, time
              from pathlib import Path
              import numpy as np, pystac, rasterio
              from rasterio.transform import from_origin
              name, bbox, epsg, seconds, ledger = sys.argv[1:6]
              def record(path):
                  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                  try:
                      os.write(fd, (name.replace("\n", " ") + "\n").encode())
                  finally:
                      os.close(fd)
              record(ledger + ".started")
              time.sleep(float(seconds))
              record(ledger)
              xmin, ymin, xmax, ymax = (float(v) for v in bbox.split(","))
              folder = Path("result"); folder.mkdir()
              data = np.full((32, 32), 1, dtype="uint8")
              profile = dict(driver="COG", width=32, height=32, count=1, dtype="uint8", crs=f"EPSG:{epsg}",
                             transform=from_origin(xmin, ymax, (xmax - xmin) / 32, (ymax - ymin) / 32), nodata=0)
              with rasterio.open(folder / "count.tif", "w", **profile) as dst:
                  dst.write(data, 1)
              item = pystac.Item(name, {"type": "Point", "coordinates": [0, 0]}, [0, 0, 0, 0],
                                 pystac.utils.str_to_datetime("2024-01-01T00:00:00Z"), {})
              item.add_asset("data", pystac.Asset(str((folder / "count.tif").resolve()), roles=["data"],
                                                  media_type=pystac.MediaType.COG))
              catalog = pystac.Catalog("out", "count output")
              catalog.add_item(item)
              catalog.normalize_hrefs(str(folder))
              catalog.make_all_asset_hrefs_relative()
              catalog.save(pystac.CatalogType.SELF_CONTAINED)
    baseCommand: [python3, count.py]
    inputs:
      name: {type: string, inputBinding: {position: 1}}
      bbox: {type: string, inputBinding: {position: 2}}
      epsg: {type: int, inputBinding: {position: 3}}
      seconds: {type: double, inputBinding: {position: 4}}
      ledger: {type: string, inputBinding: {position: 5}}
    outputs:
      result:
        type: Directory
        outputBinding: {glob: result}
