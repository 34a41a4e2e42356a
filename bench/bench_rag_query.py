"""Query latency on a 10,000-chunk store, query embedding included: p50 and p95.

The store is filled with random unit vectors written straight to Chroma (embedding 10,000
chunks would take minutes and does not change query cost); each timed query embeds its text
with the real model and searches the store through KnowledgeBase.query.

    python bench/bench_rag_query.py [--chunks 10000] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from playground.config import load_settings
from playground.rag.sample import load_questions
from playground.rag.store import KnowledgeBase


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["PLAYGROUND_HOME"] = home
        kb = KnowledgeBase(load_settings())
        info = kb.create_store("bench")
        collection = kb.client.get_collection("bench", embedding_function=None)
        rng = np.random.default_rng(7)
        dim = 384
        for start in range(0, args.chunks, 1000):
            n = min(1000, args.chunks - start)
            vectors = rng.normal(size=(n, dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            collection.add(
                ids=[f"c{start + i}" for i in range(n)],
                embeddings=vectors,
                documents=[f"chunk {start + i} about gear" for i in range(n)],
                metadatas=[
                    {"source": f"doc{(start + i) // 20}.md", "position": i} for i in range(n)
                ],
            )
        assert kb.get_store("bench").chunks == args.chunks, info
        questions = [q.question for q in load_questions()]
        for question in questions[:10]:  # warm up the model and the index
            kb.query("bench", question, 4)
        latencies = []
        for i in range(args.queries):
            text = f"{questions[i % len(questions)]} ({i})"  # no two queries alike
            start = time.perf_counter()
            hits = kb.query("bench", text, 4)
            latencies.append((time.perf_counter() - start) * 1000)
            assert len(hits) == 4
    latencies.sort()
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    print(f"store: {args.chunks} chunks; {args.queries} queries, top 4, embedding included")
    print(f"p50: {statistics.median(latencies):.1f} ms   p95: {p95:.1f} ms   (goal p95 <= 30 ms)")


if __name__ == "__main__":
    main()
