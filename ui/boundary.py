"""The app's one error boundary, like the command line's: a sentence on the page, not a traceback.

A PlaygroundError already says what is wrong and what to do, so it is shown as it is. Anything
else is a bug: the page says so in one short message and logs the traceback on the server;
PLAYGROUND_RAISE_ERRORS=1 re-raises it so that Streamlit (and tests) show the traceback.
Streamlit's own control flow (st.stop, st.rerun, st.switch_page) derives from BaseException
and passes straight through.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import streamlit as st

from playground.errors import PlaygroundError

RAISE_ENV = "PLAYGROUND_RAISE_ERRORS"
_log = logging.getLogger("playground.app")


def unexpected_message(exc: Exception) -> str:
    """The one line shown for a bug: what happened and how to see more."""
    detail = " ".join(str(exc).split())
    if len(detail) > 200:
        detail = detail[:199] + "…"
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return (
        f"Something went wrong on this page ({what}). The other pages still work; "
        f"restart the app with {RAISE_ENV}=1 to see the traceback."
    )


@contextlib.contextmanager
def error_boundary() -> Iterator[None]:
    """Run a page: PlaygroundError -> its sentence; other errors -> one short message."""
    try:
        yield
    except PlaygroundError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:
        if os.environ.get(RAISE_ENV):
            raise
        _log.exception("Unexpected error on a page")
        st.error(unexpected_message(exc), icon=":material/bug_report:")
