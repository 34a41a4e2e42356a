"""Fan-out of one prompt to many models: validation first, then concurrent measured streams."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from playground.config import Price, Settings, load_settings
from playground.errors import PlaygroundError, TemplateError, UnknownModelError
from playground.models.base import Message, ModelParams, Usage
from playground.records import PromptVariant, Result
from playground.runner import complete, cost_usd, estimate_tokens, plan_cells, run_cells
from tests.support import FAULT_MODEL, FaultServer

LOCAL = "local/smollm2-135m-instruct"
SHORT = ModelParams(temperature=0.0, seed=3, max_tokens=8)
FORTY_CHARS = "Tell me one thing about the sea, please."  # 40 characters: 10 estimated tokens


def endpoints(server: FaultServer, **modes: str) -> str:
    """[endpoints.NAME] tables on fault-server modes: endpoints(server, good="ok")."""
    return "".join(
        f'[endpoints.{name}]\nbase_url = "{server.url(mode)}"\ntimeout = 5\nmax_retries = 0\n'
        for name, mode in modes.items()
    )


@pytest.fixture
def faulty(write_config: Any, fault_server: FaultServer) -> Settings:
    """Settings with a good, a failing (500) and a slow (1 s) endpoint, and one price."""
    write_config(
        endpoints(fault_server, good="ok", bad="500", slow="slow")
        + f'[prices."good/{FAULT_MODEL}"]\ninput = 1000\noutput = 2000\n'
    )
    return load_settings()


@pytest.mark.parametrize(
    ("model_ids", "variant", "variables", "error", "message"),
    [
        (
            [f"good/{FAULT_MODEL}", "nope/x"],
            PromptVariant(user="{{ q }}"),
            {"q": "hi"},
            UnknownModelError,
            "Unknown model 'nope/x'; no provider 'nope': ",
        ),
        (
            [f"good/{FAULT_MODEL}"],
            PromptVariant(user="{{ q "),
            {"q": "hi"},
            TemplateError,
            "Template syntax error in the user message on line 1: ",
        ),
        (
            [f"good/{FAULT_MODEL}"],
            PromptVariant(system="Be {{ tone }}.", user="{{ q }}"),
            {"q": "hi", "tone": " "},
            TemplateError,
            "Variable 'tone' in the system message is empty; ",
        ),
        (
            [],
            PromptVariant(user="hi"),
            {},
            PlaygroundError,
            "No model selected; pick at least one model and run again.",
        ),
    ],
)
def test_plan_refuses_bad_input_before_anything_is_sent(
    faulty: Settings,
    fault_server: FaultServer,
    model_ids: list[str],
    variant: PromptVariant,
    variables: dict[str, str],
    error: type[PlaygroundError],
    message: str,
) -> None:
    before = dict(fault_server.hits)

    with pytest.raises(error) as caught:
        plan_cells([variant], model_ids, {}, variables, faulty)

    assert str(caught.value).startswith(message)
    assert fault_server.hits == before


def test_plan_makes_one_cell_per_variant_and_model_in_grid_order(faulty: Settings) -> None:
    variants = [PromptVariant("short", user="Hi {{ name }}"), PromptVariant("long", user="Hello")]
    params = {"bad/m": ModelParams(temperature=0.1)}

    cells = plan_cells(variants, ["good/m", "bad/m"], params, {"name": "Ada"}, faulty)

    assert [(c.variant_name, c.model_id) for c in cells] == [
        ("short", "good/m"),
        ("short", "bad/m"),
        ("long", "good/m"),
        ("long", "bad/m"),
    ]
    assert cells[0].messages == [Message(role="user", content="Hi Ada")]
    assert cells[0].params == ModelParams()
    assert cells[1].params.temperature == 0.1


def test_run_continues_when_one_model_fails(faulty: Settings) -> None:
    cells = plan_cells(
        [PromptVariant(user="hi")], [f"bad/{FAULT_MODEL}", f"good/{FAULT_MODEL}"], {}, {}, faulty
    )

    bad, good = run_cells(cells, faulty)

    assert bad.model_id == f"bad/{FAULT_MODEL}"
    assert bad.error is not None
    assert bad.error.startswith(f"bad/{FAULT_MODEL} failed with a server error (500)")
    assert bad.text == ""
    assert good.model_id == f"good/{FAULT_MODEL}"
    assert good.error is None
    assert good.text == "Hello from the test server."
    assert good.ttft_ms is not None and good.latency_ms is not None


def test_a_model_that_cannot_be_resolved_at_run_time_fails_only_its_cell(
    faulty: Settings,
) -> None:
    good = Result(f"good/{FAULT_MODEL}", [Message(role="user", content="hi")], ModelParams())
    stale = Result("removed/m", [Message(role="user", content="hi")], ModelParams())
    finished: list[str] = []

    results = run_cells([stale, good], faulty, on_done=lambda r: finished.append(r.model_id))

    assert results[0].error is not None
    assert results[0].error.startswith("Unknown model 'removed/m'")
    assert results[1].text == "Hello from the test server."
    assert sorted(finished) == sorted(["removed/m", f"good/{FAULT_MODEL}"])


def test_four_slow_models_run_at_once(faulty: Settings) -> None:
    variants = [PromptVariant(f"v{i}", user=f"question {i}") for i in range(4)]
    cells = plan_cells(variants, [f"slow/{FAULT_MODEL}"], {}, {}, faulty)

    start = time.perf_counter()
    results = run_cells(cells, faulty)
    wall = time.perf_counter() - start

    assert [r.error for r in results] == [None] * 4
    assert all(r.ttft_ms is not None and r.ttft_ms >= 950 for r in results)
    assert wall < 2.5  # one 1 s delay, not four


def test_forty_eight_slow_models_answer_in_one_wave(
    faulty: Settings, fault_server: FaultServer
) -> None:
    names = [f"slow/m{i}" for i in range(48)]  # one endpoint lists any model it is asked for
    cells = plan_cells([PromptVariant(user="hi")], names, {}, {}, faulty)
    before = len(fault_server.arrivals)

    results = run_cells(cells, faulty)

    assert [r.error for r in results] == [None] * 48
    # In waves, a later wave's requests leave only once an earlier answer (1 s) has come back.
    arrivals = fault_server.arrivals[before:]
    spread = max(arrivals) - min(arrivals)
    assert len(arrivals) == 48 and spread < 1.0, f"requests {spread:.1f} s apart: in waves"


def test_an_endpoints_max_concurrency_still_holds_calls_back(
    write_config: Any, fault_server: FaultServer
) -> None:
    write_config(
        f'[endpoints.slow]\nbase_url = "{fault_server.url("slow")}"\nmax_retries = 0\n'
        "max_concurrency = 2\n"
    )
    settings = load_settings()
    cells = plan_cells(
        [PromptVariant(user="hi")], [f"slow/m{i}" for i in range(4)], {}, {}, settings
    )

    start = time.perf_counter()
    results = run_cells(cells, settings)
    wall = time.perf_counter() - start

    assert [r.error for r in results] == [None] * 4
    assert wall >= 1.9  # two at a time: two rounds of 1 s
    assert all(r.latency_ms is not None and r.latency_ms < 1500 for r in results)  # no queueing


def test_metrics_are_filled_and_consistent(faulty: Settings) -> None:
    cells = plan_cells(
        [PromptVariant(user=FORTY_CHARS)],
        [f"good/{FAULT_MODEL}", LOCAL],
        {LOCAL: SHORT},
        {},
        faulty,
    )

    remote, local = run_cells(cells, faulty)

    for result in (remote, local):
        assert result.error is None
        assert result.ttft_ms is not None and result.latency_ms is not None
        assert 0 < result.ttft_ms <= result.latency_ms
        assert result.tokens_per_s is not None and result.tokens_per_s > 0
    assert local.usage.completion_tokens == SHORT.max_tokens
    assert not local.usage.estimated
    assert local.cost_usd == 0.0


def test_cost_uses_the_configured_price_and_estimated_usage_is_flagged(
    faulty: Settings,
) -> None:
    result = complete(
        f"good/{FAULT_MODEL}", [Message(role="user", content=FORTY_CHARS)], ModelParams(), faulty
    )

    # the fault server reports no usage: ~4 characters a token for the prompt, one per delta
    assert result.usage == Usage(prompt_tokens=10, completion_tokens=6, estimated=True)
    assert result.cost_usd == pytest.approx((10 * 1000 + 6 * 2000) / 1_000_000)


def test_an_unpriced_model_costs_nothing(faulty: Settings) -> None:
    result = complete(f"slow/{FAULT_MODEL}", [Message(role="user", content="hi")], SHORT, faulty)

    assert result.usage.completion_tokens == 6
    assert result.cost_usd == 0.0


def test_a_failed_call_still_records_its_latency(faulty: Settings) -> None:
    result = complete(f"bad/{FAULT_MODEL}", [Message(role="user", content="hi")], SHORT, faulty)

    assert result.error is not None
    assert result.ttft_ms is None
    assert result.latency_ms is not None and result.latency_ms > 0
    assert result.tokens_per_s is None
    assert result.usage.completion_tokens == 0


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcdef", 2), ("x" * 400, 100)]
)
def test_estimate_tokens_is_about_four_characters_a_token(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_cost_is_tokens_times_price_per_million() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=500_000)

    assert cost_usd(usage, Price(input=0.15, output=0.60)) == pytest.approx(0.45)
    assert cost_usd(usage, Price()) == 0.0


def test_run_cells_with_no_cells_returns_nothing(home: Path) -> None:
    assert run_cells([], load_settings()) == []
