"""Exports of a flow spec to the tools engineers already use: PromptFlow, Prompty, plain Python.

Every exporter builds all its files in memory first (`build_export`), so a failure writes
nothing. Keys never appear in an export: connections carry a placeholder and code reads the
environment variable the spec names.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from playground.config import Settings
from playground.errors import SpecError
from playground.flows.export_python import python_script
from playground.flows.loader import dump_yaml
from playground.flows.spec import FlowSpec
from playground.models.registry import split_model_id

ExportFormat = Literal["promptflow", "prompty", "python"]
FORMATS: tuple[ExportFormat, ...] = ("promptflow", "prompty", "python")
SERVE_MODEL_URL = "http://127.0.0.1:8000/v1"  # where `playground serve-model` listens by default
PLACEHOLDER_KEY = "<user-input>"  # PromptFlow's own placeholder; `--set api_key=...` replaces it
NO_KEY = "not-needed"  # local servers accept any key; clients insist on one
PROMPTFLOW_REQUIREMENTS = ["promptflow>=1.18,<1.19", "promptflow-tools>=1.6"]
_PF_TYPES = {"string": "string", "integer": "int", "number": "double", "boolean": "bool"}


@dataclass(frozen=True)
class Target:
    """Where the exported call goes: the API kind, the model name it expects, and its URL."""

    kind: Literal["openai", "azure", "compatible"]
    model: str
    base_url: str | None
    api_key_env: str | None
    note: str = ""


def target_for(spec: FlowSpec, settings: Settings | None = None) -> Target:
    """The server an export calls for this spec's model id and endpoint."""
    provider, name = split_model_id(spec.model.id)
    endpoint = spec.model.endpoint
    if endpoint is not None:
        return Target("compatible", name, endpoint.base_url, endpoint.api_key_env)
    if provider == "local":
        note = (
            f"{spec.model.id} runs inside Prompt Playground; serve it with "
            f"`playground serve-model` (listens on {SERVE_MODEL_URL}) or change base_url."
        )
        return Target("compatible", name, SERVE_MODEL_URL, None, note)
    if provider == "openai":
        return Target("openai", name, None, "OPENAI_API_KEY")
    if provider == "azure":
        return Target("azure", name, None, "AZURE_OPENAI_API_KEY")
    configured = settings.endpoints.get(provider) if settings else None
    if configured is not None:
        return Target("compatible", name, configured.base_url, configured.api_key_env)
    return Target(
        "compatible",
        name,
        SERVE_MODEL_URL,
        None,
        f"the spec does not say where endpoint '{provider}' lives; set base_url.",
    )


def keep_newlines_after_tags(template: str) -> str:
    """Mark block tags `+%}` so PromptFlow's trim_blocks=True renders like the Playground."""
    return re.sub(r"(?<![-+])%}", "+%}", template)


def _chat_template(spec: FlowSpec, marker: str) -> str:
    blocks = [
        f"{marker}{m.role}:\n{keep_newlines_after_tags(m.content)}\n" for m in spec.prompt.messages
    ]
    return "\n".join(blocks)


def _connection_name(spec: FlowSpec) -> str:
    return spec.name.replace("-", "_") + "_connection"


def _llm_params(spec: FlowSpec) -> dict[str, object]:
    params = spec.model.params
    values: dict[str, object] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
    }
    if params.seed is not None:
        values["seed"] = params.seed
    if params.stop:
        values["stop"] = list(params.stop)
    return values


def _pf_input(spec: FlowSpec, name: str) -> dict[str, object]:
    declared = spec.inputs[name]
    entry: dict[str, object] = {"type": _PF_TYPES[declared.type]}
    if declared.default is not None:
        entry["default"] = declared.default
    if declared.description:
        entry["description"] = declared.description
    return entry


def _retrieve_py(spec: FlowSpec) -> str:
    r = spec.retrieval
    assert r is not None
    from playground.prompts import find_variables

    names = find_variables(r.query)
    args = ", ".join(f"{n}: str" for n in names)
    variables = ", ".join(f"{n!r}: {n}" for n in names)
    return f'''"""Retrieval node of {spec.ref}: context from Prompt Playground store {r.store!r}.

Needs `pip install prompt-playground` and PLAYGROUND_HOME pointing at the data directory
that holds the store (the same one the Playground used).
"""

from promptflow.core import tool


@tool
def retrieve({args}) -> str:
    """Return the joined top-{r.top_k} chunks for the query, as the Playground does."""
    from playground.config import load_settings
    from playground.rag.retrieval import retrieve_for_run
    from playground.records import RetrievalSettings

    retrieval = RetrievalSettings(
        store={r.store!r},
        top_k={r.top_k},
        query={r.query!r},
        context_variable={r.context_variable!r},
    )
    return retrieve_for_run(load_settings(), retrieval, {{{variables}}}).context
'''


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
    llm_inputs.update(_llm_params(spec))
    for name in spec.inputs:
        llm_inputs[name] = f"${{inputs.{name}}}"
    nodes: list[dict[str, object]] = []
    if spec.retrieval is not None and context is not None:
        from playground.prompts import find_variables

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
        "chat.jinja2": _chat_template(spec, "# "),
        "requirements.txt": "\n".join(requirements) + "\n",
        "connection.yaml": "# The key is a placeholder: pass the real one at creation time.\n"
        + dump_yaml(conn),
        "README.md": f"""# {spec.ref}: PromptFlow DAG flow exported from Prompt Playground

{spec.description}

```sh
pip install -r requirements.txt
pf connection create --file connection.yaml {key_hint}
pf flow test --flow . --inputs {sample}
```

{target.note}
Templates are Jinja2; block tags end in `+%}}` so PromptFlow keeps the newlines the
Playground keeps. PromptFlow strips leading and trailing whitespace of each message.
""",
    }
    if spec.retrieval is not None:
        files["retrieve.py"] = _retrieve_py(spec)
    return files


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
        "model": {"api": "chat", "configuration": configuration, "parameters": _llm_params(spec)},
        "inputs": inputs,
    }
    if sample:
        front["sample"] = sample
    return "---\n" + dump_yaml(front) + "---\n" + _chat_template(spec, "")


def build_export(spec: FlowSpec, fmt: str, settings: Settings | None = None) -> dict[str, str]:
    """Every file of an export, relative path -> text, built in memory."""
    if fmt == "promptflow":
        return promptflow_files(spec, settings)
    if fmt == "prompty":
        return {f"{spec.name}.prompty": prompty_text(spec, settings)}
    if fmt == "python":
        script = python_script(spec, target_for(spec, settings))
        return {f"{spec.name.replace('-', '_')}.py": script}
    raise SpecError(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")


def export_flow(
    spec: FlowSpec, fmt: str, out_dir: Path, settings: Settings | None = None
) -> list[Path]:
    """Write an export into out_dir (created if needed); returns the paths written."""
    files = build_export(spec, fmt, settings)
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecError(f"{out_dir} is a file; give a directory for --out.")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text in files.items():
        path = out_dir / relative
        fd, tmp = tempfile.mkstemp(prefix=".export-", dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if relative.endswith(".py"):
            os.chmod(tmp, 0o755)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        written.append(path)
    return written


def export_zip(spec: FlowSpec, fmt: str, settings: Settings | None = None) -> bytes:
    """A zip archive of an export, for download buttons."""
    files = build_export(spec, fmt, settings)
    buffer = io.BytesIO()
    folder = f"{spec.name}-v{spec.version or 0}-{fmt}"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, text in files.items():
            archive.writestr(f"{folder}/{relative}", text)
    return buffer.getvalue()
