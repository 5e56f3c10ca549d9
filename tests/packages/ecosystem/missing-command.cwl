# A tool whose command exists only in its image (the image-only case): runs in the image, and without a
# container it is refused before any job runs, naming the command.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: image-only
    inputs: {items: Directory, tile_id: string}
    outputs:
      result: {type: Directory, outputSource: s/result}
    steps:
      s: {run: "#tool", in: {items: items, tile_id: tile_id}, out: [result]}
  - class: CommandLineTool
    id: tool
    requirements:
      DockerRequirement: {dockerPull: "ghcr.io/example/water-bodies:1.0.0"}
    baseCommand: [water-bodies-detect]
    inputs:
      items: {type: Directory, inputBinding: {prefix: --items}}
      tile_id: {type: string, inputBinding: {prefix: --id}}
    outputs:
      result: {type: Directory, outputBinding: {glob: .}}
