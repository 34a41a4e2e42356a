"""Prompt Playground: the router. Pages live in views/, the logic in playground/.

The folder is not called pages/: next to an entry file Streamlit would treat pages/ as the
old file-based navigation until app.py had run once, so a first deep link ignored the router.
"""

from __future__ import annotations

import streamlit as st

from ui.boundary import error_boundary

EDITOR_PREFIX = "pg_"


def keep_editor_state() -> None:
    """Keep the Playground editor's widget values while the user visits other pages."""
    # Streamlit drops a widget's value when a run does not draw it; re-assigning keeps it.
    for key in list(st.session_state.keys()):
        if str(key).startswith(EDITOR_PREFIX):
            st.session_state[key] = st.session_state[key]


def main() -> None:
    """Declare the pages, the shared sidebar, and run the selected page."""
    st.set_page_config(
        page_title="Prompt Playground", page_icon=":material/science:", layout="wide"
    )
    keep_editor_state()
    playground = st.Page(
        "views/playground_page.py",  # not playground.py: that name would shadow the package
        title="Playground",
        url_path="playground",
        icon=":material/science:",
        default=True,
    )
    shared_run = st.Page(
        "views/run.py",
        title="Shared run",
        icon=":material/link:",
        url_path="shared",  # permalinks are /shared?run=ID; a default page has no URL path
    )
    pages = {
        "Explore": [
            playground,
            st.Page("views/knowledge.py", title="Knowledge", icon=":material/library_books:"),
        ],
        "Evaluate": [st.Page("views/evaluate.py", title="Evaluate", icon=":material/rule:")],
        "Decide": [
            st.Page("views/compare.py", title="Compare", icon=":material/leaderboard:"),
            st.Page("views/history.py", title="History", icon=":material/history:"),
            shared_run,
        ],
        "Ship": [
            st.Page("views/flows.py", title="Flows", icon=":material/account_tree:"),
            st.Page("views/settings.py", title="Settings", icon=":material/settings:"),
        ],
        "Operate": [st.Page("views/monitor.py", title="Monitor", icon=":material/monitoring:")],
    }
    page = st.navigation(pages)
    with error_boundary():  # a bad playground.toml is one sentence on every page, not a traceback
        page.run()
    from playground.heap import freeze_after_imports

    freeze_after_imports()  # a page's first run imports its libraries: see playground/heap.py


if __name__ == "__main__":
    main()
