cwlVersion: v1.2
class: CommandLineTool
id: stage-in
label: Stage in STAC items
doc: |
  STAC item hrefs (URLs or local paths) become a local Directory holding a catalog.json that lists
  copies of the items, as the EOEPCA and ZOO platforms' stage-in gives an application package its
  Directory input. Local assets keep absolute hrefs, or with carry_assets (a package run in a
  container sees only its Directory) are hard-linked inside it. One local folder given instead of
  items is passed on as it is. ogc-upscaler runs this step before every package whose Directory
  input a job gives as item hrefs; it needs ogc-upscaler installed where it runs (no image).
baseCommand: ogc-upscaler-stage-in
inputs:
  reference:
    type: string[]
    label: STAC item hrefs
    doc: STAC item URLs or paths, or one local folder
    inputBinding:
      position: 2
  name:
    type: string
    default: staged
    label: Folder name
    doc: The name of the staged Directory (the package's input name)
    inputBinding:
      prefix: --name
      position: 1
  carry_assets:
    type: boolean
    default: false
    label: Carry local assets inside
    inputBinding:
      prefix: --carry-assets
      position: 1
outputs:
  staged:
    type: Directory
    label: The staged catalog
    outputBinding:
      glob: $(inputs.name)
