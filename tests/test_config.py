"""Settings from playground.toml, the environment and st.secrets-style mappings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from playground.config import Price, load_settings
from playground.errors import ConfigError


def test_no_config_file_gives_working_defaults(home: Path) -> None:
    settings = load_settings()

    assert settings.config_path is None
    assert settings.endpoints == {}
    assert settings.runner.timeout == 60.0
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'playground.db'}"


def test_a_full_config_is_read(write_config: Any) -> None:
    path = write_config(
        '[endpoints.myserver]\nbase_url = "http://127.0.0.1:8000/v1/"\n'
        'api_key_env = "MYSERVER_API_KEY"\nmodels = ["llama3.2"]\ntimeout = 2\nmax_retries = 1\n'
        '[local.mine]\npath = "models/mine.gguf"\nn_ctx = 512\n'
        '[prices."openai/gpt-4o-mini"]\ninput = 0.15\noutput = 0.60\n'
        "[runner]\ntimeout = 30\nmax_retries = 4\n"
    )

    settings = load_settings()

    endpoint = settings.endpoints["myserver"]
    assert endpoint.base_url == "http://127.0.0.1:8000/v1"  # trailing slash dropped
    assert (endpoint.api_key_env, endpoint.models) == ("MYSERVER_API_KEY", ["llama3.2"])
    assert (endpoint.timeout, endpoint.max_retries) == (2.0, 1)
    assert settings.local["mine"].n_ctx == 512
    assert settings.price_for("openai/gpt-4o-mini") == Price(input=0.15, output=0.60)
    assert settings.price_for("local/smollm2-135m-instruct") == Price(input=0.0, output=0.0)
    assert (settings.runner.timeout, settings.runner.max_retries) == (30.0, 4)
    assert settings.config_path == path.resolve()


def test_invalid_toml_names_the_file(write_config: Any) -> None:
    path = write_config("[endpoints.x\nbase_url = 1\n")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert message.startswith(f"Config file {path} is not valid TOML (")
    assert message.endswith("); fix it.")


def test_a_config_file_that_is_not_utf8_names_the_file(home: Path) -> None:
    path = Path.cwd() / "playground.toml"
    path.write_bytes(b'[storage]\nhome = "\xff\xfe"\n')

    with pytest.raises(ConfigError, match=r"^Config file .*playground\.toml is not valid TOML"):
        load_settings()


def test_playground_config_pointing_nowhere_says_how_to_fix_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_CONFIG", "/nowhere/playground.toml")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert str(caught.value) == (
        "Config file /nowhere/playground.toml does not exist; create it or unset PLAYGROUND_CONFIG."
    )


def test_playground_config_chooses_the_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "team.toml"
    elsewhere.write_text('[endpoints.team]\nbase_url = "http://team:8000/v1"\n', encoding="utf-8")
    (Path.cwd() / "playground.toml").write_text("[endpoints.local_one]\nbase_url = 3\n")
    monkeypatch.setenv("PLAYGROUND_CONFIG", str(elsewhere))

    assert list(load_settings().endpoints) == ["team"]


@pytest.mark.parametrize(
    ("toml", "expected_error"),
    [
        (
            '[endpoints.x]\nbase_url = "ftp://x"\n',
            "Setting 'endpoints.x.base_url' in {path} is invalid: Value error, must start "
            "with http:// or https://; fix it and try again.",
        ),
        (
            '[prices."openai/gpt-4o-mini"]\ninput = -1\n',
            "Setting 'prices.openai/gpt-4o-mini.input' in {path} is invalid: Input should be "
            "greater than or equal to 0; fix it and try again.",
        ),
        (
            '[endpoints.x]\nbase_url = "http://x"\ntimeout = 0\n',
            "Setting 'endpoints.x.timeout' in {path} is invalid: Input should be greater than 0; "
            "fix it and try again.",
        ),
        (
            '[endpoints.x]\nbase_url = "http://x"\nmax_retries = 11\n',
            "Setting 'endpoints.x.max_retries' in {path} is invalid: Input should be less than "
            "or equal to 10; fix it and try again.",
        ),
        (
            "[endpoints.x]\n",
            "Setting 'endpoints.x.base_url' in {path} is invalid: Field required; "
            "fix it and try again.",
        ),
        (
            '[endpoints.x]\nbase_url = "http://x"\napi_key = "sk-in-a-file"\n',
            "Setting 'endpoints.x.api_key' in {path} is invalid: Extra inputs are not "
            "permitted; fix it and try again.",
        ),
        (
            '[local.big]\npath = "m.gguf"\nn_ctx = 16\n',
            "Setting 'local.big.n_ctx' in {path} is invalid: Input should be greater than or "
            "equal to 128; fix it and try again.",
        ),
        (
            "[runner]\ntimeout = -5\n",
            "Setting 'runner.timeout' in {path} is invalid: Input should be greater than 0; "
            "fix it and try again.",
        ),
        (
            "[sttorage]\nhome = 'x'\n",
            "Setting 'sttorage' in {path} is invalid: Extra inputs are not permitted; "
            "fix it and try again.",
        ),
    ],
)
def test_a_bad_field_is_one_sentence_naming_it(
    write_config: Any, toml: str, expected_error: str
) -> None:
    path = write_config(toml)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert str(caught.value) == expected_error.format(path=path)


def test_playground_home_wins_over_storage_home(
    write_config: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config('[storage]\nhome = "from-config"\n')

    assert load_settings().home == home

    monkeypatch.delenv("PLAYGROUND_HOME")
    assert load_settings().home == Path.cwd().resolve() / "from-config"


def test_without_any_setting_the_home_is_dot_playground(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAYGROUND_HOME")

    assert load_settings().home == Path(".playground")


def test_a_database_url_overrides_the_sqlite_file(write_config: Any) -> None:
    write_config('[storage]\ndatabase_url = "postgresql+psycopg://db/playground"\n')

    assert load_settings().database_url == "postgresql+psycopg://db/playground"


def test_keys_come_from_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2024-10-21")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENTS", " chat-a ,, chat-b ")

    keys = load_settings().keys

    assert keys.openai_api_key == "sk-env"
    assert keys.azure_api_version == "2024-10-21"
    assert keys.azure_deployments == ["chat-a", "chat-b"]


def test_secrets_override_the_environment_for_keys(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-env")
    secrets = {"OPENAI_API_KEY": "sk-secret", "AZURE_OPENAI_API_KEY": "", "OPENAI_VERSION": 1}

    keys = load_settings(secrets=secrets).keys

    assert keys.openai_api_key == "sk-secret"
    assert keys.azure_api_key == "az-env"  # an empty secret falls back to the environment


def test_keys_never_leave_the_settings_when_dumped(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")

    dumped = load_settings().model_dump_json()

    assert "sk-env-secret" not in dumped


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[runner]\ntimeout = 1e309\n", "runner.timeout"),
        ('[prices."srv/m"]\ninput = 1e309\n', "prices.srv/m.input"),
        ("[runner]\ntimeout = nan\n", "runner.timeout"),
    ],
)
def test_non_finite_numbers_are_refused_with_one_sentence(
    write_config: Any, toml: str, field: str
) -> None:
    path = write_config(toml)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert str(caught.value) == (
        f"Setting '{field}' in {path} is invalid: Input should be a finite number; "
        "fix it and try again."
    )
