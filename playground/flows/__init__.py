"""Flow specs: schema, loader, registry of versions, headless runner, diff and exporters.

from playground.flows import Flow
result = Flow.load("gear-support@production").run(question="Is the tent waterproof?")
"""

import importlib
from typing import Any

# Names load on first use (PEP 562): `playground flow run` needs the runner, not the exporters,
# the diff or the capture code, and every import before its request delays the answer.
_HOMES = {
    "FORMATS": "playground.flows.exporters",
    "SCHEMA_ID": "playground.flows.spec",
    "Flow": "playground.flows.run",
    "FlowDiff": "playground.flows.diff",
    "FlowRegistry": "playground.flows.registry",
    "FlowSpec": "playground.flows.spec",
    "build_export": "playground.flows.exporters",
    "diff_specs": "playground.flows.diff",
    "dump_spec": "playground.flows.loader",
    "export_flow": "playground.flows.exporters",
    "export_zip": "playground.flows.exporters",
    "json_schema": "playground.flows.spec",
    "load_spec": "playground.flows.loader",
    "parse_spec": "playground.flows.loader",
    "spec_from_result": "playground.flows.capture",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` the first time someone asks for it."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
