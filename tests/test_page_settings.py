"""The Settings page shows endpoints, whether they answer, models and prices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support import free_port

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "settings.py")


def test_no_endpoint_explains_how_to_add_one(home: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert "No OpenAI-compatible endpoint is configured" in at.info[0].value
    assert any("set OPENAI_API_KEY to enable" in m.value for m in at.markdown)


def test_reachable_endpoint_lists_its_models_and_prices(
    home: Path, write_config: Callable[[str], Path], llama_server: str
) -> None:
    write_config(
        f'[endpoints.srv]\nbase_url = "{llama_server}"\n'
        '[prices."srv/smollm2-135m-instruct"]\ninput = 0.5\noutput = 1.5\n'
    )
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception and not at.error
    assert any("Reachable · 1 models: smollm2-135m-instruct" in c.value for c in at.caption)
    table = at.dataframe[0].value
    row = table[table["model"] == "srv/smollm2-135m-instruct"].iloc[0]
    assert (row["status"], row["input $/M tokens"], row["output $/M tokens"]) == (
        "ready",
        "$0.5",
        "$1.5",
    )
    local = table[table["model"] == "local/smollm2-135m-instruct"].iloc[0]
    assert (local["input $/M tokens"], local["output $/M tokens"]) == ("free", "free")


def test_unreachable_endpoint_says_what_to_do(
    home: Path, write_config: Callable[[str], Path]
) -> None:
    write_config(f'[endpoints.down]\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n')
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("down is unreachable (cannot connect")
    assert at.error[0].value.endswith("start the server or fix its base_url.")


def test_keys_are_never_shown(
    home: Path, write_config: Callable[[str], Path], monkeypatch: object
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")  # type: ignore[attr-defined]
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    shown = " ".join(str(e.value) for e in at.main if hasattr(e, "value"))
    assert "sk-very-secret-value" not in shown
    assert any("**OpenAI**: configured" in m.value for m in at.markdown)


def test_models_without_a_price_say_price_unknown_not_zero(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    table = at.dataframe[0].value
    openai_rows = table[table["model"].str.startswith("openai/")]
    assert len(openai_rows) > 0
    assert set(openai_rows["input $/M tokens"]) == {"price unknown"}
    assert set(openai_rows["output $/M tokens"]) == {"price unknown"}
    assert any("is counted at $0 in costs until you set its price" in c.value for c in at.caption)


def test_storage_names_the_backend_and_its_revision(home: Path) -> None:
    from playground.store.migrations import known_names

    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    (storage,) = [m.value for m in at.markdown if m.value.startswith("- Run store:")]
    assert f"SQLite · `sqlite:///{home}" in storage
    assert f"revision {known_names()[-1]} (up to date)" in storage
