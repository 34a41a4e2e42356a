"""The `python` export: a standalone script that reproduces a flow's call with the openai SDK.

Every value from the spec enters the script as a checked Python literal (`py_literal`,
`py_docstring`); the rest of the script is fixed text.
"""

from __future__ import annotations

from playground.flows.export.safety import py_docstring, py_literal
from playground.flows.export.target import Target, response_format_for
from playground.flows.spec import FlowSpec

_SCRIPT = '''#!/usr/bin/env python3
{docstring}

from __future__ import annotations

import argparse
import json
import os
import sys

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from openai import {client_class}

MODEL = {model}
BASE_URL = os.environ.get("FLOW_BASE_URL", {base_url})
API_KEY_ENV = {api_key_env}  # the key is read from this variable, never stored here
PARAMS = {params}
INPUTS = {inputs}  # name -> default (None: required)
INPUT_TYPES = {input_types}
MESSAGES = {messages}
RETRIEVAL = {retrieval}


def parse_inputs(pairs: list[str]) -> dict[str, object]:
    """Defaults overridden by --input name=value, converted to each input's type."""
    values: dict[str, object] = {{k: v for k, v in INPUTS.items() if v is not None}}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in INPUTS:
            known = ", ".join(INPUTS)
            sys.exit(f"Error: --input {{pair!r}} is not name=value for one of {{known}}.")
        kind = INPUT_TYPES[name]
        if kind == "integer":
            values[name] = int(value)
        elif kind == "number":
            values[name] = float(value)
        elif kind == "boolean":
            values[name] = value.strip().lower() in {{"true", "1", "yes", "on"}}
        else:
            values[name] = value
    context = RETRIEVAL["context_variable"] if RETRIEVAL else None
    missing = [name for name in INPUTS if name not in values and name != context]
    if missing:
        sys.exit(f"Error: input {{missing[0]!r}} is required; pass --input {{missing[0]}}=...")
    return values


def retrieve_context(variables: dict[str, object]) -> str:
    """Context from the Prompt Playground store, as the Playground retrieves it."""
    from playground.config import load_settings
    from playground.rag.retrieval import retrieve_for_run
    from playground.records import RetrievalSettings

    settings = RetrievalSettings(**{{k: v for k, v in RETRIEVAL.items() if k != "embedding_model"}})
    return retrieve_for_run(load_settings(), settings, variables).context


def render_messages(variables: dict[str, object]) -> list[dict[str, str]]:
    """Render the Jinja2 message templates in a sandbox, like the Playground."""
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    return [
        {{"role": m["role"], "content": env.from_string(m["content"]).render(**variables)}}
        for m in MESSAGES
    ]


def main(argv: list[str] | None = None) -> int:
    """Render the prompt, call the model once, print the answer."""
    parser = argparse.ArgumentParser(description="Run the exported flow once.")
    parser.add_argument("--input", action="append", default=[], help="name=value; repeatable")
    parser.add_argument("--base-url", default=BASE_URL, help="OpenAI-compatible /v1 URL")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    args = parser.parse_args(argv)
    variables = parse_inputs(args.input)
    if RETRIEVAL and RETRIEVAL["context_variable"] not in variables:
        variables[RETRIEVAL["context_variable"]] = retrieve_context(variables)
    api_key = os.environ.get(API_KEY_ENV) if API_KEY_ENV else None
{client_setup}
    response = client.chat.completions.create(
        model=MODEL, messages=render_messages(variables), **PARAMS
    )
    text = response.choices[0].message.content or ""
    if args.json:
        usage = response.usage
        print(json.dumps({{
            "model": MODEL,
            "text": text,
            "usage": {{
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
            }},
        }}))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

_OPENAI_SETUP = """    client = OpenAI(base_url=args.base_url, api_key=api_key or "not-needed")"""
_AZURE_SETUP = """    client = AzureOpenAI(
        azure_endpoint=args.base_url or os.environ["AZURE_OPENAI_ENDPOINT"],
        api_key=api_key,
        api_version=os.environ.get("OPENAI_API_VERSION", "2024-10-21"),
    )"""


def python_script(spec: FlowSpec, target: Target) -> str:
    """Source of the standalone script for this spec and target server."""
    params = spec.model.params
    call: dict[str, object] = {"temperature": params.temperature, "top_p": params.top_p}
    # OpenAI's own newer models take only max_completion_tokens; other servers know max_tokens.
    call["max_completion_tokens" if target.kind != "compatible" else "max_tokens"] = (
        params.max_tokens
    )
    if params.seed is not None:
        call["seed"] = params.seed
    if params.stop:
        call["stop"] = list(params.stop)
    response_format = response_format_for(spec, target)
    if response_format is not None:  # the server constrains the answer to JSON (or the schema)
        call["response_format"] = response_format
    retrieval = spec.retrieval.model_dump(mode="json") if spec.retrieval else None
    if retrieval:
        retrieval = {k: v for k, v in retrieval.items() if not k.startswith("x-")}
    filename = spec.name.replace("-", "_") + ".py"
    title = f"{spec.ref}: {spec.description}" if spec.description else spec.ref
    lines = [
        title,
        "",
        "Exported from Prompt Playground. Requires `pip install openai jinja2`.",
        f"Run:  python {filename} [--input name=value ...] [--base-url URL] [--json]",
    ]
    if target.note:
        lines += ["", target.note]
    if spec.retrieval is not None:
        lines += [
            "",
            "The context is retrieved with Prompt Playground's store (pip install "
            "prompt-playground,",
            f"PLAYGROUND_HOME set) unless you pass --input {spec.retrieval.context_variable}=...",
        ]
    inputs = {name: declared.default for name, declared in spec.inputs.items()}
    input_types = {name: declared.type for name, declared in spec.inputs.items()}
    if spec.retrieval is not None:
        # The context may be passed by hand, which skips retrieval.
        inputs.setdefault(spec.retrieval.context_variable, None)
        input_types.setdefault(spec.retrieval.context_variable, "string")
    return _SCRIPT.format(
        docstring=py_docstring("\n".join(lines) + "\n"),
        client_class="AzureOpenAI" if target.kind == "azure" else "OpenAI",
        model=py_literal(target.model, "model name"),
        base_url=py_literal(target.base_url, "base_url"),
        api_key_env=py_literal(target.api_key_env, "api_key_env"),
        params=py_literal(call, "model.params"),
        inputs=py_literal(inputs, "inputs"),
        input_types=py_literal(input_types, "input types"),
        messages=py_literal([m.model_dump() for m in spec.prompt.messages], "prompt.messages"),
        retrieval=py_literal(retrieval, "retrieval"),
        client_setup=_AZURE_SETUP if target.kind == "azure" else _OPENAI_SETUP,
    )
