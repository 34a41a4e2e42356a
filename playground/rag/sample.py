"""The sample corpus (Northwind Trail Gear manuals, policies, FAQ) as a store in one call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from playground.config import Settings
from playground.errors import ConfigError
from playground.rag.store import FileReport, KnowledgeBase, ProgressCallback, UploadedFile

SAMPLE_STORE = "sample-gear"
# sample_data/ sits beside the package in the checkout (and in an editable install).
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"


@dataclass(frozen=True)
class SampleQuestion:
    """A question of the sample set and the files that answer it."""

    question: str
    sources: list[str]


def corpus_files(sample_dir: Path = SAMPLE_DIR) -> list[Path]:
    """The sample documents, sorted by name."""
    corpus = sample_dir / "corpus"
    if not corpus.is_dir():
        raise ConfigError(
            f"The sample corpus is missing at {corpus}; run from a checkout of Prompt Playground."
        )
    return sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.startswith("."))


def load_questions(sample_dir: Path = SAMPLE_DIR) -> list[SampleQuestion]:
    """The sample questions with the source files that answer each one."""
    lines = (sample_dir / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [
        SampleQuestion(row["question"], list(row["sources"]))
        for row in (json.loads(line) for line in lines if line.strip())
    ]


def load_sample_store(
    settings: Settings, name: str = SAMPLE_STORE, progress: ProgressCallback | None = None
) -> list[FileReport]:
    """Ingest the sample corpus into store `name` (unchanged files are skipped)."""
    uploads = [UploadedFile(path.name, path.read_bytes()) for path in corpus_files()]
    return KnowledgeBase(settings).ingest(name, uploads, progress=progress)


def recall_at_k(
    settings: Settings, name: str = SAMPLE_STORE, k: int = 3
) -> tuple[float, list[tuple[SampleQuestion, list[str]]]]:
    """Share of sample questions with an answering file among the top k hits, and the misses."""
    kb = KnowledgeBase(settings)
    questions = load_questions()
    misses: list[tuple[SampleQuestion, list[str]]] = []
    for item in questions:
        found = [hit.source for hit in kb.query(name, item.question, k)]
        if not set(found) & set(item.sources):
            misses.append((item, found))
    return 1 - len(misses) / len(questions), misses
