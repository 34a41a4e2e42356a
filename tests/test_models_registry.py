"""The registry: model ids to ChatModels, and the list of models with their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from playground.config import EndpointConfig, load_settings
from playground.errors import MissingKeyError, UnknownModelError
from playground.models.base import Message, ModelParams
from playground.models.local import LocalModel, embedded_gguf_path
from playground.models.openai_compat import OpenAICompatModel
from playground.models.registry import (
    ModelInfo,
    discover_endpoint,
    get_model,
    list_models,
    model_for_endpoint_url,
    split_model_id,
)
from playground.runner import complete
from tests.support import FAULT_MODEL, FaultServer, free_port

SERVED = "smollm2-135m-instruct"


def by_id(infos: list[ModelInfo]) -> dict[str, ModelInfo]:
    return {info.id: info for info in infos}


def test_with_no_config_the_embedded_model_is_ready_and_openai_needs_a_key(home: Path) -> None:
    infos = by_id(list_models(load_settings()))

    local = infos["local/smollm2-135m-instruct"]
    assert (local.ready, local.status, local.detail) == (True, "ready", str(embedded_gguf_path()))
    gpt = infos["openai/gpt-4o-mini"]
    assert (gpt.ready, gpt.status, gpt.detail) == (False, "needs key", "set OPENAI_API_KEY")
    assert not any(info.provider == "azure" for info in infos.values())


def test_an_endpoints_models_are_discovered_with_get_models(
    write_config: Any, llama_server: str
) -> None:
    write_config(f'[endpoints.llamadisc]\nbase_url = "{llama_server}"\n')

    infos = by_id(list_models(load_settings()))

    served = infos[f"llamadisc/{SERVED}"]
    assert (served.provider, served.ready, served.status) == ("llamadisc", True, "ready")


def test_configured_models_replace_the_discovered_list(
    write_config: Any, fault_server: FaultServer
) -> None:
    write_config(
        f'[endpoints.listed]\nbase_url = "{fault_server.url("ok")}"\nmodels = ["alpha", "beta"]\n'
    )

    ids = [i.id for i in list_models(load_settings()) if i.provider == "listed"]

    assert ids == ["listed/alpha", "listed/beta"]


def test_a_config_change_shows_at_once_despite_the_discovery_cache(
    write_config: Any, fault_server: FaultServer
) -> None:
    url = fault_server.url("ok")
    write_config(f'[endpoints.edited]\nbase_url = "{url}"\n')
    assert [i.id for i in list_models(load_settings()) if i.provider == "edited"] == [
        f"edited/{FAULT_MODEL}"
    ]

    write_config(f'[endpoints.edited]\nbase_url = "{url}"\nmodels = ["added"]\n')

    assert [i.id for i in list_models(load_settings()) if i.provider == "edited"] == [
        "edited/added"
    ]


def test_an_unreachable_endpoint_is_listed_as_unreachable_and_never_raises(
    write_config: Any,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    write_config(f'[endpoints.gone]\nbase_url = "{url}"\nmodels = ["m"]\n')

    infos = by_id(list_models(load_settings()))

    gone = infos["gone/m"]
    assert (gone.ready, gone.status) == (False, "unreachable")
    assert gone.detail.startswith("cannot connect (")


def test_discovery_of_an_unreachable_endpoint_reports_why() -> None:
    endpoint = EndpointConfig(base_url=f"http://127.0.0.1:{free_port()}/v1")

    status = discover_endpoint("nowhere", endpoint, refresh=True)

    assert status.reachable is False
    assert status.models == []
    assert "cannot connect" in status.detail


def test_an_endpoint_refusing_discovery_still_offers_its_configured_models(
    llama_server: str,
) -> None:
    endpoint = EndpointConfig(base_url=llama_server + "/no-such-path", models=["m"])

    status = discover_endpoint("refusing", endpoint, refresh=True)

    assert status.reachable is True
    assert status.models == ["m"]
    assert status.detail == "answered 404 to GET /models"


@pytest.mark.parametrize(
    ("model_id", "expected_error"),
    [
        (
            "nope/model",
            "Unknown model 'nope/model'; no provider 'nope': use local/, openai/, azure/ or an "
            "[endpoints.nope] table in playground.toml.",
        ),
        (
            "no-slash",
            "Unknown model 'no-slash'; model ids look like `<provider>/<model>`, "
            "e.g. local/smollm2-135m-instruct.",
        ),
        (
            "/model",
            "Unknown model '/model'; model ids look like `<provider>/<model>`, "
            "e.g. local/smollm2-135m-instruct.",
        ),
        (
            "local/",
            "Unknown model 'local/'; model ids look like `<provider>/<model>`, "
            "e.g. local/smollm2-135m-instruct.",
        ),
        (
            "local/other",
            "Unknown model 'local/other'; declare it in playground.toml as "
            '[local.other] path = "...gguf".',
        ),
    ],
)
def test_unknown_or_malformed_ids_name_the_id(
    home: Path, model_id: str, expected_error: str
) -> None:
    with pytest.raises(UnknownModelError) as caught:
        get_model(model_id, load_settings())

    assert str(caught.value) == expected_error
    assert caught.value.model_id == model_id


def test_the_model_part_of_an_id_may_contain_slashes() -> None:
    assert split_model_id("srv/org/model:q4") == ("srv", "org/model:q4")


@pytest.mark.parametrize(
    ("model_id", "expected_error"),
    [
        (
            "openai/gpt-4o-mini",
            "openai/gpt-4o-mini needs an OpenAI key; set OPENAI_API_KEY in the environment "
            "or in .streamlit/secrets.toml.",
        ),
        (
            "azure/my-deployment",
            "azure/my-deployment needs Azure OpenAI; set AZURE_OPENAI_API_KEY, "
            "AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION.",
        ),
    ],
)
def test_hosted_providers_without_keys_name_the_variables(
    home: Path, model_id: str, expected_error: str
) -> None:
    with pytest.raises(MissingKeyError) as caught:
        get_model(model_id, load_settings())

    assert str(caught.value) == expected_error


def test_an_endpoint_whose_key_variable_is_unset_names_it(write_config: Any) -> None:
    write_config('[endpoints.team]\nbase_url = "http://127.0.0.1:1/v1"\napi_key_env = "TEAM_KEY"\n')

    with pytest.raises(MissingKeyError) as caught:
        get_model("team/m", load_settings())

    assert str(caught.value) == "team/m needs the key in $TEAM_KEY; set that environment variable."


def test_an_openai_key_makes_openai_models_ready(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    settings = load_settings()

    infos = by_id(list_models(settings))
    model = get_model("openai/gpt-4o-mini", settings)

    assert (infos["openai/gpt-4o-mini"].ready, infos["openai/gpt-4o-mini"].status) == (
        True,
        "ready",
    )
    assert isinstance(model, OpenAICompatModel)
    assert model.api_model == "gpt-4o-mini"
    assert model.spec.api_key == "sk-test-not-a-real-key"
    assert model.spec.api_key_env == "OPENAI_API_KEY"


def test_azure_deployments_are_listed_and_ready_with_all_three_variables(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENTS", "chat-a, chat-b")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-test")
    before = by_id(list_models(load_settings()))
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example.invalid")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    after = by_id(list_models(load_settings()))

    assert [before[f"azure/{d}"].status for d in ("chat-a", "chat-b")] == ["needs key"] * 2
    assert [after[f"azure/{d}"].status for d in ("chat-a", "chat-b")] == ["ready"] * 2
    assert isinstance(get_model("azure/chat-a", load_settings()), OpenAICompatModel)


def test_a_declared_gguf_runs_as_local_name(write_config: Any) -> None:
    write_config(f'[local.mine]\npath = "{embedded_gguf_path()}"\n')
    settings = load_settings()

    infos = by_id(list_models(settings))
    result = complete(
        "local/mine",
        [Message(role="user", content="Say hi.")],
        ModelParams(temperature=0.0, seed=1, max_tokens=8),
        settings,
    )

    assert (infos["local/mine"].ready, infos["local/mine"].status) == (True, "ready")
    assert isinstance(get_model("local/mine", settings), LocalModel)
    assert result.error is None
    assert result.text.strip()
    assert not result.usage.estimated


def test_a_declared_gguf_path_is_relative_to_the_config_file(write_config: Any) -> None:
    models = Path.cwd() / "models"
    models.mkdir()
    (models / "x.gguf").write_bytes(b"GGUF")
    write_config('[local.rel]\npath = "models/x.gguf"\n')

    infos = by_id(list_models(load_settings()))

    assert infos["local/rel"].status == "ready"
    assert infos["local/rel"].detail == str(models / "x.gguf")


def test_a_declared_gguf_that_is_missing_is_listed_as_missing_file(write_config: Any) -> None:
    write_config('[local.gone]\npath = "/nowhere/gone.gguf"\n')

    infos = by_id(list_models(load_settings()))

    gone = infos["local/gone"]
    assert (gone.ready, gone.status, gone.detail) == (False, "missing file", "/nowhere/gone.gguf")


def test_a_model_given_by_url_reaches_that_endpoint(fault_server: FaultServer) -> None:
    model = model_for_endpoint_url("srv/fault-model", fault_server.url("ok"), None, 5.0, 0)

    items = list(model.stream([Message(role="user", content="hi")], ModelParams()))

    assert "".join(i for i in items if isinstance(i, str)) == "Hello from the test server."
