"""Retrieval quality: recall@3 (and @1) of sample_data/questions.jsonl on the sample corpus.

A question counts as found when one of its source files is among the top k chunks' sources.

    python bench/bench_rag_recall.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.config import load_settings
from playground.rag.sample import load_questions, load_sample_store, recall_at_k


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["PLAYGROUND_HOME"] = home
        settings = load_settings()
        reports = load_sample_store(settings)
        assert all(r.ok for r in reports), [r.error for r in reports if not r.ok]
        print(f"corpus: {len(reports)} documents, {sum(r.chunks for r in reports)} chunks")
        print(f"questions: {len(load_questions())}")
        for k in (1, 3):
            recall, misses = recall_at_k(settings, k=k)
            print(f"recall@{k}: {recall:.2f}")
            for question, found in misses:
                print(f"  missed: {question.question!r} -> {found} (want {question.sources})")


if __name__ == "__main__":
    main()
