"""The evaluation block (flow spec key `evaluation:`, or a standalone eval file) as pydantic models.

Every scorer is discriminated by `type`; values such as `value`, `reference` and `rubric` are
Jinja2 templates over the dataset row and the answer. Everything is checked when the block is
read (unknown scorer type, bad regex, bad JSON Schema, unparsable template, custom scorer that
cannot be imported), so a bad block sends nothing to any model.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from playground.errors import SpecError, TemplateError
from playground.files import read_bounded
from playground.prompts import check_syntax

MAX_EVAL_FILE_BYTES = 1_000_000  # an eval file is a few KB; /dev/zero must not fill memory

EVAL_SCHEMA_ID = "playground.eval/v1"
DEFAULT_JUDGE = "local/smollm2-135m-instruct"


def _template(value: str) -> str:
    try:
        check_syntax(value)
    except TemplateError as exc:
        raise PydanticCustomError(
            "template_syntax", "{detail}", {"detail": str(exc).split(";")[0]}
        ) from None
    return value


class _ScorerBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=80, description="Label in results (default: type).")

    @property
    def label(self) -> str:
        """The name results show for this scorer."""
        return self.name or str(getattr(self, "type", "scorer"))


class EqualsScorer(_ScorerBase):
    """The answer (stripped) equals the value."""

    type: Literal["equals"]
    value: str = Field(description="Template of the expected answer.")
    case_sensitive: bool = Field(False, description="Compare letter case too.")

    @field_validator("value")
    @classmethod
    def _check(cls, value: str) -> str:
        return _template(value)


class ContainsScorer(_ScorerBase):
    """The answer contains any (or all) of the values."""

    type: Literal["contains"]
    value: str | list[str] = Field(description="Template, or list of templates, to look for.")
    mode: Literal["any", "all"] = Field("any", description="Pass on any value or need all.")
    case_sensitive: bool = Field(False, description="Match letter case too.")

    @field_validator("value")
    @classmethod
    def _templates(cls, value: str | list[str]) -> str | list[str]:
        for item in [value] if isinstance(value, str) else value:
            _template(item)
        if isinstance(value, list) and not value:
            raise PydanticCustomError("empty_list", "needs at least one value", {})
        return value


class StartsWithScorer(_ScorerBase):
    """The answer (stripped) starts with the value."""

    type: Literal["starts_with"]
    value: str = Field(description="Template of the expected start.")
    case_sensitive: bool = Field(False, description="Match letter case too.")

    @field_validator("value")
    @classmethod
    def _check(cls, value: str) -> str:
        return _template(value)


class RegexScorer(_ScorerBase):
    """The answer matches a regular expression (Python `re.search`)."""

    type: Literal["regex"]
    pattern: str = Field(description="Python regular expression.")
    ignore_case: bool = Field(False, description="Match without regard to letter case.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise PydanticCustomError(
                "bad_regex", "is not a valid regular expression ({detail})", {"detail": str(exc)}
            ) from None
        return value


class IsJsonScorer(_ScorerBase):
    """The answer is JSON (optionally valid against a JSON Schema)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["is_json"]
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="Optional JSON Schema the answer must satisfy."
    )

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise PydanticCustomError(
                    "bad_schema", "is not a valid JSON Schema ({detail})", {"detail": exc.message}
                ) from None
        return value


class NumberScorer(_ScorerBase):
    """The first number in the answer is within tolerance of the expected value."""

    type: Literal["number"]
    value: str | float = Field(description="Expected number, or a template that renders one.")
    tolerance: float = Field(0.0, ge=0, description="Allowed absolute difference.")

    @field_validator("value")
    @classmethod
    def _check(cls, value: str | float) -> str | float:
        return _template(value) if isinstance(value, str) else value


class SimilarityScorer(_ScorerBase):
    """Cosine similarity of answer and reference (the bundled MiniLM) reaches the threshold."""

    type: Literal["similarity"]
    reference: str = Field(description="Template of the reference answer.")
    threshold: float = Field(0.75, ge=0, le=1, description="Minimum cosine similarity.")

    @field_validator("reference")
    @classmethod
    def _check(cls, value: str) -> str:
        return _template(value)


class LatencyScorer(_ScorerBase):
    """The answer took at most max_ms in total."""

    type: Literal["latency"]
    max_ms: float = Field(gt=0, description="Maximum total latency in milliseconds.")


class CostScorer(_ScorerBase):
    """The call cost at most max_usd."""

    type: Literal["cost"]
    max_usd: float = Field(ge=0, description="Maximum cost of the call in USD.")


class GroundednessScorer(_ScorerBase):
    """The run's groundedness score (RAG runs only) reaches the threshold."""

    type: Literal["groundedness"]
    threshold: float = Field(0.5, ge=0, le=1, description="Minimum groundedness.")


class JudgeScorer(_ScorerBase):
    """An LLM grades the answer against a rubric with a JSON verdict; garbage is unmeasured."""

    type: Literal["judge"]
    rubric: str = Field(description="Template of what a good answer does.")
    model: str = Field(DEFAULT_JUDGE, description="Judge model id (any configured model).")
    threshold: float = Field(0.5, ge=0, le=1, description="Minimum score in [0, 1] to pass.")
    max_tokens: int = Field(96, ge=8, le=2048, description="Tokens the judge may answer with.")

    @field_validator("rubric")
    @classmethod
    def _check(cls, value: str) -> str:
        return _template(value)


class FaithfulnessScorer(_ScorerBase):
    """The judge checks each statement of the answer against the retrieved chunks."""

    type: Literal["faithfulness"]
    model: str = Field(DEFAULT_JUDGE, description="Judge model id (any configured model).")
    threshold: float = Field(
        0.8, gt=0, le=1, description="Minimum share of supported statements (never 0)."
    )
    max_statements: int = Field(8, ge=1, le=50, description="Statements checked per answer.")
    max_tokens: int = Field(64, ge=8, le=2048, description="Tokens per judge reply.")


