# Breaks the no-JavaScript rule.
cwlVersion: v1.2
$graph:
  - class: Workflow
    id: main
    requirements: {InlineJavascriptRequirement: {}}
    inputs: {x: string}
    outputs: {out: {type: File, outputSource: s/out}}
    steps: {s: {run: "#tool", in: {x: x}, out: [out]}}
  - class: CommandLineTool
    id: tool
    baseCommand: [echo]
    arguments: ["${ return inputs.x.toUpperCase(); }"]
    inputs: {x: string}
    outputs: {out: stdout}
