"""Knowledge stores against real Chroma: embedded PersistentClient and a `chroma run` server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from playground.config import load_settings
from playground.errors import ConfigError, IngestError, StoreNotFoundError
from playground.rag import store as store_module
from playground.rag.chunking import ChunkSettings
from playground.rag.embeddings import DEFAULT_MODEL, resolve_model
from playground.rag.store import KnowledgeBase, UploadedFile, open_client
from tests.rag_fixtures import chroma_server, make_pdf
from tests.support import free_port

TENT = UploadedFile(
    "tent.md",
    b"# Trail Tent\n\nThe Trail Tent is waterproof to 3000 mm and all seams are taped.\n\n"
    b"It sleeps two people and weighs 1.6 kg.",
)
STOVE = UploadedFile(
    "stove.txt", b"The Ember stove boils one liter of water in about three and a half minutes."
)
RETURNS = UploadedFile(
    "returns.md", b"Unused items can be returned within 60 days of delivery for a full refund."
)


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server for the whole session."""
    with chroma_server(tmp_path_factory.mktemp("chroma-server") / "data") as url:
        yield url


@pytest.fixture(params=["embedded", "server"])
def kb(
    request: pytest.FixtureRequest, home: Path, write_config: Callable[[str], Path]
) -> KnowledgeBase:
    """A knowledge base with no stores, on disk under the test home or on the Chroma server."""
    if request.param == "server":
        url = request.getfixturevalue("chroma_url")
        write_config(f'[vector_store]\nurl = "{url}"\n')
        client = open_client(load_settings())
        for collection in client.list_collections():
            client.delete_collection(collection.name)
    return KnowledgeBase(load_settings())


def test_good_files_land_while_bad_ones_are_reported(kb: KnowledgeBase) -> None:
    reports = kb.ingest("gear", [TENT, UploadedFile("broken.pdf", b"garbage"), STOVE])
    assert [(r.source, r.status) for r in reports] == [
        ("tent.md", "added"),
        ("broken.pdf", "failed"),
        ("stove.txt", "added"),
    ]
    assert reports[1].error == (
        "broken.pdf is not a PDF (no PDF header); export it again as PDF or upload it as text."
    )
    assert [(d.source, d.chunks) for d in kb.documents("gear")] == [
        ("stove.txt", 1),
        ("tent.md", 1),
    ]


def test_reuploading_the_same_file_changes_nothing(kb: KnowledgeBase) -> None:
    kb.ingest("gear", [TENT, STOVE])
    before = kb.chunks("gear")
    reports = kb.ingest("gear", [TENT])
    assert [(r.status, r.chunks) for r in reports] == [("unchanged", 1)]
    assert kb.chunks("gear") == before


def test_an_edited_file_replaces_its_old_chunks(kb: KnowledgeBase) -> None:
    kb.ingest("gear", [TENT, STOVE])
    edited = UploadedFile("tent.md", b"The Trail Tent now ships with aluminum stakes.")
    assert [r.status for r in kb.ingest("gear", [edited])] == ["replaced"]
    texts = [c.text for c in kb.chunks("gear", "tent.md")]
    assert texts == ["The Trail Tent now ships with aluminum stakes."]
    assert kb.get_store("gear").chunks == 2


