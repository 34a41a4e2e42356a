"""`playground rag ...`: exit codes, per-file reports and one-line errors."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from playground.cli import main
from tests.rag_fixtures import make_pdf


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


_PROGRESS = re.compile(r"^ *\d+% .* \(\d+ s\)$")


def said(result: Result) -> list[str]:
    """stderr's warnings and errors, without the progress lines a slow ingest adds."""
    return [line for line in result.stderr.splitlines() if not _PROGRESS.match(line)]


@pytest.fixture
def docs(home: Path) -> Path:
    """A folder of documents: two good ones, a nested PDF, and a fake PDF."""
    folder = Path("docs")
    (folder / "manuals").mkdir(parents=True)
    (folder / "tent.md").write_text("The Trail Tent is waterproof to 3000 mm.", encoding="utf-8")
    (folder / "stove.txt").write_text("The Ember stove boils a liter in 3.5 minutes.")
    (folder / "manuals" / "pack.pdf").write_bytes(make_pdf(["The Ridgeline pack holds 45 L."]))
    (folder / "notes.docx").write_bytes(b"ignored: not a supported type")
    return folder


def test_ingest_reports_each_file_and_recurses_into_folders(docs: Path) -> None:
    result = invoke("rag", "ingest", "--store", "gear", str(docs))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "added     manuals/pack.pdf (1 chunk)",
        "added     stove.txt (1 chunk)",
        "added     tent.md (1 chunk)",
    ]
    again = invoke("rag", "ingest", "--store", "gear", str(docs))
    assert "unchanged manuals/pack.pdf (1 chunk)" in again.stdout


def test_ingest_exits_1_when_a_file_fails_but_keeps_the_good_ones(docs: Path) -> None:
    (docs / "fake.pdf").write_bytes(b"just text")
    result = invoke(
        "rag", "ingest", "--store", "gear", str(docs / "tent.md"), str(docs / "fake.pdf")
    )
    assert result.exit_code == 1
    assert result.stdout == "added     tent.md (1 chunk)\n"
    assert said(result) == [
        "Error: fake.pdf is not a PDF (no PDF header); "
        "export it again as PDF or upload it as text.",
        "1 of 2 files failed; the others are in 'gear'.",
    ]
    listed = json.loads(invoke("rag", "list", "--json").stdout)
    assert [d["source"] for d in listed[0]["documents"]] == ["tent.md"]


def test_ingest_json_and_the_size_limit_flag(docs: Path) -> None:
    result = invoke(
        "rag", "ingest", "--store", "gear", "--max-mb", "0.00001", "--json", str(docs / "tent.md")
    )
    assert result.exit_code == 1
    [report] = json.loads(result.stdout)["files"]
    assert report["status"] == "failed"
    assert report["error"].startswith("tent.md is 40 B, over the 10 B limit")


def test_query_names_the_source_of_each_hit(docs: Path) -> None:
    invoke("rag", "ingest", "--store", "gear", str(docs))
    result = invoke(
        "rag", "query", "--store", "gear", "how fast does the stove boil water", "-k", "2"
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[1] ") and "stove.txt" in lines[0]
    assert lines[1] == "The Ember stove boils a liter in 3.5 minutes."
    data = json.loads(invoke("rag", "query", "--store", "gear", "backpack volume", "--json").stdout)
    assert data["hits"][0]["source"] == "manuals/pack.pdf" and data["hits"][0]["page"] == 1
    assert len(data["hits"]) == 3


def test_query_on_a_missing_store_is_one_error_line(home: Path) -> None:
    result = invoke("rag", "query", "--store", "nope", "tent")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Knowledge store 'nope' does not exist; create it with "
        "`playground rag ingest --store nope FILE...` or on the Knowledge page.\n"
    )


def test_invalid_store_name_is_one_error_line(docs: Path) -> None:
    result = invoke("rag", "ingest", "--store", "My Store", str(docs / "tent.md"))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Store name 'My Store' is invalid; use 3-63 lowercase letters, digits, '-' or '_', "
        "starting and ending with a letter or digit.\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["rag", "query", "--store", "gear", "tent", "-k", "0"],
        ["rag", "ingest", "--store", "gear", "missing-file.txt"],
        ["rag", "ingest", "--store", "gear"],
        ["rag", "query", "tent"],
    ],
)
def test_bad_flags_exit_2(home: Path, args: list[str]) -> None:
    assert invoke(*args).exit_code == 2


