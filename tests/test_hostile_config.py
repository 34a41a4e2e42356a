"""Hostile configuration: a folder or endless file as PLAYGROUND_CONFIG, unusable endpoint names."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from playground.cli import main
from playground.config import load_settings
from playground.errors import ConfigError


def test_config_pointing_at_a_directory_is_one_sentence(home, tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    monkeypatch.setenv("PLAYGROUND_CONFIG", str(folder))
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Config file {folder} is a directory, not a TOML file; point PLAYGROUND_CONFIG "
        "at a playground.toml file.\n"
    )


def test_config_that_never_ends_is_refused_without_reading_it_all(home, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_CONFIG", "/dev/zero")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "Config file /dev/zero is larger than 1 MB; a playground.toml holds a few settings, "
        "so point PLAYGROUND_CONFIG at the right file."
    )


@pytest.mark.parametrize(
    ("section", "error"),
    [
        (
            "[endpoints.local]",
            "[endpoints.local] clashes with the built-in provider 'local' (model ids local/...); "
            "rename it, e.g. [endpoints.local-server].",
        ),
        (
            "[endpoints.OpenAI]",
            "[endpoints.OpenAI] clashes with the built-in provider 'openai' (model ids "
            "openai/...); rename it, e.g. [endpoints.OpenAI-server].",
        ),
        (
            '[endpoints."a/b"]',
            'endpoint name "a/b" cannot form a model id (ids are NAME/MODEL); use up to 64 '
            "letters, digits, '.', '_' or '-', starting with a letter or digit, "
            "e.g. [endpoints.myserver].",
        ),
        (
            '[endpoints."my server"]',
            'endpoint name "my server" cannot form a model id (ids are NAME/MODEL); use up to 64 '
            "letters, digits, '.', '_' or '-', starting with a letter or digit, "
            "e.g. [endpoints.myserver].",
        ),
    ],
)
def test_endpoint_names_that_cannot_work_are_refused(write_config, section, error):
    path: Path = write_config(f'{section}\nbase_url = "http://127.0.0.1:9/v1"\n')
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 1
    assert result.output == f"Error: In {path}: {error}\n"


def test_ordinary_endpoint_names_still_load(write_config):
    write_config('[endpoints."team.gpu_1-b"]\nbase_url = "http://127.0.0.1:9/v1"\n')
    assert list(load_settings().endpoints) == ["team.gpu_1-b"]
