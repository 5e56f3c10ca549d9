# Several Workflows in one $graph, as packages offering variants do: two top-level Workflows (no
# default, so the entry must be named) and a sub-workflow both run as a step (never an entry).
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: ndvi-fine
    label: NDVI at the resolution asked
    inputs: {items: Directory, bbox: string, epsg: int, resolution: double, tile_id: string, datetime: string}
    outputs:
      ndvi: {type: Directory, outputSource: inner/ndvi}
    requirements: {SubworkflowFeatureRequirement: {}}
    steps:
      inner:
        run: "#composite"
        in: {items: items, bbox: bbox, epsg: epsg, resolution: resolution, tile_id: tile_id, datetime: datetime}
        out: [ndvi]
  - class: Workflow
    id: ndvi-coarse
    label: NDVI at 60 m
    inputs: {items: Directory, bbox: string, epsg: int, tile_id: string, datetime: string}
    outputs:
      ndvi: {type: Directory, outputSource: inner/ndvi}
    requirements: {SubworkflowFeatureRequirement: {}}
    steps:
      inner:
        run: "#composite"
        in: {items: items, bbox: bbox, epsg: epsg, resolution: {default: 60.0}, tile_id: tile_id, datetime: datetime}
        out: [ndvi]
  - class: Workflow
    id: composite
    inputs: {items: Directory, bbox: string, epsg: int, resolution: double, tile_id: string, datetime: string}
    outputs:
      ndvi: {type: Directory, outputSource: tile/ndvi}
    steps:
      tile:
        run: "#ndvi-tile"
        in: {items: items, bbox: bbox, epsg: epsg, resolution: resolution, tile_id: tile_id, datetime: datetime}
        out: [ndvi]
  - class: CommandLineTool
    id: ndvi-tile
    hints: {DockerRequirement: {dockerPull: localhost/ndvi-tile:0.1.0}}
    baseCommand: [ndvi-tile]
    arguments: [--out, $(runtime.outdir)]
    inputs:
      items: {type: Directory, inputBinding: {prefix: --items}}
      bbox: {type: string, inputBinding: {prefix: --bbox}}
      epsg: {type: int, inputBinding: {prefix: --epsg}}
      resolution: {type: double, inputBinding: {prefix: --resolution}}
      tile_id: {type: string, inputBinding: {prefix: --tile-id}}
      datetime: {type: string, inputBinding: {prefix: --datetime}}
    outputs:
      ndvi: {type: Directory, outputBinding: {glob: $(inputs.tile_id)}}
