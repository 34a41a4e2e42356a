"""Flow spec v1: the pydantic models behind `schema: playground.flow/v1` (see DESIGN.md).

Extension policy. DESIGN.md says "extra fields may be added under new keys". Unknown keys are
refused with an error that names them (a typo such as `retreival:` must not be silently ignored),
except keys starting with `x-` (like OpenAPI extensions), which are accepted and preserved at
the top level and in `inputs.*`, `model`, `model.endpoint` and `retrieval`. `evidence` is
descriptive only, so it accepts any extra key. `model.params` and `prompt.messages[*]` accept
no extra keys at all, because they are sent to the model and a silent typo would change output.
"""

from __future__ import annotations

import json
import keyword
import math
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from playground.errors import SpecError, TemplateError
from playground.eval.spec import EvaluationSpec
from playground.models.base import Message, ModelParams
from playground.models.response_format import ResponseFormat
from playground.prompts import (
    TemplateLimitError,
    check_examples,
    check_syntax,
    find_variables,
    render,
)

SCHEMA_ID = "playground.flow/v1"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
STORE_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$"  # playground.rag.store.STORE_NAME
# No $, { or spaces: PromptFlow and Prompty read `${env:NAME}` and `${inputs.x}` in model names.
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
EXTENSION_PREFIX = "x-"
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
SCHEMA_PATH = Path(__file__).with_name(
    "schema.json"
)  # regenerate: python -m playground.flows.write_schema

InputType = Literal["string", "number", "integer", "boolean"]
InputValue = str | int | float | bool

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
}


def is_valid_name(name: str) -> bool:
    """True when name is a flow name (`[a-z0-9][a-z0-9-]{1,62}`, nothing else)."""
    return isinstance(name, str) and re.fullmatch(NAME_PATTERN[1:-1], name) is not None


def sub_path(path: str, key: Any) -> str:
    """The path of `key` under `path`, odd keys (newlines, spaces) quoted on one line."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    # control characters such as NUL never reach a message; whitespace is shown quoted
    shown = "".join(c for c in str(key) if c.isprintable() or c.isspace())
    if re.fullmatch(r"[\w-]+", shown):
        return f"{path}.{shown}" if path else shown
    return f"{path}[{shown!r}]"


def _non_finite(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, value) of the first inf/nan inside parsed spec data, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, repr(value)
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        sub = sub_path(path, key)
        found = _non_finite(item, sub)
        if found is not None:
            return found
    return None


def _with_nul(value: Any, path: str = "") -> str | None:
    """The field path of the first string (or key) holding a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        sub = sub_path(path, key)
        if isinstance(key, str) and "\x00" in key:
            return sub
        found = _with_nul(item, sub)
        if found is not None:
            return found
    return None


def _extension_only(allowed: set[str], data: Any) -> Any:
    """Refuse unknown keys unless they start with x-; pass non-dicts on for normal errors."""
    if isinstance(data, dict):
        for key in data:
            if not isinstance(key, str):
                raise PydanticCustomError(
                    "spec_key_type", "has a key {key} that is not text", {"key": repr(key)[:40]}
                )
            if key not in allowed and not key.startswith(EXTENSION_PREFIX):
                raise PydanticCustomError(
                    "spec_unknown_key",
                    "has an unknown key '{key}'",
                    {"key": key, "allowed": sorted(allowed)},
                )
    return data


def _extension_schema(schema: dict[str, Any]) -> None:
    # Publish the extension policy in JSON Schema: only x- keys beyond the documented ones.
    schema["patternProperties"] = {"^x-": {}}
    schema["additionalProperties"] = False


