# Breaks the no-container rule: DockerRequirement under requirements.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: main
    inputs: {x: string}
    outputs: {out: {type: File, outputSource: s/out}}
    steps: {s: {run: "#tool", in: {x: x}, out: [out]}}
  - class: CommandLineTool
    id: tool
    requirements:
      DockerRequirement: {dockerPull: "alpine:3"}
    baseCommand: [echo]
    inputs: {x: {type: string, inputBinding: {position: 1}}}
    outputs: {out: stdout}