class ModerationScorer(_ScorerBase):
    """The answer is not flagged by the [moderation] endpoint (unmeasured where none is set)."""

    type: Literal["moderation"]


class CustomScorer(_ScorerBase):
    """A Python callable `module:function(answer, row, result)` returning bool, float or dict."""

    type: Literal["custom"]
    function: str = Field(pattern=r"^[\w.]+:\w+$", description="`module:function` to call.")
    threshold: float = Field(0.5, ge=0, le=1, description="Pass mark when it returns a number.")

    @field_validator("function")
    @classmethod
    def _importable(cls, value: str) -> str:
        load_callable(value)
        return value


Scorer = Annotated[
    EqualsScorer
    | ContainsScorer
    | StartsWithScorer
    | RegexScorer
    | IsJsonScorer
    | NumberScorer
    | SimilarityScorer
    | LatencyScorer
    | CostScorer
    | GroundednessScorer
    | JudgeScorer
    | FaithfulnessScorer
    | ModerationScorer
    | CustomScorer,
    Field(discriminator="type"),
]
SCORER_TYPES = [
    "equals",
    "contains",
    "starts_with",
    "regex",
    "is_json",
    "number",
    "similarity",
    "latency",
    "cost",
    "groundedness",
    "judge",
    "faithfulness",
    "moderation",
    "custom",
]


def load_callable(ref: str) -> Any:
    """Import `module:function`; PydanticCustomError naming what is missing."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PydanticCustomError(
            "custom_import",
            "cannot import module '{module}' ({detail})",
            {"module": module_name, "detail": str(exc)},
        ) from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise PydanticCustomError(
            "custom_missing",
            "module '{module}' has no function '{attr}'",
            {"module": module_name, "attr": attr},
        )
    return function


class Gate(BaseModel):
    """When a configuration passes: its pass rate, and how unmeasured and errored cells count."""

    model_config = ConfigDict(extra="forbid")

    pass_rate: float = Field(1.0, ge=0, le=1, description="Minimum share of rows that pass.")
    unmeasured: Literal["fail", "ignore"] = Field(
        "fail", description="fail: unmeasured rows count against the gate; ignore: left out."
    )
    errors: Literal["fail", "ignore"] = Field(
        "fail", description="fail: rows whose model call failed count against the gate."
    )


class EvaluationSpec(BaseModel):
    """The `evaluation:` block: dataset, column mapping, scorers, gate."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, description="A CSV/JSONL path, or NAME / NAME@VERSION.")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Dataset column -> flow input (default: same names)."
    )
    scorers: list[Scorer] = Field(min_length=1, description="Every scorer must pass for a row.")
    gate: Gate = Field(default_factory=Gate, description="Pass mark per configuration.")
    repeat: int = Field(1, ge=1, le=100, description="Run every row this many times.")


class EvalFile(BaseModel):
    """A standalone eval file: which flows (and models) to evaluate, and the evaluation block."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_id: Literal["playground.eval/v1"] = Field(alias="schema")
    name: str = Field("eval", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Batch name.")
    flows: list[str] = Field(
        min_length=1, description="Flow spec paths (relative to this file) or name@label refs."
    )
    models: list[str] = Field(
        default_factory=list, description="Model ids to run each flow on (default: its own)."
    )
    evaluation: EvaluationSpec


def _where(loc: tuple[Any, ...]) -> str:
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in SCORER_TYPES:
            continue  # the discriminator tag pydantic adds to the location
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def explain_error(exc: ValidationError, source: str, prefix: str = "") -> str:
    """One sentence for the first problem of an evaluation block."""
    err = exc.errors()[0]
    where = prefix + _where(tuple(err["loc"]))
    if err["type"] == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag", "?")
        return (
            f"Scorer '{where}' in {source} has unknown type '{tag}'; use one of "
            f"{', '.join(SCORER_TYPES)}."
        )
    if err["type"] == "union_tag_not_found":
        return (
            f"Scorer '{where}' in {source} has no type; add type: one of {', '.join(SCORER_TYPES)}."
        )
    if err["type"] == "extra_forbidden":
        return f"Field '{where}' in {source} is not a known key; check its spelling."
    if err["type"] == "missing":
        return f"Field '{where}' in {source} is required; add it."
    return f"Field '{where}' in {source} {err['msg'].rstrip('.')}; fix it and run again."


def parse_evaluation(data: Any, source: str) -> EvaluationSpec:
    """Validate an `evaluation:` mapping; SpecError naming the field on any problem."""
    try:
        return EvaluationSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(explain_error(exc, source, "evaluation.")) from None


def read_eval_file(path: Path) -> EvalFile:
    """Read a standalone eval file (YAML); SpecError naming the field on any problem."""
    import yaml

    try:
        raw = read_bounded(path, MAX_EVAL_FILE_BYTES)
        if len(raw) > MAX_EVAL_FILE_BYTES:
            raise SpecError(f"Eval file {path} is larger than 1 MB; it cannot be an eval file.")
        data = yaml.safe_load(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise SpecError(f"Cannot read eval file {path} ({type(exc).__name__}); fix it.") from None
    try:
        return EvalFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(explain_error(exc, str(path))) from None


def is_eval_file(path: Path) -> bool:
    """True when a YAML file declares `schema: playground.eval/v1`."""
    try:
        head = read_bounded(path, 2000).decode("utf-8", errors="replace")[:2000]
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^schema:\s*['\"]?playground\.eval/v1", head, re.MULTILINE) is not None
