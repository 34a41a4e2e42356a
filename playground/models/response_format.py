"""Structured answers: a response format (text, any JSON, or JSON matching a schema).

One record (`ResponseFormat`) travels with a run to the model, the store, flow specs and
exports; `check_answer` marks an answer valid or invalid against it with a one-line reason;
the `*_response_format` helpers turn it into what each kind of server expects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from playground.errors import ParamError

FormatType = Literal["text", "json", "json_schema"]
SCHEMA_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # what OpenAI accepts as json_schema.name
MAX_SCHEMA_FILE_BYTES = 1_000_000
_REASON_CHARS = 160  # a reason is one line under an answer card


def schema_problem(schema: object) -> str | None:
    """What makes `schema` not a usable JSON Schema (one clause), or None when it is one."""
    from jsonschema import Draft202012Validator, SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict):
        return f"it is a JSON {type(schema).__name__}, not an object"
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        return f"{_short(exc.message)} at {exc.json_path}"
    return None


class ResponseFormat(BaseModel):
    """How an answer must be shaped: text (no constraint), any JSON, or JSON matching a schema."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: FormatType = Field(
        "text", description="text (no constraint), json (any JSON object) or json_schema."
    )
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="For type json_schema: the JSON Schema of the answer."
    )
    name: str = Field(
        "answer", pattern=SCHEMA_NAME_PATTERN, description="Schema name sent to OpenAI-style APIs."
    )

    @model_validator(mode="after")
    def _schema_fits_type(self) -> ResponseFormat:
        if self.type == "json_schema":
            if self.json_schema is None:
                raise PydanticCustomError(
                    "schema_missing", "has type json_schema but no schema; add one", {}
                )
            problem = schema_problem(self.json_schema)
            if problem is not None:
                raise PydanticCustomError(
                    "schema_invalid",
                    "holds a schema that is not a valid JSON Schema ({problem}); fix it",
                    {"problem": problem},
                )
        elif self.json_schema is not None:
            raise PydanticCustomError(
                "schema_unused",
                "has a schema but type {type}; use type json_schema",
                {"type": self.type},
            )
        return self

    @property
    def structured(self) -> bool:
        """True when the answer must be JSON."""
        return self.type != "text"

    @property
    def label(self) -> str:
        """How people name this format: 'text', 'JSON', 'JSON Schema'."""
        return {"text": "text", "json": "JSON", "json_schema": "JSON Schema"}[self.type]

    def to_data(self) -> dict[str, Any]:
        """Plain data as a flow spec holds it (`schema` only for json_schema)."""
        data: dict[str, Any] = {"type": self.type}
        if self.type == "json_schema":
            data["name"] = self.name
            data["schema"] = self.json_schema
        return data

    @classmethod
    def any_json(cls) -> ResponseFormat:
        """Any JSON object."""
        return cls(type="json")

    @classmethod
    def from_schema(cls, schema: object, where: str, name: str = "answer") -> ResponseFormat:
        """A json_schema format; ParamError naming `where` if schema is not a valid JSON Schema."""
        problem = schema_problem(schema)
        if problem is not None:
            raise ParamError(f"{where} is not a valid JSON Schema: {problem}; fix the schema.")
        assert isinstance(schema, dict)
        return cls(type="json_schema", json_schema=schema, name=name)


def parse_schema_text(text: str, where: str) -> ResponseFormat:
    """A json_schema format from JSON text; ParamError (one sentence naming `where`) if bad."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "fix the schema."
        ) from None
    return ResponseFormat.from_schema(schema, where)


def load_schema_file(path: Path) -> ResponseFormat:
    """A json_schema format from a file; ParamError naming the file when it is unusable."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_SCHEMA_FILE_BYTES + 1)
    except OSError as exc:
        raise ParamError(f"Cannot read schema file {path} ({exc.strerror or exc}).") from None
    if len(data) > MAX_SCHEMA_FILE_BYTES:
        raise ParamError(f"Schema file {path} is larger than 1 MB; a JSON Schema is much smaller.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParamError(f"Schema file {path} is not UTF-8 text; save it as UTF-8 JSON.") from None
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in path.stem)[:64] or "answer"
    fmt = parse_schema_text(text, f"Schema file {path}")
    return fmt.model_copy(update={"name": name})


def parse_format_option(value: str | None) -> ResponseFormat | None:
    """`--response-format text|json|FILE.json`: None for text, else the format."""
    if value is None or value.strip().lower() == "text":
        return None
    if value.strip().lower() == "json":
        return ResponseFormat.any_json()
    return load_schema_file(Path(value))


@dataclass(frozen=True)
class FormatCheck:
    """Whether an answer has the asked shape, and why not (one line)."""

    valid: bool
    reason: str
    data: Any = None  # the parsed JSON, when the answer parses
    parsed: bool = False

    @property
    def pretty(self) -> str | None:
        """The parsed JSON, indented, for display; None when the answer is not JSON."""
        if not self.parsed:
            return None
        return json.dumps(self.data, indent=2, ensure_ascii=False)

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON shape of the mark."""
        return {"valid": self.valid, "reason": self.reason}


def check_answer(text: str, fmt: ResponseFormat | None) -> FormatCheck | None:
    """Mark an answer valid or invalid against its format; None for text answers."""
    if fmt is None or not fmt.structured:
        return None
    body = text.strip()
    if not body:
        return FormatCheck(False, "The answer is empty, not JSON.")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(body) or _unclosed(body):
            return FormatCheck(
                False, "The JSON is cut off before it ends; raise max_tokens and run again."
            )
        return FormatCheck(
            False, f"Not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        )
    if fmt.type == "json":
        return FormatCheck(True, "Valid JSON.", data, parsed=True)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for

    schema = fmt.json_schema or {}
    validator = validator_for(schema, default=Draft202012Validator)(schema)
    error = best_match(validator.iter_errors(data))
    if error is None:
        return FormatCheck(True, f"Valid JSON matching schema '{fmt.name}'.", data, parsed=True)
    return FormatCheck(
        False,
        f"Does not match schema '{fmt.name}' at {error.json_path}: {_short(error.message)}.",
        data,
        parsed=True,
    )


def openai_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    """The `response_format` of OpenAI's chat completions API (json_object / json_schema)."""
    if fmt.type == "json":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": fmt.json_schema}}


def llama_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    """llama-cpp-python's `response_format`: json_object, with the schema it turns into a grammar.

    llama_cpp's create_chat_completion (and its server) build a GBNF grammar from
    `{"type": "json_object", "schema": ...}`; they do not know OpenAI's `json_schema` type.
    """
    if fmt.type == "json":
        return {"type": "json_object"}
    return {"type": "json_object", "schema": fmt.json_schema}


def _unclosed(text: str) -> bool:
    """True when text ends inside a string or with brackets open: an answer cut off."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return in_string or depth > 0


def _short(message: str) -> str:
    flat = " ".join(message.split())
    return flat if len(flat) <= _REASON_CHARS else flat[: _REASON_CHARS - 1] + "…"
