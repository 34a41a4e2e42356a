"""Settings: what is configured, what is reachable, and what each model costs."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError
from playground.formatting import PRICE_UNKNOWN, price_per_million
from playground.models.providers import all_providers
from playground.models.registry import discover_endpoint, in_process, list_models
from ui.resources import settings, store

st.title("Settings")
st.caption(
    "Models light up when their keys or endpoints are configured in `playground.toml`, "
    "the environment, or `.streamlit/secrets.toml`. Keys are never shown or stored."
)

config = settings()
refresh = st.button("Check endpoints again", key="btn_refresh", icon=":material/refresh:")

st.subheader("Endpoints", divider="gray")
if not config.endpoints:
    st.info(
        "No OpenAI-compatible endpoint is configured. Add one to playground.toml:\n\n"
        '```toml\n[endpoints.myserver]\nbase_url = "http://127.0.0.1:8000/v1"\n'
        'api_key_env = "MYSERVER_API_KEY"   # optional\n```'
    )
for name, endpoint in config.endpoints.items():
    status = discover_endpoint(name, endpoint, refresh=refresh)
    with st.container(border=True):
        icon = ":material/check_circle:" if status.reachable else ":material/error:"
        st.markdown(f"{icon} **{name}** · `{status.base_url}`")
        if status.reachable:
            st.caption(f"Reachable · {len(status.models)} models: {', '.join(status.models)}")
        else:
            st.error(
                f"{name} is unreachable ({status.detail}); start the server or fix its base_url.",
                icon=":material/cloud_off:",
            )
        if status.api_key_env:
            present = "set" if status.key_present else "NOT set"
            st.caption(f"Key from ${status.api_key_env}: {present}")

st.subheader("Providers", divider="gray")
key_states = [
    f"- **{provider.title}**: {state}"
    for provider in all_providers(config)
    if (state := provider.setup_state(config)) is not None
]
st.markdown("\n".join(key_states))

st.subheader("Models", divider="gray")
rows = []
for info in list_models(config):
    price_in, price_out = price_per_million(config.prices.get(info.id), in_process(info.id, config))
    rows.append(
        {
            "model": info.id,
            "status": info.status,
            "input $/M tokens": price_in,
            "output $/M tokens": price_out,
            "detail": info.detail,
        }
    )
st.dataframe(rows, hide_index=True, key="models_table")
if any(PRICE_UNKNOWN in (row["input $/M tokens"], row["output $/M tokens"]) for row in rows):
    st.caption(
        f"A model with '{PRICE_UNKNOWN}' is counted at $0 in costs until you set its price in "
        'playground.toml: `[prices."openai/gpt-4o-mini"] input = 0.15  output = 0.60`.'
    )
else:
    st.caption('Set prices in playground.toml: `[prices."openai/gpt-4o-mini"] input = 0.15`.')

st.subheader("Storage", divider="gray")
try:
    run_store = store().describe()
except PlaygroundError as exc:  # the page still shows everything else
    run_store = f"unavailable ({exc})"
st.markdown(
    f"- Run store: {run_store}\n"
    f"- Data home: `{config.home.resolve()}`\n"
    f"- Config file: `{config.config_path or 'none (defaults)'}`\n"
    f"- Vector store: `{config.vector_store.url or 'embedded Chroma under the data home'}`"
)
