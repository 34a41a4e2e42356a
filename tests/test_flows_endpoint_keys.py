"""A spec's api_key_env goes only to an endpoint this machine declared (issue 11, item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.cli import main
from playground.config import load_settings
from playground.errors import SpecError
from playground.flows.endpoints import same_endpoint
from playground.flows.loader import parse_spec
from playground.flows.run import Flow
from tests.flow_samples import GOOD, RecordingServer, write_spec

SECRET = "aws-secret-Zq8vX1-do-not-send"


@pytest.fixture(scope="module")
def stub() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


def _spec_text(url: str, variable: str = "AWS_SECRET_ACCESS_KEY") -> str:
    return GOOD.replace("local/smollm2-135m-instruct", "remote/stub") + (
        f"  endpoint: {{base_url: '{url}', api_key_env: {variable}}}\n"
    )


def test_an_undeclared_endpoint_never_receives_the_key(
    home: Path, stub: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    before = len(stub.requests)
    flow = Flow(parse_spec(_spec_text(stub.url())), load_settings())
    with pytest.raises(SpecError) as caught:
        flow.run()
    message = str(caught.value)
    assert "$AWS_SECRET_ACCESS_KEY" in message and stub.url() in message
    assert "[endpoints.NAME]" in message and "\n" not in message
    assert len(stub.requests) == before  # refused before anything was sent
    # `flow validate` says the same sentence.
    path = write_spec(Path.cwd(), _spec_text(stub.url()))
    result = CliRunner().invoke(main, ["flow", "validate", str(path)])
    assert result.exit_code == 1 and message in result.output


def test_a_declared_endpoint_gets_its_own_key(
    home: Path, stub: RecordingServer, write_config: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("STUB_KEY", "stub-key")
    write_config(  # type: ignore[operator]
        f'[endpoints.stubby]\nbase_url = "{stub.url()}/"\napi_key_env = "STUB_KEY"\n'
    )
    before = len(stub.requests)
    result = Flow(parse_spec(_spec_text(stub.url())), load_settings()).run()
    assert result.error is None, result.error
    (request,) = stub.requests[before:]
    assert request["authorization"] == "Bearer stub-key"


def test_credentials_inside_a_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec_text("http://admin:hunter2@127.0.0.1:9/v1"))
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("Field 'model.endpoint.base_url' holds a user name")


_url_parts = st.tuples(
    st.sampled_from(["http", "https"]),
    st.sampled_from(["127.0.0.1", "localhost", "LOCALHOST", "127.0.0.2"]),
    st.sampled_from(["", ":80", ":443", ":8000", ":8001"]),
    st.sampled_from(["/v1", "/v1/", "/v2", "", "/V1"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(declared=_url_parts, asked=_url_parts)
def test_a_key_goes_only_where_scheme_host_port_and_path_match(
    declared: tuple[str, str, str, str], asked: tuple[str, str, str, str], home: Path
) -> None:
    declared_url, asked_url = "{}://{}{}{}".format(*declared), "{}://{}{}{}".format(*asked)
    config = Path.cwd() / "playground.toml"
    config.write_text(f'[endpoints.d]\nbase_url = "{declared_url}"\napi_key_env = "D_KEY"\n')
    flow = Flow(parse_spec(_spec_text(asked_url)), load_settings(config))
    norm = [(p[0].lower(), p[1].lower(), p[2] or {"http": ":80", "https": ":443"}[p[0].lower()],
             p[3].rstrip("/")) for p in (declared, asked)]  # fmt: skip
    assert same_endpoint(declared_url, asked_url) == (norm[0] == norm[1])
    if norm[0] == norm[1]:
        flow.check()
    else:
        with pytest.raises(SpecError, match=r"\$AWS_SECRET_ACCESS_KEY"):
            flow.check()
