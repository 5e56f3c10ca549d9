cwlVersion: v1.2
$namespaces:
  s: https://schema.org/
s:softwareVersion: 0.1.0
s:name: ndvi
$graph:
  - class: Workflow
    id: ndvi
    label: NDVI composite of a tile
    doc: >
      Reads the red and near-infrared bands of the STAC items staged for one tile, over the
      tile's window only, reprojected onto the tile's pixel grid; computes NDVI per item and
      keeps the greenest valid value per pixel (maximum-value composite). Writes a
      Cloud-Optimized GeoTIFF and a self-contained STAC catalog describing it.
    requirements: {}
    inputs:
      items:
        type: Directory
        label: STAC items of the tile
        doc: A folder holding a STAC catalog.json whose items have red and NIR COG assets
      bbox:
        type: string
        label: Tile bounds
        doc: xmin,ymin,xmax,ymax in the tile's CRS, on multiples of the resolution
      epsg:
        type: int
        label: EPSG code of the tile's CRS
        doc: The projected CRS of the tile's pixel grid, e.g. 32632 for UTM zone 32N
      resolution:
        type: double
        label: Pixel size in metres
        doc: The side of one output pixel, in the CRS's units
      tile_id:
        type: string
        label: Tile id, used to name the outputs
        doc: The grid tile's id; the output item and its COG are named after it
      datetime:
        type: string
        label: Time window
        doc: ISO 8601 interval start/end of the composite
    outputs:
      ndvi:
        type: Directory
        label: NDVI composite
        doc: A folder holding a STAC catalog.json with one item whose data asset is the NDVI COG
        outputSource: compute/ndvi
    steps:
      compute:
        run: "#ndvi-tile"
        in:
          items: items
          bbox: bbox
          epsg: epsg
          resolution: resolution
          tile_id: tile_id
          datetime: datetime
        out: [ndvi]

  - class: CommandLineTool
    id: ndvi-tile
    label: NDVI of one tile
    hints:
      DockerRequirement:
        dockerPull: localhost/ndvi-tile:0.1.0
    requirements:
      ResourceRequirement:
        coresMin: 1
        ramMin: 1024
      NetworkAccess:
        networkAccess: true
    baseCommand: [ndvi-tile]
    arguments:
      - prefix: --out
        valueFrom: $(runtime.outdir)
    inputs:
      items:
        type: Directory
        inputBinding: {prefix: --items}
      bbox:
        type: string
        inputBinding: {prefix: --bbox}
      epsg:
        type: int
        inputBinding: {prefix: --epsg}
      resolution:
        type: double
        inputBinding: {prefix: --resolution}
      tile_id:
        type: string
        inputBinding: {prefix: --tile-id}
      datetime:
        type: string
        inputBinding: {prefix: --datetime}
    outputs:
      ndvi:
        type: Directory
        outputBinding:
          glob: $(inputs.tile_id)
    temporaryFailCodes: [75]
    permanentFailCodes: [2]
