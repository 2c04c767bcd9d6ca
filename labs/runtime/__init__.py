"""The lab runtime: specs, traffic, fault timelines, live views and answer checks."""

from labs.runtime.checks import CHECKS, NoData
from labs.runtime.lab import Lab, Verdict
from labs.runtime.spec import LabSpec, all_specs, load_spec, spec_files
from labs.runtime.traffic import Stats, TrafficRun

__all__ = [
    "CHECKS",
    "Lab",
    "LabSpec",
    "NoData",
    "Stats",
    "TrafficRun",
    "Verdict",
    "all_specs",
    "load_spec",
    "spec_files",
]
