# Not valid CWL: the step names a tool input that does not exist.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: main
    inputs: {x: string}
    outputs: {out: {type: File, outputSource: s/out}}
    steps: {s: {run: "#tool", in: {nope: x}, out: [out]}}
  - class: CommandLineTool
    id: tool
    baseCommand: [echo]
    inputs: {x: {type: string, inputBinding: {position: 1}}}
    outputs: {out: stdout}
    hints: {NotARealHint: {}}
    requirements: {NotARealRequirement: {}}
