"""Flow spec v1: the loader accepts good specs and names the field of every bad one."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.errors import SpecError
from playground.flows.loader import dump_spec, load_spec, parse_spec
from playground.flows.spec import SCHEMA_PATH, json_schema, schema_text
from tests.flow_samples import GOOD


def test_good_spec_loads_with_every_field() -> None:
    spec = parse_spec(GOOD)
    assert spec.name == "gear-support"
    assert spec.model.params.temperature == 0.0
    assert spec.inputs["question"].default == "Is the trail tent waterproof?"
    assert [m.role for m in spec.prompt.messages] == ["system", "user"]


def test_spec_round_trips_through_yaml() -> None:
    spec = parse_spec(GOOD)
    assert parse_spec(dump_spec(spec)) == spec


def test_design_example_loads() -> None:
    text = GOOD.replace(
        "name: gear-support\n",
        'name: gear-support\nversion: 3\nparent: 2\ncreated_at: "2026-11-24T10:00:00Z"\n',
    ).replace("{{ question }}", "{{ question }}\\n\\nContext:\\n{{ context }}") + (
        "  endpoint: {base_url: 'http://127.0.0.1:8000/v1', api_key_env: MYSERVER_API_KEY}\n"
        "retrieval:\n  store: gear-manuals\n  embedding_model: all-MiniLM-L6-v2\n  top_k: 4\n"
        "  query: '{{ question }}'\n  context_variable: context\n"
        "evidence:\n  ratings: {count: 12, mean: 4.4}\n  runs: [abc, def]\n"
    )
    spec = parse_spec(text)
    assert spec.version == 3 and spec.parent == 2
    assert spec.model.endpoint is not None
    assert spec.model.endpoint.api_key_env == "MYSERVER_API_KEY"
    assert spec.retrieval is not None and spec.retrieval.store == "gear-manuals"
    assert spec.evidence is not None and spec.evidence.ratings is not None
    assert spec.evidence.ratings.mean == 4.4


def test_extension_keys_are_kept_and_unknown_keys_refused() -> None:
    spec = parse_spec(GOOD + "x-team: search\n")
    assert spec.extensions() == {"x-team": "search"}
    assert "x-team: search" in dump_spec(spec)
    with pytest.raises(SpecError, match="Unknown field 'team'"):
        parse_spec(GOOD + "team: search\n")


def test_published_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "schema.json is stale; run `python -m playground.flows.write_schema`"
    )


def test_published_schema_accepts_good_and_refuses_bad_specs() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    good = yaml.safe_load(GOOD)
    jsonschema.validate(good, schema)
    for bad in (
        {**good, "name": "../etc"},
        {**good, "typo": 1},
        {**good, "schema": "playground.flow/v2"},
        {k: v for k, v in good.items() if k != "model"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    assert json_schema()["properties"]["name"]["pattern"] == "^[a-z0-9][a-z0-9-]{1,62}$"


def _swap(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


BAD_SPECS = [
    ("yaml syntax", "schema: [playground", "YAML syntax error on line 1: expected ',' or ']'"),
    ("not a mapping", "- a\n- b\n", "A flow spec must be a YAML mapping, but this is a list"),
    ("empty", "", "A flow spec must be a YAML mapping, but this is empty"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00", "The flow spec is binary, not YAML text"),
    ("not utf-8", b"name: \xff\xfe", "The flow spec is not UTF-8 text"),
    ("unknown schema", _swap("flow/v1", "flow/v9"), "Unknown schema 'playground.flow/v9'"),
    ("no schema", GOOD.split("\n", 1)[1], "Field 'schema' is missing"),
    ("no model", GOOD.split("model:")[0], "Field 'model' is missing"),
    (
        "no prompt",
        _swap("prompt:\n  messages:\n", "other:\n  messages:\n"),
        "Unknown field 'other'",
    ),
    (
        "bad role",
        _swap("role: system", "role: robot"),
        "Field 'prompt.messages[0].role' is 'robot'",
    ),
    (
        "param type",
        _swap("temperature: 0.0", "temperature: hot"),
        "Field 'model.params.temperature' is 'hot': input should be a valid number",
    ),
    (
        "param range",
        _swap("temperature: 0.0", "temperature: 2.5"),
        "Field 'model.params.temperature' is 2.5: input should be less than or equal to 2",
    ),
    (
        "param as text",
        _swap("max_tokens: 24", "max_tokens: '24'"),
        "Field 'model.params.max_tokens' is '24': input should be a valid integer",
    ),
    ("unknown param", _swap("seed: 7", "sead: 7"), "Unknown parameter 'model.params.sead'"),
    (
        "negative version",
        _swap("name: gear-support\n", "name: gear-support\nversion: -1\n"),
        "Field 'version' is -1: input should be greater than or equal to 1",
    ),
    (
        "fractional version",
        _swap("name: gear-support\n", "name: gear-support\nversion: 2.5\n"),
        "Field 'version' is 2.5: input should be a valid integer",
    ),
    (
        "version as text",
        _swap("name: gear-support\n", "name: gear-support\nversion: '3'\n"),
        "Field 'version' is '3': input should be a valid integer",
    ),
    ("path in name", _swap("name: gear-support", "name: ../../etc"), "Field 'name' is '../../etc'"),
    ("upper-case name", _swap("name: gear-support", "name: Gear"), "Field 'name' is 'Gear'"),
    (
        "newline in name",
        _swap("name: gear-support", 'name: "gear\\n"'),
        "Field 'name' is 'gear\\n'",
    ),
    (
        "jinja syntax",
        _swap('"{{ question }}"', '"{{ question "'),
        "Field 'prompt.messages[1].content' has a Jinja2 template syntax error on line 1",
    ),
    (
        "undeclared variable",
        _swap('"{{ question }}"', '"{{ question }} {{ tone }}"'),
        "Field 'prompt.messages[1].content' uses variable 'tone', which is not declared",
    ),
    (
        "key in endpoint",
        GOOD + "  endpoint: {base_url: 'http://x/v1', api_key: sk-live-123}\n",
        "Field 'model.endpoint' must not hold a secret ('api_key')",
    ),
    (
        "key as env name",
        GOOD + "  endpoint: {base_url: 'http://x/v1', api_key_env: sk-live-123}\n",
        "Field 'model.endpoint.api_key_env' is 'sk-live-123'",
    ),
    ("aliases", "a: &x [1]\nb: *x\n", "YAML syntax error on line 2: aliases (*name) are not"),
    (
        "default of wrong type",
        _swap('default: "Is the trail tent waterproof?"', "default: 3"),
        "Field 'inputs.question' has default 3, which is not of type string",
    ),
    # issue 11: duplicate keys (18), impossible dates (15), non-finite numbers (13)
    (
        "duplicate top-level key",
        GOOD + "name: other-flow\n",
        "Key 'name' appears twice (lines 2 and 13); YAML would silently keep only the last",
    ),
    (
        "duplicate nested key",
        _swap("seed: 7}", "seed: 7, seed: 8}"),
        "Key 'seed' appears twice (lines 12 and 12)",
    ),
    (
        "impossible date",
        _swap("name: gear-support\n", "name: gear-support\ncreated_at: 2024-13-45\n"),
        "Field 'created_at' is '2024-13-45', not an ISO 8601 time",
    ),
    (
        "infinite default",
        _swap("inputs:\n", "inputs:\n  n: {type: number, default: .inf}\n"),
        "Field 'inputs.n.default' is inf: a flow spec holds only finite numbers",
    ),
    (
        "nan in an extension",
        GOOD + "x-scores: [1, .nan]\n",
        "Field 'x-scores[1]' is nan: a flow spec holds only finite numbers",
    ),
    (
        "nan temperature",
        _swap("temperature: 0.0", "temperature: .nan"),
        "Field 'model.params.temperature' is nan: a flow spec holds only finite numbers",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected_error"),
    [case[1:] for case in BAD_SPECS],
    ids=[case[0] for case in BAD_SPECS],
)
def test_bad_spec_is_one_line_naming_the_field(text: str | bytes, expected_error: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    message = str(caught.value)
    assert message.startswith(expected_error), message
    assert "\n" not in message


def test_a_date_without_time_is_kept_as_midnight_utc() -> None:
    spec = parse_spec(_swap("name: gear-support\n", "name: gear-support\ncreated_at: 2024-01-02\n"))
    assert spec.created_at == "2024-01-02T00:00:00Z"


def test_missing_file_is_a_spec_error(tmp_path: object) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec("no/such/flow.yaml")


# --- fuzzing: nothing but SpecError may leave the loader -------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
_good = yaml.safe_load(GOOD)
_fields = st.sampled_from(
    ["schema", "name", "version", "parent", "inputs", "prompt", "model", "retrieval", "evidence",
     "created_at", "description"]
)  # fmt: skip


def _check(data: str | bytes) -> None:
    try:
        load_spec(data)
    except SpecError as exc:
        message = str(exc)
        assert "\n" not in message
        assert not message.startswith("Unexpected"), message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_fuzz_text_raises_only_spec_error(text: str) -> None:
    _check(text if "\n" in text or not text else text + "\n")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes_raise_only_spec_error(data: bytes) -> None:
    _check(data)


def test_odd_keys_under_inf_or_nul_are_named_on_one_line() -> None:
    # hypothesis found {"\n": inf} under a field: the message carried the raw newline
    for value in ({"\n": math.inf}, {"two words\n": "a\x00b"}):
        with pytest.raises(SpecError) as caught:
            load_spec(yaml.safe_dump({**_good, "name": value}))
        assert "\n" not in str(caught.value)
        assert "name[" in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(_fields, _json)
def test_fuzz_fields_raise_only_spec_error(field: str, value: object) -> None:
    _check(yaml.safe_dump({**_good, field: value}))


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(["temperature", "top_p", "max_tokens", "seed", "stop", "x"]), _json)
def test_fuzz_params_raise_only_spec_error(param: str, value: object) -> None:
    data = {**_good, "model": {"id": _good["model"]["id"], "params": {param: value}}}
    _check(yaml.safe_dump(data))
