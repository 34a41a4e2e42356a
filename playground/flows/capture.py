"""Capture a Playground answer as a flow spec: templates, inputs, model, params, retrieval."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from playground.config import Settings
from playground.conversation import literal_template
from playground.errors import SpecError
from playground.flows.loader import validation_message
from playground.flows.spec import SCHEMA_ID, Evidence, FlowSpec, few_shot_of, template_fields
from playground.models.registry import provider_for, provider_of, split_model_id
from playground.prompts import find_variables
from playground.records import Draft, PromptVariant, Result, RetrievalSettings, Run


def _messages(result: Result) -> list[dict[str, str]]:
    if result.user_template.strip():
        messages = []
        if result.system_template.strip():
            messages.append({"role": "system", "content": result.system_template})
        messages += [{"role": m.role, "content": m.content} for m in result.examples]
        messages.append({"role": "user", "content": result.user_template})
        # A follow-up turn: the earlier answers and follow-ups, sent as they were (literal
        # text, so an answer that happens to contain `{{` is not read as a template).
        messages += [
            {"role": m.role, "content": literal_template(m.content)}
            for m in result.messages[result.template_count :]
        ]
        return messages
    # A result without templates (e.g. from an older store): its rendered messages are the prompt.
    return [{"role": m.role, "content": m.content} for m in result.messages]


def spec_from_result(
    result: Result,
    run: Run,
    name: str,
    description: str,
    settings: Settings,
    evidence: Evidence | dict[str, Any] | None = None,
) -> FlowSpec:
    """The flow spec that reproduces one answer's configuration (not yet saved: no version).

    Variables become inputs with their current values as defaults; the retrieval context
    variable stays out of inputs because retrieval fills it.
    """
    messages = _messages(result)
    retrieval = result.retrieval or run.retrieval
    context = retrieval.context_variable if retrieval else None
    used = find_variables(*(m["content"] for m in messages))
    if retrieval is not None:
        used += [v for v in find_variables(retrieval.query) if v not in used]
    inputs: dict[str, dict[str, object]] = {}
    for var in used:
        if var == context:
            continue
        value = run.variables.get(var)
        inputs[var] = (
            {"type": "string"} if value in (None, "") else {"type": "string", "default": str(value)}
        )
    model: dict[str, object] = {
        "id": result.model_id,
        "params": result.params.model_dump(mode="json"),
    }
    if result.response_format is not None and result.response_format.structured:
        model["response_format"] = result.response_format.to_data()
    endpoint = provider_of(result.model_id, settings).endpoint
    if endpoint is not None:
        # Only where the server lives and the *name* of its key variable: never the key.
        ref: dict[str, object] = {"base_url": endpoint.base_url}
        if endpoint.api_key_env:
            ref["api_key_env"] = endpoint.api_key_env
        model["endpoint"] = ref
    data: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "name": name,
        "description": description,
        "inputs": inputs,
        "prompt": {"messages": messages},
        "model": model,
    }
    if retrieval is not None:
        data["retrieval"] = retrieval.to_dict()
    if evidence is None:
        evidence = Evidence(runs=[run.id])
    data["evidence"] = (
        evidence.model_dump(mode="json", exclude_none=True)
        if isinstance(evidence, Evidence)
        else evidence
    )
    try:
        return FlowSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_message(exc)) from None


def draft_from_spec(spec: FlowSpec, settings: Settings) -> Draft:
    """The Playground editor state for a spec (system, few-shot examples, last user template)."""
    system, user = template_fields(spec)
    notes = [f"Loaded flow {spec.ref}."]
    examples = few_shot_of(spec)
    if examples is None:
        examples = []
        notes.append(
            "The Playground edits a system message, alternating user and assistant examples "
            "and one user message; the other messages were left out."
        )
    provider, _ = split_model_id(spec.model.id)
    if spec.model.endpoint is not None and provider_for(provider, settings).endpoint is None:
        notes.append(
            f"Endpoint '{provider}' is not configured here; add [endpoints.{provider}] with "
            f'base_url = "{spec.model.endpoint.base_url}" to playground.toml to run it.'
        )
    r = spec.retrieval
    return Draft(
        variants=[
            PromptVariant(
                name="default",
                system=system,
                user=user,
                note=spec.description,
                examples=examples,
            )
        ],
        model_ids=[spec.model.id],
        params={spec.model.id: spec.model.params},
        variables={k: str(v.default) for k, v in spec.inputs.items() if v.default is not None},
        retrieval=RetrievalSettings(r.store, r.top_k, r.query, r.context_variable) if r else None,
        response_format=spec.model.structured_format,
        note=" ".join(notes),
    )
