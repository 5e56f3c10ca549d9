# Resources as expressions, as packages scale them with their inputs: cores from a parameter
# reference, memory from a JavaScript block over an array input (its default when a job leaves it
# out). ogc-upscaler evaluates them for each job, with cwltool's engine, before the job runs.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: resource-expressions
    requirements:
      InlineJavascriptRequirement: {}
    inputs:
      threads: {type: int, default: 1}
      bands: {type: "string[]", default: [red, nir]}
      tile_id: string
    outputs:
      report: {type: Directory, outputSource: measure/report}
    steps:
      measure:
        run: "#measure"
        in: {threads: threads, bands: bands, tile_id: tile_id}
        out: [report]
  - class: CommandLineTool
    id: measure
    requirements:
      InlineJavascriptRequirement: {}
      ResourceRequirement:
        coresMin: $(inputs.threads)
        ramMin: ${ return inputs.bands.length * 300; }
      InitialWorkDirRequirement:
        listing:
          - entryname: measure.py
            entry: |
              import pathlib, sys, pystac
              out = pathlib.Path("report")
              out.mkdir()
              (out / "cores.txt").write_text(sys.argv[1])
              catalog = pystac.Catalog(id=sys.argv[2], description="the cores cwltool gave the tool")
              catalog.normalize_hrefs(str(out))
              catalog.save(pystac.CatalogType.SELF_CONTAINED)
    baseCommand: [python3, measure.py]
    arguments: [$(runtime.cores)]
    inputs:
      threads: int
      bands: string[]
      tile_id: {type: string, inputBinding: {position: 2}}
    outputs:
      report: {type: Directory, outputBinding: {glob: report}}