class _Extensible(BaseModel):
    """A spec section that refuses unknown keys except x- extensions (kept on round trip)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_extension_schema)

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        allowed = {f.alias or name for name, f in cls.model_fields.items()}
        return _extension_only(allowed, data)


def _not_a_keyword(name: str, what: str) -> str:
    # Exports turn input names into Python parameters (PromptFlow's retrieve node).
    if keyword.iskeyword(name):
        raise PydanticCustomError(
            "python_keyword",
            "has {what} '{name}', a Python keyword that exported code cannot use; rename it",
            {"what": what, "name": name},
        )
    return name


def _template_syntax(value: str) -> str:
    try:
        check_syntax(value)
    except TemplateError as exc:
        # Keep only the part after "Template syntax error": the loader adds the field name.
        raise PydanticCustomError(
            "template_syntax", "{detail}", {"detail": str(exc).split(";")[0]}
        ) from None
    return value


class InputSpec(_Extensible):
    """One named input of the flow; inputs without a default are required at run time."""

    type: InputType = Field("string", description="Value type: string, number, integer, boolean.")
    default: InputValue | None = Field(
        None, description="Value used when the caller gives none; absent means required."
    )
    description: str = Field("", description="What the input means, for people running it.")

    @model_validator(mode="after")
    def _default_matches_type(self) -> InputSpec:
        if self.default is None:
            return self
        expected = _PYTHON_TYPES[self.type]
        # bool is an int in Python; a boolean default only fits a boolean input.
        if isinstance(self.default, bool) != (self.type == "boolean") or not isinstance(
            self.default, expected
        ):
            raise PydanticCustomError(
                "default_type",
                "has default {value}, which is not of type {type}",
                {"value": repr(self.default)[:40], "type": self.type},
            )
        return self


class PromptMessage(BaseModel):
    """One chat message template: a role and Jinja2 content rendered in the sandbox."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"] = Field(
        description="Who speaks: system, user or assistant."
    )
    content: str = Field(description="Jinja2 template; variables come from inputs and retrieval.")

    @field_validator("content")
    @classmethod
    def _jinja_syntax(cls, value: str) -> str:
        return _template_syntax(value)


class PromptSpec(_Extensible):
    """The message templates sent to the model, in order."""

    messages: list[PromptMessage] = Field(
        min_length=1,
        description=(
            "Chat messages in order: an optional system message, then user and assistant "
            "messages (few-shot examples or the earlier turns of a conversation, sent as "
            "they are), ending with the user message; at least one must have role user."
        ),
    )

    @field_validator("messages")
    @classmethod
    def _has_user(cls, value: list[PromptMessage]) -> list[PromptMessage]:
        if not any(m.role == "user" for m in value):
            raise PydanticCustomError("no_user_message", "needs at least one user message", {})
        return value


