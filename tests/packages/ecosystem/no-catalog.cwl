# A package whose result Directory holds its output file but no STAC catalog.json: a platform's
# stage-out refuses it, and so does ogc-upscaler's, saying what the Directory held.
cwlVersion: v1.0
class: Workflow
id: no-catalog
inputs:
  tile_id: string
outputs:
  result: {type: Directory, outputSource: write/result}
steps:
  write:
    run:
      class: CommandLineTool
      baseCommand: [python3, -c, "import pathlib, sys; p = pathlib.Path('result'); p.mkdir(); (p / 'out.tif').write_text(sys.argv[1])"]
      inputs:
        tile_id: {type: string, inputBinding: {position: 1}}
      outputs:
        result: {type: Directory, outputBinding: {glob: result}}
    in: {tile_id: tile_id}
    out: [result]
