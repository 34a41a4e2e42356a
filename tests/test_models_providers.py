"""The provider table is the one place that knows providers: a row there reaches every command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from playground.cli import main
from playground.config import Settings, load_settings
from playground.errors import ConfigError, UnknownModelError
from playground.eval.batch import endpoint_limit
from playground.flows.exporters import export_flow
from playground.flows.loader import parse_spec
from playground.models import providers
from playground.models.base import ChatModel
from playground.models.local import DEFAULT_N_CTX, LocalModel, embedded_gguf_path
from playground.models.providers import ModelInfo, Provider, Target
from playground.models.registry import get_model, in_process
from playground.serve.tracing import gen_ai_system
from tests.flow_samples import GOOD, write_spec

ROOT = Path(__file__).resolve().parent.parent
HOUSE_URL = "http://house.example:8080/v1"


class HouseProvider(Provider):
    """A made-up provider: the embedded GGUF under the id house/tiny, exported to its own URL."""

    name = "house"
    in_process = True
    gen_ai_system = "house_ai"

    def models(self, settings: Settings, discover: bool = True) -> list[ModelInfo]:
        return [ModelInfo("house/tiny", "house", True, "ready", "the embedded GGUF")]

    def get(self, model_id: str, name: str, settings: Settings) -> ChatModel:
        if name != "tiny":
            raise UnknownModelError(model_id, "the house serves only house/tiny.")
        return LocalModel(model_id, embedded_gguf_path(), DEFAULT_N_CTX)

    def export_target(self, model_id: str, name: str) -> Target:
        return Target("compatible", name, HOUSE_URL, "HOUSE_KEY")


@pytest.fixture
def house(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The house provider registered in the table, and nowhere else."""
    monkeypatch.setitem(providers.BUILT_IN, "house", HouseProvider())
    monkeypatch.setenv("PLAYGROUND_RAISE_ERRORS", "1")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_provider_in_the_table_is_listed_run_exported_and_traced(
    house: None, tmp_path: Path
) -> None:
    listed = json.loads(invoke("models", "--json").stdout)
    assert {"id": "house/tiny", "provider": "house", "ready": True} in [
        {k: m[k] for k in ("id", "provider", "ready")} for m in listed
    ]

    spec_text = GOOD.replace("local/smollm2-135m-instruct", "house/tiny")
    ran = invoke("flow", "run", str(write_spec(tmp_path, spec_text)), "--json")
    assert ran.exit_code == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer["model"] == "house/tiny" and answer["error"] is None and answer["text"]

    out = tmp_path / "prompty"
    export_flow(parse_spec(spec_text), "prompty", out)
    (text,) = [p.read_text() for p in out.iterdir() if p.suffix == ".prompty"]
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["model"]["configuration"]["base_url"] == HOUSE_URL
    assert front["model"]["configuration"]["api_key"] == "${env:HOUSE_KEY}"

    assert gen_ai_system("house/tiny") == "house_ai"
    assert endpoint_limit(load_settings(), "house/tiny", 8) == 1  # in-process: one at a time
    assert in_process("house/tiny")


def test_a_provider_in_the_table_reserves_its_name_and_is_offered_for_unknown_ids(
    house: None, write_config: Callable[[str], Path]
) -> None:
    with pytest.raises(UnknownModelError) as unknown:
        get_model("nowhere/m", load_settings())
    assert "use local/, openai/, azure/, house/ or an [endpoints.nowhere] table" in str(
        unknown.value
    )

    write_config('[endpoints.House]\nbase_url = "http://127.0.0.1:9/v1"\n')
    with pytest.raises(ConfigError, match=r"\[endpoints.House\] clashes with the built-in"):
        load_settings()


def test_an_endpoint_sharing_a_local_models_name_keeps_its_own_concurrency(
    home: Path, write_config: Callable[[str], Path]
) -> None:
    # [local.NAME] makes ids local/NAME: it says nothing about the provider NAME/
    write_config(
        '[local.fast]\npath = "fast.gguf"\n\n'
        '[endpoints.fast]\nbase_url = "http://127.0.0.1:9/v1"\nmax_concurrency = 4\n'
    )
    settings = load_settings()
    assert endpoint_limit(settings, "fast/m", 8) == 4
    assert endpoint_limit(settings, "local/fast", 8) == 1
    assert not in_process("fast/m", settings)


def test_reading_the_registry_imports_neither_model_runtime() -> None:
    code = (
        "import sys, playground.models.registry, playground.models.providers\n"
        "print('openai' in sys.modules, 'llama_cpp' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False"]


def test_an_azure_batch_exports_to_promptfoo_on_its_deployment_and_host(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://team.openai.azure.com/")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    settings = load_settings()
    entry = providers.provider_for("azure", settings).promptfoo_provider("gpt4o-prod", settings)
    # not the serve-model URL of a local model: promptfoo's own Azure provider, same variables
    assert entry == {
        "id": "azure:chat:gpt4o-prod",
        "config": {"apiHost": "team.openai.azure.com", "apiVersion": "2024-10-21"},
    }
