"""The Prompty export: one .prompty file (YAML front matter + chat template)."""

from __future__ import annotations

from playground.config import Settings
from playground.flows.export.safety import chat_template
from playground.flows.export.target import NO_KEY, llm_params, target_for
from playground.flows.loader import dump_yaml
from playground.flows.spec import FlowSpec

TARGET = "Prompty"


def prompty_text(spec: FlowSpec, settings: Settings | None = None) -> str:
    """A .prompty file (front matter + chat template) loadable by promptflow's Prompty.load."""
    target = target_for(spec, settings)
    configuration: dict[str, object]
    if target.kind == "azure":
        configuration = {
            "type": "azure_openai",
            "azure_deployment": target.model,
            "api_key": "${env:AZURE_OPENAI_API_KEY}",
            "api_version": "${env:OPENAI_API_VERSION}",
            "azure_endpoint": "${env:AZURE_OPENAI_ENDPOINT}",
        }
    else:
        configuration = {"type": "openai", "model": target.model}
        if target.base_url:
            configuration["base_url"] = target.base_url
        configuration["api_key"] = (
            f"${{env:{target.api_key_env}}}" if target.api_key_env else NO_KEY
        )
    inputs: dict[str, object] = {}
    sample: dict[str, object] = {}
    for name, declared in spec.inputs.items():
        entry: dict[str, object] = {"type": declared.type}
        if declared.default is not None:
            entry["default"] = declared.default
            sample[name] = declared.default
        if declared.description:
            entry["description"] = declared.description
        inputs[name] = entry
    if spec.retrieval is not None:
        r = spec.retrieval
        inputs[r.context_variable] = {
            "type": "string",
            "description": f"Context the Playground retrieves from store {r.store!r} "
            f"(top {r.top_k}); pass it yourself here.",
        }
    front: dict[str, object] = {
        "name": spec.name,
        "description": spec.description or f"{spec.ref} exported from Prompt Playground",
        "model": {
            "api": "chat",
            "configuration": configuration,
            "parameters": llm_params(spec, target),
        },
        "inputs": inputs,
    }
    if sample:
        front["sample"] = sample
    return "---\n" + dump_yaml(front) + "---\n" + chat_template(spec, "", TARGET)
