# A package that scatters its tool over a Directory[] input (one staged catalog of STAC items per
# element, as a platform's stage-in gives them) and returns a Directory[]: one result catalog per
# element. ogc-upscaler's stage-out makes them one catalog, which is what a tile's run returns.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: scattered
    label: One result per group of scenes
    requirements:
      - class: ScatterFeatureRequirement
    inputs:
      scenes: Directory[]
      tile_id: string
    outputs:
      results: {type: "Directory[]", outputSource: describe/result}
    steps:
      describe:
        run: "#describe"
        scatter: scene
        in: {scene: scenes, tile_id: tile_id}
        out: [result]
  - class: CommandLineTool
    id: describe
    requirements:
      InitialWorkDirRequirement:
        listing:
          - entryname: describe.py
            entry: |
              import datetime, pathlib, sys, pystac
              scene, tile = pathlib.Path(sys.argv[1]), sys.argv[2]
              staged = list(pystac.Catalog.from_file(str(scene / "catalog.json")).get_items(recursive=True))
              out = pathlib.Path("result")
              out.mkdir()
              (out / "ids.txt").write_text(" ".join(sorted(i.id for i in staged)))
              item = pystac.Item(f"{tile}-{len(staged)}", None, None, datetime.datetime(2024, 4, 1), {})
              item.add_asset("ids", pystac.Asset(str((out / "ids.txt").resolve()), roles=["data"]))
              catalog = pystac.Catalog(id="result", description="the scenes one element held")
              catalog.add_item(item)
              catalog.normalize_hrefs(str(out))
              catalog.make_all_asset_hrefs_relative()
              catalog.save(pystac.CatalogType.SELF_CONTAINED)
    baseCommand: [python3, describe.py]
    inputs:
      scene: {type: Directory, inputBinding: {position: 1}}
      tile_id: {type: string, inputBinding: {position: 2}}
    outputs:
      result: {type: Directory, outputBinding: {glob: result}}
