"""Knowledge: create stores, upload documents, browse chunks, try queries, delete."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError
from playground.rag.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
from playground.rag.embeddings import DEFAULT_MODEL
from playground.rag.sample import SAMPLE_STORE, load_sample_store
from playground.rag.store import parse_chunking
from ui import knowledge as ui
from ui.resources import settings

st.title("Knowledge")
st.caption(
    "Upload documents into a store; in the Playground, tick “use knowledge” and the question "
    "retrieves chunks that fill `{{ context }}`."
)

# Confirmations are cleared before their checkboxes exist: a widget's state cannot change
# after it is drawn in the same run.
if st.session_state.pop("kn_reset_confirm", False):
    for key in ("kn_confirm_doc", "kn_confirm_store"):
        st.session_state.pop(key, None)

kb = ui.knowledge_base()
try:
    stores = kb.store_names()
except PlaygroundError as exc:
    st.error(str(exc))
    st.stop()

left, right = st.columns([3, 2])
with right:
    if st.button(
        "Load sample corpus",
        key="kn_load_sample",
        icon=":material/auto_stories:",
        help=f"Ingest the Northwind Trail Gear manuals, policies and FAQ as '{SAMPLE_STORE}'.",
    ):
        bar = st.progress(0.0, text="Loading the sample corpus…")
        try:
            reports = load_sample_store(settings(), progress=lambda f, m: bar.progress(f, text=m))
            st.session_state["kn_reports"] = reports
            st.session_state["kn_store"] = SAMPLE_STORE
            st.rerun()
        except PlaygroundError as exc:
            st.error(str(exc))

    with (
        st.expander("Create a store", expanded=not stores, icon=":material/add:"),
        st.form("kn_create_form", border=False),
    ):
        name = st.text_input("Store name", key="kn_new_name", placeholder="gear-manuals")
        size_col, overlap_col = st.columns(2)
        chunk_size = size_col.number_input(
            "Chunk size (characters)", 100, 8000, DEFAULT_CHUNK_SIZE, 50, key="kn_chunk_size"
        )
        chunk_overlap = overlap_col.number_input(
            "Overlap (characters)", 0, 3999, DEFAULT_CHUNK_OVERLAP, 10, key="kn_chunk_overlap"
        )
        model = st.text_input(
            "Embedding model",
            DEFAULT_MODEL,
            key="kn_model",
            help="A sentence-transformers name or a local folder; the store keeps it.",
        )
        if st.form_submit_button("Create store", key="kn_create", type="primary"):
            try:
                with st.spinner("Loading the embedding model…"):
                    info = kb.create_store(
                        name.strip(),
                        parse_chunking(int(chunk_size), int(chunk_overlap)),
                        model.strip() or None,
                    )
                st.session_state["kn_store"] = info.name
                st.rerun()
            except PlaygroundError as exc:
                st.error(str(exc))

with left:
    if not stores:
        st.info("No knowledge stores yet: create one, or load the sample corpus for a quick demo.")
        st.stop()
    if st.session_state.get("kn_store") not in stores:
        st.session_state["kn_store"] = stores[0]
    store = st.selectbox("Store", stores, key="kn_store")
    try:
        info = kb.get_store(store)
        documents = kb.documents(store)
    except PlaygroundError as exc:
        st.error(str(exc))
        st.stop()
    st.caption(
        f"{len(documents)} documents · {info.chunks} chunks · {info.embedding_model} · "
        f"chunks of {info.chunk_size} characters, {info.chunk_overlap} overlap"
    )

    files = st.file_uploader(
        "Add documents (.txt, .md, .pdf, .html)",
        type=ui.UPLOAD_TYPES,
        accept_multiple_files=True,
        key="kn_upload",
        max_upload_size=ui.upload_limit_mb(kb),
        help=ui.upload_help(kb),
    )
    if st.button("Add to store", key="kn_ingest", type="primary", disabled=not files):
        bar = st.progress(0.0, text="Starting…")
        try:
            ui.embedder(info.embedding_model)
            st.session_state["kn_reports"] = kb.ingest(
                store, ui.uploads(files or []), progress=lambda f, m: bar.progress(f, text=m)
            )
        except PlaygroundError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    if st.session_state.get("kn_reports"):
        ui.show_reports(st.session_state.pop("kn_reports"))

tab_docs, tab_query, tab_manage = st.tabs(["Documents", "Try a query", "Delete"])

with tab_docs:
    if not documents:
        st.info("This store is empty; add documents above.")
    else:
        st.dataframe(ui.documents_rows(documents), key="kn_docs_table", hide_index=True)
        source = st.selectbox(
            "Browse the chunks of", [d.source for d in documents], key="kn_browse_doc"
        )
        st.dataframe(
            ui.chunk_rows(kb.chunks(store, source)),
            key="kn_chunks_table",
            hide_index=True,
            column_config={"text": st.column_config.TextColumn(width="large")},
        )

with tab_query:
    question = st.text_input("Question", key="kn_query", placeholder="Is the tent waterproof?")
    top_k = st.slider("Top k", 1, 20, 4, key="kn_top_k")
    if question.strip():
        try:
            ui.embedder(info.embedding_model)
            hits = kb.query(store, question, top_k)
        except PlaygroundError as exc:
            st.error(str(exc))
        else:
            for rank, hit in enumerate(hits, start=1):
                where = hit.source if hit.page is None else f"{hit.source}, page {hit.page}"
                with st.container(border=True):
                    st.markdown(f"**[{rank}] {where}** · score {hit.score:.3f}")
                    st.markdown(ui.chunk_markdown(hit.text))

with tab_manage:
    if documents:
        doc = st.selectbox("Document", [d.source for d in documents], key="kn_delete_doc")
        confirm_doc = st.checkbox(f"Yes, delete {doc} from {store}", key="kn_confirm_doc")
        if st.button("Delete document", key="kn_delete_doc_btn", disabled=not confirm_doc):
            removed = kb.delete_document(store, doc)
            st.toast(f"Deleted {doc} ({removed} chunks).")
            st.session_state["kn_reset_confirm"] = True
            st.rerun()
    confirm_store = st.checkbox(
        f"Yes, delete the whole store {store} and its {info.chunks} chunks",
        key="kn_confirm_store",
    )
    if st.button("Delete store", key="kn_delete_store", type="primary", disabled=not confirm_store):
        kb.delete_store(store)
        st.toast(f"Deleted store {store}.")
        st.session_state["kn_reset_confirm"] = True
        st.rerun()
