"""The Knowledge page (AppTest): create, upload, browse, query, delete, load the sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.config import load_settings
from playground.rag.store import KnowledgeBase, UploadedFile
from tests.rag_fixtures import make_pdf

PAGE = str(Path(__file__).resolve().parent.parent / "views" / "knowledge.py")


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
             for e in at.get(kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def kb(home: Path) -> KnowledgeBase:
    """The knowledge base the page sees, with a store 'gear' holding one manual."""
    knowledge = KnowledgeBase(load_settings())
    knowledge.ingest(
        "gear",
        [
            UploadedFile("tent.md", b"The Trail Tent is waterproof to 3000 mm."),
            UploadedFile("stove.txt", b"The Ember stove boils a liter in 3.5 minutes."),
        ],
    )
    return knowledge


def test_no_store_yet_says_how_to_start(home: Path) -> None:
    at = page()
    assert "No knowledge stores yet: create one, or load the sample corpus" in texts(at)


def test_create_a_store_with_its_chunk_settings(home: Path) -> None:
    at = page()
    at.text_input(key="kn_new_name").input("manuals")
    at.number_input(key="kn_chunk_size").set_value(400)
    at.button(key="kn_create").click()
    at = rerun(at)
    assert at.selectbox(key="kn_store").value == "manuals"
    assert "0 documents · 0 chunks · all-MiniLM-L6-v2 · chunks of 400 characters" in texts(at)


def test_an_invalid_store_name_is_an_error_not_a_crash(home: Path) -> None:
    at = page()
    at.text_input(key="kn_new_name").input("My Store")
    at.button(key="kn_create").click()
    at = rerun(at)
    assert [e.value for e in at.error] == [
        "Store name 'My Store' is invalid; use 3-63 lowercase letters, digits, '-' or '_', "
        "starting and ending with a letter or digit."
    ]


def test_upload_several_files_reports_each_and_good_ones_land(kb: KnowledgeBase) -> None:
    at = page()
    at.file_uploader(key="kn_upload").set_value(
        [
            ("pack.pdf", make_pdf(["The Ridgeline pack holds 45 liters."]), "application/pdf"),
            ("scan.pdf", make_pdf([None]), "application/pdf"),
            ("latin.txt", "Café crème returns are easy.".encode("cp1252"), "text/plain"),
            ("empty.md", b"", "text/markdown"),
        ]
    )
    at = rerun(at)
    at.button(key="kn_ingest").click()
    at = rerun(at)
    assert [e.value for e in at.success] == ["Added 2 documents (2 chunks): pack.pdf, latin.txt."]
    assert [e.value for e in at.warning] == [
        "latin.txt is not UTF-8; it was read as Windows-1252 (Western European) (check the text "
        "looks right)."
    ]
    assert [e.value for e in at.error] == [
        "scan.pdf has no text layer (scanned images?); run OCR on it or upload the text.",
        "empty.md is empty; there is nothing to ingest.",
    ]
    table = at.dataframe[0].value
    assert list(table["document"]) == ["latin.txt", "pack.pdf", "stove.txt", "tent.md"]
    assert list(table["chunks"]) == [1, 1, 1, 1]


def test_browse_the_chunks_of_a_document(kb: KnowledgeBase) -> None:
    at = page()
    at.selectbox(key="kn_browse_doc").set_value("tent.md")
    at = rerun(at)
    chunks = at.dataframe[1].value
    assert list(chunks["text"]) == ["The Trail Tent is waterproof to 3000 mm."]
    assert list(chunks["position"]) == [0]


def test_query_shows_top_chunks_with_scores(kb: KnowledgeBase) -> None:
    at = page()
    at.text_input(key="kn_query").input("how long to boil water")
    at.slider(key="kn_top_k").set_value(1)
    at = rerun(at)
    [hit] = [m.value for m in at.markdown if m.value.startswith("**[")]
    assert hit.startswith("**[1] stove.txt** · score 0.")
    # st.text keeps a chunk on one unwrapped line; the chunk must wrap, every word shown.
    assert not at.text
    assert "The Ember stove boils a liter in 3.5 minutes." in [m.value for m in at.markdown]


def test_query_results_show_the_whole_multiline_chunk(home: Path) -> None:
    body = "Care guide.\n\n" + "Dry the tent before storing it, every time. " * 15 + "\nLast line."
    KnowledgeBase(load_settings()).ingest("gear", [UploadedFile("care.md", body.encode())])
    at = page()
    at.text_input(key="kn_query").input("how to store the tent")
    at = rerun(at)
    shown = [m.value for m in at.markdown if "Last line" in m.value]
    assert len(shown) == 1 and shown[0].count("Dry the tent before storing it") == 15


def test_delete_needs_a_confirmation_then_removes_the_document(kb: KnowledgeBase) -> None:
    at = page()
    at.selectbox(key="kn_delete_doc").set_value("tent.md")
    at = rerun(at)
    assert at.button(key="kn_delete_doc_btn").disabled
    at.checkbox(key="kn_confirm_doc").check()
    at = rerun(at)
    at.button(key="kn_delete_doc_btn").click()
    at = rerun(at)
    assert [d.source for d in kb.documents("gear")] == ["stove.txt"]
    assert not at.checkbox(key="kn_confirm_doc").value


def test_delete_the_store(kb: KnowledgeBase) -> None:
    at = page()
    at.checkbox(key="kn_confirm_store").check()
    at = rerun(at)
    at.button(key="kn_delete_store").click()
    at = rerun(at)
    assert kb.store_names() == []
    assert "No knowledge stores yet" in texts(at)


def test_load_sample_corpus_in_one_click_says_so_once(home: Path) -> None:
    at = page()
    at.button(key="kn_load_sample").click()
    at = rerun(at)
    assert at.selectbox(key="kn_store").value == "sample-gear"
    [summary] = [e.value for e in at.success]
    assert summary.startswith("Added 23 documents (") and summary.endswith("and 18 more.")
    assert not at.error
    documents = at.dataframe[0].value
    assert "faq.md" in list(documents["document"])
    # Only the PDF has pages; the others show a dash, never "None".
    assert "None" not in documents.astype(str).to_string()
    assert set(documents["pages"]) == {"—", "2"}


def test_one_file_is_one_chunk_not_one_chunks(kb: KnowledgeBase) -> None:
    at = page()
    at.file_uploader(key="kn_upload").set_value(
        [("pack.md", b"The Ridgeline pack holds 45 liters.", "text/markdown")]
    )
    at = rerun(at)
    at.button(key="kn_ingest").click()
    at = rerun(at)
    assert [e.value for e in at.success] == ["Added pack.md (1 chunk)."]


def test_the_uploader_states_the_configured_limit(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    KnowledgeBase(load_settings()).create_store("gear")
    at = page()
    uploader = at.file_uploader(key="kn_upload")
    assert uploader.proto.max_upload_size_mb == 20
    monkeypatch.setenv("PLAYGROUND_MAX_FILE_MB", "5")
    at = page()
    uploader = at.file_uploader(key="kn_upload")
    assert uploader.proto.max_upload_size_mb == 5
    assert "5 MB per file" in uploader.help


def test_chunks_without_a_page_show_no_none(kb: KnowledgeBase) -> None:
    at = page()
    chunks = at.dataframe[1].value
    assert "None" not in chunks.astype(str).to_string()
    assert list(chunks["page"]) == ["—"]
