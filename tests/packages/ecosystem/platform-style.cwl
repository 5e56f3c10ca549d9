cwlVersion: v1.0
$namespaces:
  s: https://schema.org/
schemas:
  - http://schema.org/version/9.0/schemaorg-current-http.rdf
s:softwareVersion: 1.2.0
s:author:
  - class: s:Person
    s:name: A. Scientist
s:keywords: [ndvi, vegetation]
$graph:
  - class: Workflow
    id: vegetation
    label: Vegetation index of a tile, as platforms ship it
    doc: NDVI composite of the staged STAC items of one tile
    requirements: []
    inputs:
      items:
        label: staged items
        doc: a folder with a STAC catalog of the tile's items
        type: Directory
      bbox:
        label: tile bounds
        type: string
      epsg:
        label: EPSG code
        type: int
        default: 32632
      resolution:
        label: pixel size
        type: double
        default: 20
      tile_id:
        type: string
      datetime:
        type: string
        default: "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z"
    outputs:
      - id: vegetation
        type: Directory
        outputSource:
          - step/result
    steps:
      step:
        run: "#clt"
        in:
          items: items
          bbox: bbox
          epsg: epsg
          resolution: resolution
          tile_id: tile_id
          datetime: datetime
        out:
          - result
  - class: CommandLineTool
    id: clt
    requirements:
      InlineJavascriptRequirement: {}
      EnvVarRequirement:
        envDef:
          PATH: /usr/local/bin:/usr/bin:/bin
          APP_MODE: production
      ResourceRequirement:
        coresMax: 1
        ramMax: 512
    hints:
      DockerRequirement:
        dockerPull: localhost/ndvi-tile:0.1.0
    baseCommand: ndvi-tile
    arguments: [--out, $(runtime.outdir)]
    inputs:
      items: {type: Directory, inputBinding: {prefix: --items}}
      bbox: {type: string, inputBinding: {prefix: --bbox}}
      epsg: {type: int, inputBinding: {prefix: --epsg}}
      resolution: {type: double, inputBinding: {prefix: --resolution}}
      tile_id: {type: string, inputBinding: {prefix: --tile-id}}
      datetime: {type: string, inputBinding: {prefix: --datetime}}
    outputs:
      result:
        type: Directory
        outputBinding:
          glob: $(inputs.tile_id)
