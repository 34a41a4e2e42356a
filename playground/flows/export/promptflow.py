"""The PromptFlow export: a DAG flow directory (flow.dag.yaml, chat.jinja2, connection, code)."""

from __future__ import annotations

from playground.config import Settings
from playground.flows.export.safety import chat_template, py_identifier, py_literal
from playground.flows.export.target import NO_KEY, llm_params, target_for
from playground.flows.loader import dump_yaml
from playground.flows.spec import FlowSpec
from playground.prompts import find_variables

PLACEHOLDER_KEY = "<user-input>"  # PromptFlow's own placeholder; `--set api_key=...` replaces it
PROMPTFLOW_REQUIREMENTS = ["promptflow>=1.18,<1.19", "promptflow-tools>=1.6"]
TARGET = "PromptFlow"
_PF_TYPES = {"string": "string", "integer": "int", "number": "double", "boolean": "bool"}

# Every spec value below arrives as a Python literal (py_literal): nothing is spliced as code.
_RETRIEVE_PY = '''"""Retrieval node: context from a Prompt Playground knowledge store.

Needs `pip install prompt-playground` and PLAYGROUND_HOME pointing at the data directory
that holds the store (the same one the Playground used).
"""

from promptflow.core import tool

FLOW = {flow}
STORE = {store}
TOP_K = {top_k}
QUERY = {query}
CONTEXT_VARIABLE = {context_variable}


@tool
def retrieve({parameters}) -> str:
    """Return the joined top chunks of STORE for the QUERY template."""
    from playground.config import load_settings
    from playground.rag.retrieval import retrieve_for_run
    from playground.records import RetrievalSettings

    retrieval = RetrievalSettings(
        store=STORE, top_k=TOP_K, query=QUERY, context_variable=CONTEXT_VARIABLE
    )
    return retrieve_for_run(load_settings(), retrieval, {variables}).context
'''


def _connection_name(spec: FlowSpec) -> str:
    return spec.name.replace("-", "_") + "_connection"


def _pf_input(spec: FlowSpec, name: str) -> dict[str, object]:
    declared = spec.inputs[name]
    entry: dict[str, object] = {"type": _PF_TYPES[declared.type]}
    if declared.default is not None:
        entry["default"] = declared.default
    if declared.description:
        entry["description"] = declared.description
    return entry


def retrieve_py(spec: FlowSpec) -> str:
    """Source of the python node that fills the context from the spec's knowledge store."""
    r = spec.retrieval
    assert r is not None
    names = [py_identifier(n, "retrieval.query") for n in find_variables(r.query)]
    return _RETRIEVE_PY.format(
        flow=py_literal(spec.ref, "flow name"),
        store=py_literal(r.store, "retrieval.store"),
        top_k=py_literal(r.top_k, "retrieval.top_k"),
        query=py_literal(r.query, "retrieval.query"),
        context_variable=py_literal(r.context_variable, "retrieval.context_variable"),
        parameters=", ".join(f"{n}: str" for n in names),
        variables="{" + ", ".join(f"{n!r}: {n}" for n in names) + "}",
    )


def _readme(spec: FlowSpec, key_hint: str, sample: str, note: str) -> str:
    # The description is quoted line by line: it reads as text, not as headings or commands.
    quoted = "\n".join(f"> {line}" for line in spec.description.splitlines())
    return f"""# {spec.ref}: PromptFlow DAG flow exported from Prompt Playground

{quoted}

```sh
pip install -r requirements.txt
pf connection create --file connection.yaml {key_hint}
pf flow test --flow . --inputs {sample}
```

{note}
Templates are Jinja2; block tags end in `+%}}` so PromptFlow keeps the newlines the
Playground keeps. PromptFlow strips leading and trailing whitespace of each message.
"""


def promptflow_files(spec: FlowSpec, settings: Settings | None = None) -> dict[str, str]:
    """A PromptFlow DAG flow directory: flow.dag.yaml, chat.jinja2, connection, requirements."""
    target = target_for(spec, settings)
    connection = _connection_name(spec)
    context = spec.retrieval.context_variable if spec.retrieval else None
    llm_inputs: dict[str, object] = {}
    if target.kind == "azure":
        llm_inputs["deployment_name"] = target.model
    else:
        llm_inputs["model"] = target.model
    llm_inputs.update(llm_params(spec, target))
    for name in spec.inputs:
        llm_inputs[name] = f"${{inputs.{name}}}"
    nodes: list[dict[str, object]] = []
    if spec.retrieval is not None and context is not None:
        nodes.append(
            {
                "name": "retrieve",
                "type": "python",
                "source": {"type": "code", "path": "retrieve.py"},
                "inputs": {n: f"${{inputs.{n}}}" for n in find_variables(spec.retrieval.query)},
            }
        )
        llm_inputs[context] = "${retrieve.output}"
    nodes.append(
        {
            "name": "chat",
            "type": "llm",
            "source": {"type": "code", "path": "chat.jinja2"},
            "inputs": llm_inputs,
            "connection": connection,
            "api": "chat",
            "provider": "AzureOpenAI" if target.kind == "azure" else "OpenAI",
        }
    )
    dag = {
        "$schema": "https://azuremlschemas.azureedge.net/promptflow/latest/Flow.schema.json",
        "environment": {"python_requirements_txt": "requirements.txt"},
        "inputs": {name: _pf_input(spec, name) for name in spec.inputs},
        "outputs": {"answer": {"type": "string", "reference": "${chat.output}"}},
        "nodes": nodes,
    }
    conn: dict[str, object]
    if target.kind == "azure":
        conn = {
            "$schema": "https://azuremlschemas.azureedge.net/promptflow/latest/"
            "AzureOpenAIConnection.schema.json",
            "name": connection,
            "type": "azure_open_ai",
            "api_key": PLACEHOLDER_KEY,
            "api_base": "<your Azure OpenAI endpoint, see $AZURE_OPENAI_ENDPOINT>",
            "api_type": "azure",
            "api_version": "<see $OPENAI_API_VERSION>",
        }
    else:
        conn = {
            "$schema": "https://azuremlschemas.azureedge.net/promptflow/latest/"
            "OpenAIConnection.schema.json",
            "name": connection,
            "type": "open_ai",
            "api_key": PLACEHOLDER_KEY,
        }
        if target.base_url:
            conn["base_url"] = target.base_url
    requirements = list(PROMPTFLOW_REQUIREMENTS)
    if spec.retrieval is not None:
        requirements.append("prompt-playground")
    key_hint = (
        f'--set api_key="${target.api_key_env}"'
        if target.api_key_env
        else f"--set api_key={NO_KEY}  # this server needs no key"
    )
    sample = " ".join(f"{n}=..." for n in spec.required_inputs()) or "(inputs have defaults)"
    files = {
        "flow.dag.yaml": dump_yaml(dag),
        "chat.jinja2": chat_template(spec, "# ", TARGET),
        "requirements.txt": "\n".join(requirements) + "\n",
        "connection.yaml": "# The key is a placeholder: pass the real one at creation time.\n"
        + dump_yaml(conn),
        "README.md": _readme(spec, key_hint, sample, target.note),
    }
    if spec.retrieval is not None:
        files["retrieve.py"] = retrieve_py(spec)
    return files