class EndpointRef(BaseModel):
    """Where an OpenAI-compatible model lives; the key itself is never stored, only its name."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_extension_schema)

    base_url: str = Field(
        pattern=r"^https?://\S+$", description="The /v1 base URL of the OpenAI-compatible server."
    )
    api_key_env: str | None = Field(
        None,
        pattern=ENV_PATTERN,
        description="Name of the environment variable holding the API key (never the key).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("api_key", "key", "token", "password", "secret"):
                if key in data:
                    raise PydanticCustomError(
                        "spec_secret",
                        "must not hold a secret ('{key}'); put the key in an environment "
                        "variable and name it in api_key_env",
                        {"key": key},
                    )
        return _extension_only({"base_url", "api_key_env"}, data)

    @field_validator("base_url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            raise PydanticCustomError(
                "url_credentials",
                "holds a user name or password ({url}); a spec holds no secret: put the key in "
                "an environment variable named by api_key_env",
                {"url": urlunsplit(parts._replace(netloc=f"***@{host}"))[:80]},
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            parts = parts._replace(netloc="")
        if not parts.hostname:
            raise PydanticCustomError(
                "url_host", "is {url}, which has no valid host and port", {"url": repr(value)[:80]}
            )
        return value.rstrip("/")


class ModelSpec(_Extensible):
    """Which model answers and with which sampling parameters."""

    id: str = Field(
        pattern=MODEL_ID_PATTERN,
        description="Model id `<provider>/<model>`, e.g. local/smollm2-135m-instruct.",
    )
    params: ModelParams = Field(
        default_factory=ModelParams, description="Sampling parameters (unknown names refused)."
    )
    endpoint: EndpointRef | None = Field(
        None, description="For endpoint models: where the server lives, so the spec runs elsewhere."
    )
    response_format: ResponseFormat | None = Field(
        None,
        description="Optional: answer as text (default), any JSON, or JSON matching a schema.",
    )

    @property
    def structured_format(self) -> ResponseFormat | None:
        """The response format when it asks for JSON; None for text (absent or type text)."""
        fmt = self.response_format
        return fmt if fmt is not None and fmt.structured else None


class RetrievalSpec(_Extensible):
    """Context retrieved from a knowledge store before the model is called."""

    store: str = Field(
        pattern=STORE_PATTERN, description="Knowledge store name (as `playground rag` names it)."
    )
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, min_length=1, description="Embedder the store was built with."
    )
    top_k: int = Field(4, ge=1, le=50, description="How many chunks to retrieve.")
    query: str = Field("{{ question }}", description="Jinja2 template of the search query.")
    context_variable: str = Field(
        "context", pattern=IDENT_PATTERN, description="Variable the joined chunks are bound to."
    )

    @field_validator("query")
    @classmethod
    def _query_syntax(cls, value: str) -> str:
        return _template_syntax(value)

    @field_validator("context_variable")
    @classmethod
    def _context_name(cls, value: str) -> str:
        return _not_a_keyword(value, "the name")


class RatingsEvidence(BaseModel):
    """Human ratings of the configuration when it was saved."""

    model_config = ConfigDict(extra="allow")

    count: int = Field(0, ge=0, description="Number of star ratings.")
    mean: float | None = Field(None, ge=0, le=5, description="Mean stars, if any.")


class Evidence(BaseModel):
    """Why this version won: ratings and the runs it came from (free to grow)."""

    model_config = ConfigDict(extra="allow")

    ratings: RatingsEvidence | None = Field(None, description="Star ratings of this configuration.")
    runs: list[str] = Field(default_factory=list, description="Ids of the runs behind this spec.")


class FlowSpec(_Extensible):
    """A versioned, runnable prompt configuration: flow spec v1."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=_extension_schema,
        populate_by_name=True,
        title="Prompt Playground flow spec v1",
    )

    schema_id: Literal["playground.flow/v1"] = Field(
        alias="schema", description="Spec format and version; always playground.flow/v1."
    )
    name: str = Field(pattern=NAME_PATTERN, description="Flow name, [a-z0-9][a-z0-9-]{1,62}.")
    version: int | None = Field(
        None, ge=1, description="Assigned by the registry; a saved version never changes."
    )
    parent: int | None = Field(None, ge=1, description="The version this one was derived from.")
    description: str = Field("", description="What the flow does.")
    created_at: str | None = Field(
        None, description="When the registry saved this version (ISO 8601, UTC)."
    )
    inputs: dict[str, InputSpec] = Field(
        default_factory=dict, description="Named inputs the templates use, with defaults."
    )
    prompt: PromptSpec = Field(description="The message templates.")
    model: ModelSpec = Field(description="The model and its parameters.")
    retrieval: RetrievalSpec | None = Field(None, description="Optional retrieval step.")
    evidence: Evidence | None = Field(None, description="Optional: why this version won.")
    evaluation: EvaluationSpec | None = Field(
        None, description="Optional: dataset, scorers and gate for `playground flow test`."
    )

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers(cls, data: Any) -> Any:
        # inf and nan are valid YAML (.inf, .nan) but not JSON, and no parameter means them.
        where = _non_finite(data)
        if where is not None:
            field, value = where
            raise PydanticCustomError(
                "not_finite",
                "is {value}: a flow spec holds only finite numbers; use a finite one",
                {"field": field or "spec", "value": value},
            )
        # YAML's "\0" escape makes a NUL: PostgreSQL cannot store it, exports would carry it
        nul_at = _with_nul(data)
        if nul_at is not None:
            raise PydanticCustomError(
                "nul_character",
                "holds a NUL character (\\0); a flow spec is text, so remove it",
                {"field": nul_at or "spec"},
            )
        return data

    @field_validator("created_at", mode="before")
    @classmethod
    def _iso_time(cls, value: Any) -> Any:
        # YAML turns an unquoted timestamp into a datetime; the spec keeps ISO text.
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise PydanticCustomError(
                    "iso_time", "is {value}, not an ISO 8601 time", {"value": repr(value)[:40]}
                ) from None
        return value

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for key in value:
            if not re.fullmatch(IDENT_PATTERN[1:-1], key):
                raise PydanticCustomError(
                    "input_name",
                    "has an input named {key}; use letters, digits and _ only",
                    {"key": repr(key)[:40]},
                )
            _not_a_keyword(key, "an input named")
        return value

    @model_validator(mode="after")
    def _variables_declared(self) -> FlowSpec:
        if self.version is not None and self.parent is not None and self.parent >= self.version:
            raise PydanticCustomError(
                "parent_order",
                "is {parent}, but must be lower than version {version}",
                {"parent": self.parent, "version": self.version, "field": "parent"},
            )
        context = self.retrieval.context_variable if self.retrieval else None
        if context and context in self.inputs:
            raise PydanticCustomError(
                "context_is_input",
                "is '{name}', which is also declared under inputs; rename one of them",
                {"name": context, "field": "retrieval.context_variable"},
            )
        for index, message in enumerate(self.prompt.messages):
            for var in find_variables(message.content):
                if var not in self.inputs and var != context:
                    raise PydanticCustomError(
                        "undeclared_variable",
                        "uses variable '{var}', which is not declared under inputs; "
                        "add inputs.{var}",
                        {"field": f"prompt.messages[{index}].content", "var": var},
                    )
        if self.retrieval:
            for var in find_variables(self.retrieval.query):
                if var not in self.inputs:
                    raise PydanticCustomError(
                        "undeclared_variable",
                        "uses variable '{var}', which is not declared under inputs; "
                        "add inputs.{var}",
                        {"field": "retrieval.query", "var": var},
                    )
        return self

    def extensions(self) -> dict[str, Any]:
        """The x- extension keys of the top level, kept as they were read."""
        return dict(self.model_extra or {})

    def to_data(self) -> dict[str, Any]:
        """Plain data in the documented key order, None-valued optional keys left out."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        order = [
            "schema",
            "name",
            "version",
            "parent",
            "description",
            "created_at",
            "inputs",
            "prompt",
            "model",
            "retrieval",
            "evidence",
        ]
        ordered = {key: data[key] for key in order if key in data}
        ordered.update({k: v for k, v in data.items() if k not in ordered})
        return ordered

    def required_inputs(self) -> list[str]:
        """Inputs without a default, which every run must be given."""
        return [name for name, spec in self.inputs.items() if spec.default is None]

    @property
    def ref(self) -> str:
        """`name@version` when saved, else just the name."""
        return f"{self.name}@{self.version}" if self.version else self.name


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of flow spec v1 (what schema.json holds)."""
    schema = FlowSpec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://prompt-playground.dev/schemas/playground.flow-v1.json"
    return schema