def test_list_and_delete(docs: Path) -> None:
    assert invoke("rag", "list").stdout == (
        "No knowledge stores yet; create one with `playground rag ingest`.\n"
    )
    invoke("rag", "ingest", "--store", "gear", str(docs))
    assert invoke("rag", "list").stdout == (
        "gear: 3 documents, 3 chunks, all-MiniLM-L6-v2, chunks 800/100\n"
    )
    removed = invoke("rag", "delete", "--store", "gear", "--document", "tent.md")
    assert removed.stdout == "Deleted tent.md (1 chunk) from 'gear'.\n"
    missing = invoke("rag", "delete", "--store", "gear", "--document", "tent.md")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: Store 'gear' has no document 'tent.md'")
    assert invoke("rag", "delete", "--store", "gear").stdout == "Deleted store 'gear'.\n"
    assert invoke("rag", "delete", "--store", "gear").exit_code == 1


def test_model_mismatch_is_refused(docs: Path) -> None:
    invoke("rag", "ingest", "--store", "gear", str(docs / "tent.md"))
    result = invoke(
        "rag",
        "ingest",
        "--store",
        "gear",
        "--embedding-model",
        "other/model",
        str(docs / "stove.txt"),
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Store 'gear' was built with embedding model 'all-MiniLM-L6-v2', not "
        "'other/model'; use that model or a new store.\n"
    )


def test_chunk_flags_set_a_new_store(docs: Path) -> None:
    invoke(
        "rag",
        "ingest",
        "--store",
        "gear",
        "--chunk-size",
        "300",
        "--chunk-overlap",
        "30",
        str(docs),
    )
    assert json.loads(invoke("rag", "list", "--json").stdout)[0]["chunk_size"] == 300
    bad = invoke(
        "rag",
        "ingest",
        "--store",
        "other",
        "--chunk-size",
        "300",
        "--chunk-overlap",
        "200",
        str(docs),
    )
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: Chunk settings 300/200 are invalid")


def test_run_with_a_store_retrieves_once_and_records_chunks_and_groundedness(
    docs: Path,
) -> None:
    invoke("rag", "ingest", "--store", "gear", str(docs))
    result = invoke(
        "run", "--model", "local/smollm2-135m-instruct", "--store", "gear", "--top-k", "2",
        "--system", "Answer only from the context.",
        "--prompt", "{{ question }}\n\nContext:\n{{ context }}",
        "--var", "question=How fast does the Ember stove boil water?",
        "--param", "max_tokens=16", "--param", "temperature=0", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.stdout)["results"]
    assert len(answer["chunk_ids"]) == 2
    assert 0.0 <= answer["groundedness"] <= 1.0
    assert "The Ember stove boils a liter in 3.5 minutes." in answer["messages"][-1]["content"]


