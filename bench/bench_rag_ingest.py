"""Ingest throughput: chunks/s through KnowledgeBase.ingest vs raw SentenceTransformer.encode.

Both sides embed exactly the same chunks with the same model; the ingest side also loads,
chunks, hashes and writes to Chroma. Prints the ratio (goal: >= 0.85).

    python bench/bench_rag_ingest.py [--docs 60] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.config import load_settings
from playground.rag.chunking import ChunkSettings, chunk_document
from playground.rag.embeddings import ENCODE_BATCH, get_embedder
from playground.rag.loaders import load_document
from playground.rag.sample import corpus_files
from playground.rag.store import KnowledgeBase, UploadedFile


def documents(count: int) -> list[UploadedFile]:
    """`count` distinct documents made from the sample corpus (text files, numbered)."""
    base = [p for p in corpus_files() if p.suffix != ".pdf"]
    files = []
    for i in range(count):
        path = base[i % len(base)]
        body = path.read_bytes() + f"\n\nCopy {i} of this document.".encode()
        files.append(UploadedFile(f"{i:03d}-{path.name}", body))
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    files = documents(args.docs)
    chunking = ChunkSettings()
    texts = [c.text for f in files for c in chunk_document(load_document(f.name, f.data), chunking)]
    model = get_embedder().model
    model.encode(texts[:64], batch_size=ENCODE_BATCH)  # warm up both sides alike
    raw_best = ingest_best = float("inf")
    for round_no in range(args.repeat):
        # Alternate the two sides so that noise from other processes hits both.
        start = time.perf_counter()
        model.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True)
        raw_best = min(raw_best, time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as home:
            os.environ["PLAYGROUND_HOME"] = home
            kb = KnowledgeBase(load_settings())
            start = time.perf_counter()
            reports = kb.ingest(f"bench-{round_no}", files)
            ingest_best = min(ingest_best, time.perf_counter() - start)
            assert sum(r.chunks for r in reports) == len(texts)
    raw_rate, ingest_rate = len(texts) / raw_best, len(texts) / ingest_best
    print(f"chunks: {len(texts)} from {len(files)} documents")
    print(f"raw SentenceTransformer.encode: {raw_rate:.1f} chunks/s")
    print(f"KnowledgeBase.ingest:           {ingest_rate:.1f} chunks/s")
    print(f"ratio: {ingest_rate / raw_rate:.2f} (goal >= 0.85)")


if __name__ == "__main__":
    main()
