"""CWL application packages: loading them as the ecosystem writes them (:mod:`~.load`), their typed
inputs and outputs (:mod:`~.types`, :mod:`~.package`), preparing them for a backend's container mode
(:mod:`~.prepare`) and wrapping them in the stage steps (:mod:`~.wrap`), and one job's input file
(:mod:`~.job`)."""

from ogc_upscaler.cwl.job import JobFile, check_names, check_values, describe_inputs, write_job_file
from ogc_upscaler.cwl.load import load_package, workflows
from ogc_upscaler.cwl.package import Package, Parameter, Resources, Tool
from ogc_upscaler.cwl.prepare import Prepared, check_commands, prepare
from ogc_upscaler.cwl.types import CwlType, TypeMismatch

__all__ = [
    "CwlType",
    "JobFile",
    "Package",
    "Parameter",
    "Prepared",
    "Resources",
    "Tool",
    "TypeMismatch",
    "check_commands",
    "check_names",
    "check_values",
    "describe_inputs",
    "load_package",
    "prepare",
    "workflows",
    "write_job_file",
]
