"""Flow specs: schema, loader, registry of versions, headless runner, diff and exporters.

from playground.flows import Flow
result = Flow.load("gear-support@production").run(question="Is the tent waterproof?")
"""

from playground.flows.capture import spec_from_result
from playground.flows.diff import FlowDiff, diff_specs
from playground.flows.exporters import FORMATS, build_export, export_flow, export_zip
from playground.flows.loader import dump_spec, load_spec, parse_spec
from playground.flows.registry import FlowRegistry
from playground.flows.run import Flow
from playground.flows.spec import SCHEMA_ID, FlowSpec, json_schema

__all__ = [
    "FORMATS",
    "SCHEMA_ID",
    "Flow",
    "FlowDiff",
    "FlowRegistry",
    "FlowSpec",
    "build_export",
    "diff_specs",
    "dump_spec",
    "export_flow",
    "export_zip",
    "json_schema",
    "load_spec",
    "parse_spec",
    "spec_from_result",
]
