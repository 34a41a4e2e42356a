"""The app's error boundary: a mistake in playground.toml is one sentence on every page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
BAD_URL = '[endpoints.files]\nbase_url = "ftp://files.example.com/v1"\n'
PAGES = ["views/compare.py", "views/history.py", "views/flows.py", "views/settings.py"]


def _shown(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("error", "exception") for e in at.get(kind))


def test_a_bad_base_url_is_one_sentence_on_every_page(
    home: Path, write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAYGROUND_RAISE_ERRORS", raising=False)
    write_config(BAD_URL)
    at = AppTest.from_file(APP, default_timeout=60).run()
    for page in [None, *PAGES]:
        if page is not None:
            at.switch_page(page).run()
        assert not at.exception, page
        (error,) = at.error
        assert error.value.startswith("Setting 'endpoints.files.base_url' in "), page
        assert "must start with http:// or https://" in error.value
        assert error.value.endswith("fix it and try again.")
        assert "Traceback" not in _shown(at)


def _failing_page() -> None:
    from ui.boundary import error_boundary

    with error_boundary():
        {"a": 1}["missing"]  # a bug in a page


def test_an_unexpected_error_is_a_short_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAYGROUND_RAISE_ERRORS", raising=False)
    at = AppTest.from_function(_failing_page).run()
    assert not at.exception
    (error,) = at.error
    assert error.value == (
        "Something went wrong on this page (KeyError: 'missing'). The other pages still work; "
        "restart the app with PLAYGROUND_RAISE_ERRORS=1 to see the traceback."
    )


def test_raise_errors_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_RAISE_ERRORS", "1")
    at = AppTest.from_function(_failing_page).run()
    assert at.exception and "missing" in at.exception[0].value
    assert not at.error


def _stopping_page() -> None:
    import streamlit as st

    from ui.boundary import error_boundary

    with error_boundary():
        st.info("before")
        st.stop()
    st.info("after the boundary")  # never reached: st.stop passes through the boundary


def test_st_stop_passes_through_the_boundary() -> None:
    at = AppTest.from_function(_stopping_page).run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info] == ["before"]