def test_a_failed_write_leaves_the_previous_version_whole(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb.ingest("gear", [TENT])
    before = kb.chunks("gear")
    from chromadb.api.models.Collection import Collection

    real_upsert = Collection.upsert

    def broken_upsert(self: Collection, **kwargs: object) -> None:
        real_upsert(self, **kwargs)  # the new chunks land, then the write fails
        raise RuntimeError("disk full")

    edited = UploadedFile("tent.md", b"A new version that must not half-land.")
    with monkeypatch.context() as patch:
        patch.setattr(Collection, "upsert", broken_upsert)
        [report] = kb.ingest("gear", [edited, STOVE])[:1]
    assert report.error == (
        "tent.md could not be stored (RuntimeError: disk full); the store is unchanged, try again."
    )
    assert kb.chunks("gear") == before


def test_query_returns_the_best_chunks_first_with_their_source(kb: KnowledgeBase) -> None:
    kb.ingest("gear", [TENT, STOVE, RETURNS])
    hits = kb.query("gear", "How long does it take to boil water?", k=2)
    assert hits[0].source == "stove.txt"
    assert len(hits) == 2
    assert hits[0].score is not None and hits[1].score is not None
    assert 1.0 >= hits[0].score > hits[1].score


def test_query_asks_for_no_more_chunks_than_the_store_has(kb: KnowledgeBase) -> None:
    kb.ingest("gear", [TENT])
    assert len(kb.query("gear", "tent", k=10)) == 1


def test_query_on_a_missing_store_says_how_to_create_it(kb: KnowledgeBase) -> None:
    with pytest.raises(StoreNotFoundError) as caught:
        kb.query("nothing-here", "tent", k=2)
    assert str(caught.value) == (
        "Knowledge store 'nothing-here' does not exist; create it with "
        "`playground rag ingest --store nothing-here FILE...` or on the Knowledge page."
    )


def test_store_refuses_another_embedding_model(kb: KnowledgeBase) -> None:
    kb.ingest("gear", [TENT])
    with pytest.raises(IngestError) as caught:
        kb.ingest("gear", [STOVE], embedding_model="/models/other-model")
    assert str(caught.value) == (
        "Store 'gear' was built with embedding model 'all-MiniLM-L6-v2', not "
        "'/models/other-model'; use that model or a new store."
    )
    assert [d.source for d in kb.documents("gear")] == ["tent.md"]


def test_store_remembers_chunk_settings_and_model(kb: KnowledgeBase) -> None:
    kb.create_store("gear", ChunkSettings(chunk_size=200, chunk_overlap=20))
    kb.ingest("gear", [UploadedFile("long.txt", b"A sentence about tents and poles. " * 20)])
    info = kb.get_store("gear")
    assert (info.embedding_model, info.chunk_size, info.chunk_overlap) == (DEFAULT_MODEL, 200, 20)
    assert all(len(c.text) <= 200 for c in kb.chunks("gear"))
    assert info.chunks == len(kb.chunks("gear")) > 3


def test_delete_a_document_then_the_store(kb: KnowledgeBase) -> None:
    kb.ingest("gear", [TENT, STOVE])
    assert kb.delete_document("gear", "tent.md") == 1
    assert [d.source for d in kb.documents("gear")] == ["stove.txt"]
    assert all(h.source == "stove.txt" for h in kb.query("gear", "waterproof tent", k=4))
    kb.delete_store("gear")
    assert kb.store_names() == []
    with pytest.raises(StoreNotFoundError):
        kb.documents("gear")


def test_pdf_chunks_keep_their_page_numbers(kb: KnowledgeBase) -> None:
    pdf = make_pdf(["Page one covers tent care.", None, "Page three covers stove safety."])
    [report] = kb.ingest("gear", [UploadedFile("care.pdf", pdf)])
    assert report.status == "added"
    assert [(c.page, c.position) for c in kb.chunks("gear", "care.pdf")] == [(1, 0), (3, 1)]
    [doc] = kb.documents("gear")
    assert (doc.chunks, doc.pages) == (2, 2)


def test_progress_moves_forward_and_ends_at_one(kb: KnowledgeBase) -> None:
    seen: list[float] = []
    kb.ingest("gear", [TENT, STOVE, RETURNS], progress=lambda f, _m: seen.append(f))
    assert seen == sorted(seen)
    assert seen[-1] == 1.0 and seen[0] == 0.0


def test_list_stores_shows_model_and_size(kb: KnowledgeBase) -> None:
    kb.ingest("gear", [TENT, STOVE])
    kb.ingest("policies", [RETURNS])
    assert [(s.name, s.chunks, s.embedding_model) for s in kb.list_stores()] == [
        ("gear", 2, DEFAULT_MODEL),
        ("policies", 1, DEFAULT_MODEL),
    ]


@pytest.mark.parametrize(
    "name", ["ab", "Gear", "-gear", "gear-", "my store", "gear/../x", "x" * 64, ""]
)
def test_invalid_store_names_are_refused_with_the_rule(home: Path, name: str) -> None:
    with pytest.raises(IngestError) as caught:
        KnowledgeBase(load_settings()).ingest(name, [TENT])
    assert str(caught.value) == (
        f"Store name '{name}' is invalid; use 3-63 lowercase letters, digits, '-' or '_', "
        "starting and ending with a letter or digit."
    )


def test_size_limit_comes_from_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_MAX_FILE_MB", "0.0001")
    [report] = KnowledgeBase(load_settings()).ingest("gear", [TENT])
    assert report.error is not None and "over the 104 B limit" in report.error


def test_size_limit_comes_from_playground_toml(
    home: Path, write_config: Callable[[str], Path]
) -> None:
    write_config("[knowledge]\nmax_file_mb = 0.00005\n")
    [report] = KnowledgeBase(load_settings()).ingest("gear", [TENT])
    assert report.error is not None and "over the 52 B limit" in report.error


def test_unreachable_server_is_one_sentence_naming_the_url(
    home: Path, write_config: Callable[[str], Path]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    write_config(f'[vector_store]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as caught:
        KnowledgeBase(load_settings()).store_names()
    assert str(caught.value).startswith(f"Cannot reach the Chroma server at {url} (")
    assert str(caught.value).endswith(
        "start it with `chroma run` or fix [vector_store] url in playground.toml."
    )


def test_a_store_built_with_another_model_is_queried_with_that_model(
    home: Path, tmp_path: Path
) -> None:
    other = tmp_path / "my-minilm"
    other.symlink_to(resolve_model(DEFAULT_MODEL), target_is_directory=True)
    kb = KnowledgeBase(load_settings())
    kb.ingest("custom", [TENT, STOVE], embedding_model=str(other))
    assert kb.get_store("custom").embedding_model == str(other)
    assert kb.query("custom", "boil water", k=1)[0].source == "stove.txt"
    assert str(other) in store_module.get_embedder.__globals__["_cache"]


def test_two_uploads_with_one_name_never_merge_into_one_document(kb: KnowledgeBase) -> None:
    first = UploadedFile("readme.txt", b"The first readme explains the tent.")
    second = UploadedFile("readme.txt", b"The second readme explains the stove.")
    reports = kb.ingest("gear", [first, second, UploadedFile("readme.txt", first.data)])
    assert [(r.status, r.error) for r in reports] == [
        ("added", None),
        (
            "failed",
            "readme.txt is in this upload twice with different contents; rename one of the "
            "two files and add it again.",
        ),
        ("unchanged", None),
    ]
    assert [c.text for c in kb.chunks("gear")] == ["The first readme explains the tent."]
