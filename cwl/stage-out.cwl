cwlVersion: v1.2
class: CommandLineTool
id: stage-out
label: Stage out a package's results
doc: |
  The package's result Directories are checked before anything is collected: at least one holds
  a STAC catalog.json, each of its items is readable and every local asset is there. Their
  catalogs become one Directory (one catalog as it is, several under one root catalog), which
  ogc-upscaler's collector turns into the campaign's Collection. A package that wrote no catalog
  fails here, and the job's cause says what it wrote. ogc-upscaler runs this step after every
  package with a Directory output; it needs ogc-upscaler installed where it runs (no image).
baseCommand: ogc-upscaler-stage-out
inputs:
  results:
    type:
      type: array
      items: ["null", Directory]
    label: The package's result Directories
    inputBinding:
      position: 2
  name:
    type: string
    default: results
    label: Folder name
    doc: The name of the Directory written (the package's output name)
    inputBinding:
      prefix: --name
      position: 1
outputs:
  catalog:
    type: Directory
    label: The results' catalog
    outputBinding:
      glob: $(inputs.name)
