"""Reading and writing flow spec YAML: every problem becomes one SpecError naming the field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from playground.errors import SpecError
from playground.files import read_bounded
from playground.flows.spec import SCHEMA_ID, FlowSpec, sub_path
from playground.models.base import ModelParams

MAX_SPEC_BYTES = 1_000_000  # a spec is a few KB; anything this big is not a spec


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases, so a small file cannot expand into a huge one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a flow spec", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Refuse a key that appears twice in one mapping (YAML would keep only the last)."""
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKeyError(key_node.value, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """An impossible date (2024-13-45) stays text, so validation names the field."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_NoAliasLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _NoAliasLoader.construct_yaml_timestamp
)


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping key given twice; carries the key and both lines."""

    def __init__(self, key: str, first: int, again: int) -> None:
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


class _SpecDumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks, keys in the order given."""


# YAML 1.1 line breaks besides \n and \r: unescaped, a reader folds them into spaces.
_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(mark in value for mark in _UNICODE_BREAKS):
        # only a double-quoted scalar escapes them (\N, \L, \P), so the text reads back as is
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    # Literal blocks keep templates readable; PyYAML cannot use them with trailing spaces.
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_SpecDumper.add_representer(str, _str_representer)


def dump_yaml(data: Any) -> str:
    """YAML text of plain data the way flow files are written."""
    return yaml.dump(
        data,
        Dumper=_SpecDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )


def dump_spec(spec: FlowSpec) -> str:
    """The YAML text of a spec (documented key order, no None values)."""
    return dump_yaml(spec.to_data())


def _where(source: str | None) -> str:
    return f" in {source}" if source else ""


def _loc(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        if part != "[key]":
            text = sub_path(text, part)
    return text


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# What a pattern-constrained field must look like, in words rather than a regex.
_PATTERN_HINTS = {
    "name": "must be 2-63 lowercase letters, digits or dashes, starting with a letter or digit",
    "id": "must look like <provider>/<model> (letters, digits and . _ - : / @ +), "
    "e.g. local/smollm2-135m-instruct",
    "store": "must be a knowledge store name: 3-63 lowercase letters, digits, _ or -",
    "base_url": "must start with http:// or https://",
    "api_key_env": "must be the name of an environment variable (letters, digits, _)",
    "context_variable": "must be a variable name (letters, digits, _)",
}
# pydantic adds the union member it tried to the location; people need only the field.
_UNION_TAGS = {"str", "int", "float", "bool", "none"}


def _shown(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def validation_message(exc: ValidationError, source: str | None = None) -> str:
    """One sentence naming the field of the first problem in a spec ValidationError."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
    kind = err["type"]
    ctx = err.get("ctx") or {}
    where = _where(source)
    message = re.sub(
        r"valid dictionary or instance of \w+", "mapping", _one_line(err["msg"]).rstrip(".")
    )
    if kind == "spec_unknown_key":
        field = _loc((*loc, ctx["key"]))
        return (
            f"Unknown field '{field}'{where}; remove it or fix its spelling "
            "(extension keys must start with x-)."
        )
    if kind == "extra_forbidden":
        field = _loc(loc)
        if len(loc) >= 2 and loc[-2] == "params":
            allowed = ", ".join(ModelParams.model_fields)
            return f"Unknown parameter '{field}'{where}; use one of {allowed}."
        return f"Unknown field '{field}'{where}; remove it or fix its spelling."
    field = str(ctx.get("field") or _loc(loc) or "spec")
    if kind == "missing":
        return f"Field '{field}' is missing{where}; add it (see the flow spec v1 schema)."
    if kind == "literal_error" and loc and loc[-1] == "role":
        return (
            f"Field '{field}'{where} is {_shown(err.get('input'))}: the role must be system, "
            "user or assistant; fix it."
        )
    if kind == "string_pattern_mismatch" and loc and loc[-1] in _PATTERN_HINTS:
        return (
            f"Field '{field}'{where} is {_shown(err.get('input'))}: it {_PATTERN_HINTS[loc[-1]]}"
            "; fix it."
        )
    if kind == "template_syntax":
        return f"Field '{field}'{where} has a Jinja2 {message[0].lower()}{message[1:]}; fix it."
    if kind in _CUSTOM_KINDS:
        fix = "." if ";" in message else "; fix it and validate again."
        return f"Field '{field}'{where} {message}{fix}"
    return (
        f"Field '{field}'{where} is {_shown(err.get('input'))}: "
        f"{message[0].lower()}{message[1:]}; fix it."
    )


_CUSTOM_KINDS = {
    "spec_key_type",
    "spec_secret",
    "undeclared_variable",
    "context_is_input",
    "no_user_message",
    "default_type",
    "parent_order",
    "input_name",
    "iso_time",
    "not_finite",
    "nul_character",
    "python_keyword",
    "url_credentials",
    "url_host",
    "schema_missing",  # model.response_format (playground.models.response_format)
    "schema_invalid",
    "schema_unused",
}


def spec_from_data(data: Any, source: str | None = None) -> FlowSpec:
    """Validate parsed YAML/JSON data as a flow spec; SpecError names the field on failure."""
    where = _where(source)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SpecError(
            f"A flow spec must be a YAML mapping{where}, but this is {kind}; "
            f"start from `schema: {SCHEMA_ID}`."
        )
    schema = data.get("schema")
    if "schema" not in data:
        raise SpecError(f"Field 'schema' is missing{where}; add `schema: {SCHEMA_ID}`.")
    if schema != SCHEMA_ID:
        raise SpecError(
            f"Unknown schema {_shown(schema)}{where}; this Prompt Playground reads {SCHEMA_ID}."
        )
    try:
        # strict: a version "3", a temperature "0.7" or a max_tokens true is a typing mistake
        return FlowSpec.model_validate(data, strict=True)
    except ValidationError as exc:
        raise SpecError(validation_message(exc, source)) from None
    except RecursionError:
        raise SpecError(f"The flow spec{where} is nested too deeply to be a spec.") from None


def parse_spec(text: str | bytes, source: str | None = None) -> FlowSpec:
    """Parse YAML text (or raw bytes) into a FlowSpec; every problem is one SpecError."""
    where = _where(source)
    if isinstance(text, bytes):
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"The flow spec{where} is larger than 1 MB; it cannot be a spec.")
        if b"\x00" in text:
            raise SpecError(f"The flow spec{where} is binary, not YAML text; pick the .yaml file.")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpecError(
                f"The flow spec{where} is not UTF-8 text; save it as UTF-8 YAML."
            ) from None
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"The flow spec{where} is larger than 1 MB; it cannot be a spec.")
    if "\x00" in text:
        raise SpecError(f"The flow spec{where} is binary, not YAML text; pick the .yaml file.")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)
    except _DuplicateKeyError as exc:
        raise SpecError(
            f"Key {_shown(exc.key)}{where} appears twice (lines {exc.first} and {exc.again}); "
            "YAML would silently keep only the last, so delete one of them."
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" on line {mark.line + 1}" if mark is not None else ""
        problem = _one_line(exc.problem or exc.context or "invalid YAML")
        raise SpecError(f"YAML syntax error{where}{line}: {problem}; fix the file.") from None
    except yaml.YAMLError as exc:
        detail = _one_line(str(exc))
        raise SpecError(f"The flow spec{where} is not valid YAML ({detail}).") from None
    except RecursionError:
        raise SpecError(f"The flow spec{where} is nested too deeply to be a spec.") from None
    return spec_from_data(data, source)


def read_spec_file(path: Path) -> FlowSpec:
    """Load a spec file; a missing or unreadable file is a SpecError too."""
    try:
        raw = read_bounded(path, MAX_SPEC_BYTES)  # parse_spec refuses what is over
    except FileNotFoundError:
        raise SpecError(f"Flow spec file {path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise SpecError(f"{path} is a directory; give the path of a flow .yaml file.") from None
    except OSError as exc:
        raise SpecError(f"Cannot read flow spec {path} ({exc.strerror}); check it.") from None
    return parse_spec(raw, str(path))


def looks_like_path(value: str) -> bool:
    """True when a string names a file rather than holding YAML text."""
    return "\n" not in value and (
        value.endswith((".yaml", ".yml", ".json")) or "/" in value or Path(value).is_file()
    )


def load_spec(path_or_text: str | bytes | Path) -> FlowSpec:
    """Load a spec from a path, YAML text or bytes; raises only SpecError."""
    try:
        if isinstance(path_or_text, Path):
            return read_spec_file(path_or_text)
        if isinstance(path_or_text, str) and looks_like_path(path_or_text):
            return read_spec_file(Path(path_or_text))
        return parse_spec(path_or_text)
    except SpecError:
        raise
    except Exception as exc:  # a bug, but the loader's contract is "only SpecError"
        raise SpecError(
            f"Unexpected problem reading the flow spec ({type(exc).__name__}: "
            f"{_one_line(str(exc))[:120]}); please report it."
        ) from exc
