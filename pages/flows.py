"""flows page (not built yet)."""

import streamlit as st

st.title("Flows")
st.info("Coming soon.")