def schema_text() -> str:
    """schema.json as it should be on disk."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


_PLACEHOLDERS: dict[str, object] = {
    "string": "example",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
}
_SANDBOX = re.compile(r"sandbox forbids \((?P<detail>.*)\); use")


def template_fields(spec: FlowSpec) -> tuple[str, str]:
    """The (system, user) templates the Playground would hold for this spec.

    The Playground edits one system and one user template; a spec with other shapes keeps
    its full message list, and these two are then the first system and the last user message.
    """
    system = next((m.content for m in spec.prompt.messages if m.role == "system"), "")
    user = next((m.content for m in reversed(spec.prompt.messages) if m.role == "user"), "")
    return system, user


def few_shot_of(spec: FlowSpec) -> list[Message] | None:
    """The spec's messages between system and last user as few-shot examples; None when they
    do not have that shape (the editor then keeps only the system and last user message)."""
    roles = [m.role for m in spec.prompt.messages]
    start = 1 if roles and roles[0] == "system" else 0
    middle = spec.prompt.messages[start:-1]
    if roles[-1] != "user" or "system" in roles[start:]:
        return None
    examples = [Message(role=m.role, content=m.content) for m in middle]
    try:
        check_examples(examples)
    except TemplateError:
        return None
    return examples


def check_templates(spec: FlowSpec) -> None:
    """Trial-render every template so one the sandbox refuses fails validation, not a demo.

    Inputs without defaults get placeholders; only sandbox refusals are errors here, since
    a placeholder may legitimately upset a filter that the real value would satisfy.
    """
    variables: dict[str, object] = {
        name: declared.default if declared.default is not None else _PLACEHOLDERS[declared.type]
        for name, declared in spec.inputs.items()
    }
    templates = [
        (f"prompt.messages[{i}].content", m.content) for i, m in enumerate(spec.prompt.messages)
    ]
    if spec.retrieval is not None:
        variables[spec.retrieval.context_variable] = "(retrieved context)"
        templates.append(("retrieval.query", spec.retrieval.query))
    for field, template in templates:
        try:
            render(template, variables, f"field '{field}' of flow {spec.name}")
        except TemplateLimitError as exc:
            raise SpecError(str(exc)) from None
        except TemplateError as exc:
            match = _SANDBOX.search(str(exc))
            if match:
                raise SpecError(
                    f"Field '{field}' tries something the template sandbox forbids "
                    f"({match['detail']}); use only variables and filters."
                ) from None