def test_run_with_a_missing_store_sends_nothing(home: Path) -> None:
    result = CliRunner().invoke(
        main, ["run", "--model", "local/smollm2-135m-instruct", "--store", "nope",
               "--prompt", "{{ question }} {{ context }}", "--var", "question=hi"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "nope" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_files_with_one_base_name_stay_two_documents(home: Path) -> None:
    for folder, text in (("d1", "The first readme."), ("d2", "The second readme.")):
        Path(folder).mkdir()
        Path(folder, "readme.txt").write_text(text, encoding="utf-8")
    both = invoke("rag", "ingest", "--store", "gear", "d1/readme.txt", "d2/readme.txt")
    assert both.stdout.splitlines() == [
        "added     d1/readme.txt (1 chunk)",
        "added     d2/readme.txt (1 chunk)",
    ]
    Path("d2", "readme.txt").write_text("The second readme, edited.", encoding="utf-8")
    again = invoke("rag", "ingest", "--store", "gear", "d1", "d2")
    assert again.stdout.splitlines() == [
        "unchanged d1/readme.txt (1 chunk)",
        "replaced  d2/readme.txt (1 chunk)",
    ]
    listed = json.loads(invoke("rag", "list", "--json").stdout)[0]["documents"]
    assert [(d["source"], d["chunks"]) for d in listed] == [
        ("d1/readme.txt", 1),
        ("d2/readme.txt", 1),
    ]


def test_links_that_leave_the_folder_are_skipped_and_named(home: Path) -> None:
    outside = Path("outside")
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault code is 4711.", encoding="utf-8")
    (outside / "more").mkdir()
    (outside / "more" / "keys.md").write_text("Private keys live here.", encoding="utf-8")
    tree = Path("tree")
    tree.mkdir()
    (tree / "guide.md").write_text("Pitch the tent facing away from the wind.", encoding="utf-8")
    (tree / "passwd.txt").symlink_to(outside.resolve() / "secret.txt")
    (tree / "elsewhere").symlink_to(outside.resolve() / "more", target_is_directory=True)
    (tree / "same-guide.md").symlink_to("guide.md")  # stays inside: kept
    result = invoke("rag", "ingest", "--store", "gear", "tree")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "added     guide.md (1 chunk)",
        "added     same-guide.md (1 chunk)",
    ]
    assert said(result) == [
        f"Warning: Skipped tree/elsewhere: it links to {outside.resolve() / 'more'}, outside "
        "tree; copy what you need into the folder to ingest it.",
        f"Warning: Skipped tree/passwd.txt: it links to {outside.resolve() / 'secret.txt'}, "
        "outside tree; copy what you need into the folder to ingest it.",
    ]
    hits = json.loads(invoke("rag", "query", "--store", "gear", "vault code", "--json").stdout)
    assert "4711" not in json.dumps(hits)


def test_a_long_ingest_shows_its_progress_on_stderr(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rag = importlib.import_module("playground.cli.rag")  # the module, not its click group
    # Make the three-file ingest count as long; stdout stays the per-file report.
    monkeypatch.setattr(rag, "PROGRESS_AFTER_S", 0.0)
    monkeypatch.setattr(rag, "LOG_LINE_EVERY_S", 0.0)
    result = invoke("rag", "ingest", "--store", "gear", str(docs))
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()
    assert any("Embedded 3 of 3 chunks" in line for line in progress), progress
    assert progress[-1].startswith("100% Done (")
    assert len(result.stdout.splitlines()) == 3


TOPICS = [
    "tent poles",
    "water filters",
    "trail shoes",
    "sleeping bags",
    "camp stoves",
    "headlamps",
    "rain jackets",
    "trekking poles",
    "dry bags",
    "climbing ropes",
    "snowshoes",
    "kayak paddles",
    "bike lights",
    "map cases",
    "first aid kits",
    "bear canisters",
    "hammocks",
    "gaiters",
    "compasses",
    "fire starters",
    "thermal mugs",
    "solar chargers",
    "ice axes",
    "camp chairs",
]


SMALL_CHUNKS = ("--chunk-size", "100", "--chunk-overlap", "0")  # one sentence, one chunk


def write_library(folder: Path) -> dict[str, list[str]]:
    """One document per topic in nested folders, several chunks each; name -> its sentences."""
    written: dict[str, list[str]] = {}
    for i, topic in enumerate(TOPICS):
        sentences = [
            f"Our guide to {topic} starts with how to choose {topic} for a first trip.",
            f"Care for {topic} after every outing: clean them, dry them and store them loose.",
            f"Repairs to {topic} are free for two years at any Northwind store near you.",
        ][: 1 + i % 3]
        name = f"shelf-{i % 4}/{i:02d}-{topic.replace(' ', '-')}.md"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("\n\n".join(sentences), encoding="utf-8")
        written[name] = sentences
    return written


def stored_chunks(store: str) -> dict[str, list[tuple[str, str]]]:
    """Each document's (id, text) pairs in reading order, through `rag list` and `rag query`."""
    from playground.config import load_settings
    from playground.rag.store import KnowledgeBase

    by_source: dict[str, list[tuple[str, str]]] = {}
    for chunk in KnowledgeBase(load_settings()).chunks(store):
        by_source.setdefault(chunk.source, []).append((chunk.id, chunk.text))
    return by_source


def test_many_documents_in_one_ingest_are_all_queryable_with_their_sources(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.rag import store as store_module

    library = Path("library")
    written = write_library(library)
    # Small groups and batches: documents straddle encode groups and Chroma writes, as the
    # chunks of hundreds of documents do at the real sizes.
    monkeypatch.setattr(store_module, "ENCODE_GROUP", 5)
    monkeypatch.setattr(store_module, "WRITE_BATCH", 7)
    result = invoke("rag", "ingest", "--store", "shelf", *SMALL_CHUNKS, str(library))
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.splitlines()) == sorted(
        f"added     {name} ({len(s)} chunk{'s' if len(s) > 1 else ''})"
        for name, s in written.items()
    )
    together = stored_chunks("shelf")
    assert {source: [text for _, text in rows] for source, rows in together.items()} == written
    for name, sentences in written.items():
        hits = json.loads(
            invoke("rag", "query", "--store", "shelf", "-k", "1", sentences[-1], "--json").stdout
        )["hits"]
        assert hits[0]["source"] == name, (name, hits)
    # One document per ingest gives the very same chunks and ids: batching changes nothing.
    from playground.config import load_settings
    from playground.rag.chunking import ChunkSettings
    from playground.rag.store import KnowledgeBase, UploadedFile

    kb = KnowledgeBase(load_settings())
    some = sorted(written)[::8]
    for name in some:
        upload = UploadedFile(name, (library / name).read_bytes())
        kb.ingest("one-by-one", [upload], chunking=ChunkSettings(chunk_size=100, chunk_overlap=0))
    assert stored_chunks("one-by-one") == {name: together[name] for name in some}
    again = invoke("rag", "ingest", "--store", "shelf", *SMALL_CHUNKS, str(library))
    assert {line.split()[0] for line in again.stdout.splitlines()} == {"unchanged"}


def test_bad_files_among_many_good_ones_are_one_sentence_each(home: Path) -> None:
    library = Path("library")
    written = write_library(library)
    (library / "shelf-1" / "empty.txt").write_bytes(b"")
    (library / "shelf-2" / "fake.pdf").write_bytes(b"just text")
    (library / "shelf-3" / "blob.txt").write_bytes(bytes(range(256)) * 8)
    (library / "huge.md").write_text("Far too long. " * 20000, encoding="utf-8")
    result = invoke("rag", "ingest", "--store", "shelf", "--max-mb", "0.1", str(library))
    assert result.exit_code == 1
    assert sorted(line.split()[1] for line in result.stdout.splitlines()) == sorted(written)
    assert said(result) == [
        "Error: huge.md is 273.4 KB, over the 102.4 KB limit; split it into smaller files or "
        "raise the limit.",
        "Error: shelf-1/empty.txt is empty; there is nothing to ingest.",
        "Error: shelf-2/fake.pdf is not a PDF (no PDF header); export it again as PDF or upload "
        "it as text.",
        "Error: shelf-3/blob.txt looks like binary data, not text; upload a real text, Markdown, "
        "HTML or PDF file.",
        f"4 of {len(written) + 4} files failed; the others are in 'shelf'.",
    ]
    assert set(stored_chunks("shelf")) == set(written)


def test_a_long_ingest_of_many_documents_reports_as_it_embeds(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playground.rag import store as store_module

    rag = importlib.import_module("playground.cli.rag")
    library = Path("library")
    written = write_library(library)
    total = sum(len(s) for s in written.values())
    monkeypatch.setattr(rag, "PROGRESS_AFTER_S", 0.0)  # count this ingest as a long one
    monkeypatch.setattr(rag, "LOG_LINE_EVERY_S", 0.0)
    monkeypatch.setattr(store_module, "ENCODE_GROUP", 8)
    result = invoke("rag", "ingest", "--store", "shelf", *SMALL_CHUNKS, str(library))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "\r" not in result.stderr  # not a terminal: plain lines a log keeps
    embedded = [int(line.split("Embedded ")[1].split()[0]) for line in lines if "Embedded" in line]
    assert embedded == sorted(embedded) and embedded[-1] == total
    assert len(set(embedded)) >= 3, lines  # it moved while it worked, not only at the end
    shares = [int(line.split("%")[0]) for line in lines]
    assert shares == sorted(shares) and lines[-1].startswith("100% Done (")
    assert len(result.stdout.splitlines()) == len(written)
