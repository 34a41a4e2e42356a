"""history page (not built yet)."""

import streamlit as st

st.title("History")
st.info("Coming soon.")
