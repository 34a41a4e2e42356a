"""Process-wide objects the pages share, cached once with st.cache_resource.

Heavy modules (llama.cpp, torch, chromadb) are imported inside the getters, so a page that
does not need them does not pay for them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import streamlit as st

from playground.config import Settings, load_settings

if TYPE_CHECKING:
    from playground.store import Store


def _secrets() -> dict[str, Any] | None:
    try:
        return {key: st.secrets[key] for key in st.secrets}
    except Exception:  # no secrets.toml is the normal case, not an error
        return None


def settings() -> Settings:
    """Settings from playground.toml, the environment and st.secrets (read on every rerun)."""
    return load_settings(secrets=_secrets())


def store() -> Store:
    """The run store for the current settings (opened once per process by open_store)."""
    from playground.store import open_store

    return open_store(settings())


def session_id() -> str:
    """A stable id of this browser session, for ratings and saved runs."""
    if "session_id" not in st.session_state:
        st.session_state["session_id"] = uuid.uuid4().hex
    return str(st.session_state["session_id"])
