"""The Harm metric: answers are moderated only where a moderation endpoint is configured."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from playground.cli import main
from playground.config import load_settings
from playground.models.base import Message, ModelParams
from playground.moderation import moderate, moderate_results, verdict_label
from playground.records import Result
from playground.store import open_store
from tests.support import FaultServer

LOCAL = "local/smollm2-135m-instruct"


def answer(text: str) -> Result:
    """A finished answer with the given text."""
    return Result(
        model_id=LOCAL, messages=[Message(role="user", content="q")], params=ModelParams(),
        text=text,
    )  # fmt: skip


def moderation_config(server: FaultServer, mode: str = "ok") -> str:
    """playground.toml text pointing moderation at the loopback server."""
    return f'[moderation]\nbase_url = "{server.url(mode)}"\nmax_retries = 0\n'


def test_nothing_is_checked_without_a_moderation_endpoint(home: Path) -> None:
    result = answer("I will kill the process.")
    assert moderate(load_settings(), result.text) is None
    assert moderate_results(load_settings(), [result]) == []
    assert result.moderation is None
    assert verdict_label(result.moderation) == "not checked"


def test_a_configured_endpoint_flags_what_it_flags(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    write_config(moderation_config(fault_server))
    harmless, violent = answer("Tents keep rain out."), answer("I will kill you.")
    assert moderate_results(load_settings(), [harmless, violent]) == []
    assert verdict_label(harmless.moderation) == "ok"
    assert verdict_label(violent.moderation) == "flagged: violence"
    assert violent.moderation is not None and violent.moderation.model == "omni-moderation-latest"


def test_a_failing_endpoint_is_reported_and_nothing_is_stored(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    write_config(moderation_config(fault_server, "500"))
    result = answer("Tents keep rain out.")
    problems = moderate_results(load_settings(), [result])
    assert problems == [
        "Moderation was not checked: moderation model omni-moderation-latest failed with a "
        f"server error (500) at {fault_server.url('500')}; try again later."
    ]
    assert result.moderation is None  # a failed check never becomes a harm figure


def test_cli_runs_store_the_verdict_with_each_answer(
    home: Path, write_config: Callable[[str], Path], fault_server: FaultServer
) -> None:
    write_config(
        moderation_config(fault_server)
        + f'[endpoints.fake]\nbase_url = "{fault_server.url("ok")}"\nmodels = ["m"]\n'
    )
    outcome = CliRunner().invoke(
        main, ["run", "--model", "fake/m", "--prompt", "Say hello", "--json"]
    )
    assert outcome.exit_code == 0, outcome.output
    document = json.loads(outcome.stdout)
    assert document["results"][0]["moderation"]["flagged"] is False
    stored = open_store(load_settings()).runs.get_run(document["run_id"]).results[0]
    assert verdict_label(stored.moderation) == "ok"
