# Real JavaScript, as many packages use it: the tool's bounds are computed by a ${...} block from a
# bbox given as numbers, and the output is named by a $(...) expression calling a function.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: expressions
    label: NDVI with the bounds computed in JavaScript
    requirements:
      InlineJavascriptRequirement: {}
    inputs:
      items: Directory
      bounds: {type: "double[]", doc: "xmin, ymin, xmax, ymax"}
      epsg: int
      resolution: double
      tile_id: string
      datetime: string
    outputs:
      ndvi: {type: Directory, outputSource: compute/ndvi}
    steps:
      compute:
        run: "#tool"
        in: {items: items, bounds: bounds, epsg: epsg, resolution: resolution, tile_id: tile_id, datetime: datetime}
        out: [ndvi]
  - class: CommandLineTool
    id: tool
    requirements:
      InlineJavascriptRequirement:
        expressionLib:
          - "function snap(v, step) { return Math.round(v / step) * step; }"
    hints:
      DockerRequirement: {dockerPull: localhost/ndvi-tile:0.1.0}
    baseCommand: [ndvi-tile]
    arguments:
      - prefix: --out
        valueFrom: $(runtime.outdir)
      - prefix: --bbox
        valueFrom: |
          ${
            var b = inputs.bounds;
            if (b.length !== 4) { throw "bounds must have 4 numbers, got " + b.length; }
            return b.map(function (v) { return snap(v, inputs.resolution); }).join(",");
          }
      - prefix: --tile-id
        valueFrom: $(inputs.tile_id.toLowerCase())
    inputs:
      items: {type: Directory, inputBinding: {prefix: --items}}
      bounds:
        type:  # the one-element list form real packages use
          - type: array
            items: double
      epsg: {type: int, inputBinding: {prefix: --epsg}}
      resolution: {type: double, inputBinding: {prefix: --resolution}}
      tile_id: string
      datetime: {type: string, inputBinding: {prefix: --datetime}}
    outputs:
      ndvi:
        type: Directory
        outputBinding: {glob: $(inputs.tile_id.toLowerCase())}
