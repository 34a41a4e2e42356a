"""run page (not built yet)."""

import streamlit as st

st.title("Run")
st.info("Coming soon.")
