# The input types real packages use: an inline enum, the eoap BBox and URI records imported from their
# published URLs (served offline from ogc-upscaler's shipped copies), arrays, optional forms, Files,
# Directories and the numeric types. The tool echoes what it got into a small STAC catalog.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: types
    label: Every input type
    requirements:
      - class: InlineJavascriptRequirement
      - class: SchemaDefRequirement
        types:
          - $import: https://raw.githubusercontent.com/eoap/schemas/main/ogc.yaml
          - $import: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml
    inputs:
      mode:
        type: {type: enum, symbols: [fast, accurate]}
        default: fast
      aoi:
        type: https://raw.githubusercontent.com/eoap/schemas/main/ogc.yaml#BBox
      catalog: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
      bands: {type: "string[]", default: [red, nir]}
      scenes: Directory[]
      mask: File?
      strict: {type: boolean, default: false}
      seed: long
      gain: float
      limit: int?
    outputs:
      report: {type: Directory, outputSource: echo/report}
    steps:
      echo:
        run: "#echo"
        in: {mode: mode, aoi: aoi, catalog: catalog, bands: bands, scenes: scenes, mask: mask, strict: strict,
             seed: seed, gain: gain, limit: limit}
        out: [report]
  - class: CommandLineTool
    id: echo
    requirements:
      InlineJavascriptRequirement: {}
      SchemaDefRequirement:
        types:
          - $import: https://raw.githubusercontent.com/eoap/schemas/main/ogc.yaml
          - $import: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml
      InitialWorkDirRequirement:
        listing:
          - entryname: inputs.json
            entry: $(JSON.stringify(inputs))
          - entryname: echo.py
            entry: |
              import json, pathlib, pystac
              values = json.loads(pathlib.Path("inputs.json").read_text())
              out = pathlib.Path("report")
              out.mkdir()
              (out / "values.json").write_text(json.dumps(values, sort_keys=True))
              catalog = pystac.Catalog(id="report", description="the values the tool received")
              catalog.normalize_hrefs(str(out))
              catalog.save(pystac.CatalogType.SELF_CONTAINED)
    baseCommand: [python3, echo.py]
    inputs:
      mode: {type: {type: enum, symbols: [fast, accurate]}}
      aoi: https://raw.githubusercontent.com/eoap/schemas/main/ogc.yaml#BBox
      catalog: https://raw.githubusercontent.com/eoap/schemas/main/string_format.yaml#URI
      bands: string[]
      scenes: Directory[]
      mask: File?
      strict: boolean
      seed: long
      gain: float
      limit: int?
    outputs:
      report: {type: Directory, outputBinding: {glob: report}}
