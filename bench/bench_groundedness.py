"""Groundedness that sees contradictions: AUC on labelled sets over the sample corpus.

bench/data/groundedness-labelled.jsonl holds answers to sample questions, each labelled
`grounded` (a faithful restatement of the corpus) or `contradiction` (the same words with a
negation flipped, a number changed or a name swapped); the rules were tuned on it.
bench/data/groundedness-heldout.jsonl holds answers to *other* questions about the same corpus,
written before the tuning, to show whether the rules carry over. The sample corpus is ingested
into a fresh store (real Chroma and MiniLM), every question retrieves its top-k chunks, and both
the earlier score (similarity and numbers only, the baseline) and the current one score every
answer. AUC = probability that a grounded answer scores above a contradicting one (ties half).

    python bench/bench_groundedness.py [--top-k 4] [--show-misses] [--only tuning|heldout]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETS = {
    "tuning": ROOT / "bench" / "data" / "groundedness-labelled.jsonl",
    "heldout": ROOT / "bench" / "data" / "groundedness-heldout.jsonl",
}


class MemoEmbedder:
    """The shared embedder, remembering every text it embedded.

    Questions retrieve the same few corpus chunks again and again; re-embedding their ~80
    sentences and clauses for every answer took ~90% of the bench's time (17 minutes at
    load 5). Vectors are the same, so the figures are too.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.memo: dict[str, Any] = {}

    def encode(self, texts: Sequence[str]) -> Any:
        """Rows for texts, embedding only the ones not seen before."""
        import numpy as np

        new = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if new:
            self.memo.update(zip(new, self.inner.encode(new), strict=True))
        return np.vstack([self.memo[t] for t in texts])


def auc(grounded: list[float], contradicting: list[float]) -> float:
    """P(grounded score > contradicting score), ties counted half (Mann-Whitney U / n1 n2)."""
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(grounded, contradicting, alternative="two-sided").statistic
    return float(u) / (len(grounded) * len(contradicting))


def run_set(name: str, kb: Any, embedder: MemoEmbedder, top_k: int, show_misses: bool) -> None:
    """Score one labelled file with both scores and print AUC, means and (optionally) misses."""
    from playground.rag.groundedness import Grounding

    path = SETS[name]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    scores: dict[str, dict[str, list[float]]] = {
        "baseline": defaultdict(list),
        "current": defaultdict(list),
    }
    by_kind: dict[str, dict[str, list[float]]] = {"baseline": {}, "current": {}}
    misses = []
    timed = 0.0
    start = time.perf_counter()
    for row in rows:
        chunks = [hit.text for hit in kb.query("sample", row["question"], top_k)]
        grounding = Grounding(chunks, embedder=embedder)  # type: ignore[arg-type]
        for score_name, consistency in (("baseline", False), ("current", True)):
            grounding.check_consistency = consistency
            # timed with the plain embedder: the app embeds every answer afresh
            grounding.embedder = embedder.inner if consistency else embedder
            began = time.perf_counter()
            value = grounding.score(row["answer"]) or 0.0
            if consistency:
                timed += time.perf_counter() - began
            scores[score_name][row["label"]].append(value)
            key = "grounded" if row["label"] == "grounded" else row["kind"]
            by_kind[score_name].setdefault(key, []).append(value)
            wrong = (value < 1.0) if row["label"] == "grounded" else (value > 0.0)
            if score_name == "current" and wrong:
                misses.append((row, grounding.check(row["answer"])))
    seconds = time.perf_counter() - start
    grounded_n = len(scores["current"]["grounded"])
    contra_n = len(scores["current"]["contradiction"])
    print(f"\n{name} ({path.name}): {grounded_n} grounded, {contra_n} contradicting")
    figures = {}
    for score_name in ("baseline", "current"):
        figures[score_name] = auc(
            scores[score_name]["grounded"], scores[score_name]["contradiction"]
        )
        means = ", ".join(
            f"{kind} {sum(v) / len(v):.2f}" for kind, v in sorted(by_kind[score_name].items())
        )
        print(f"{score_name:8s} AUC {figures[score_name]:.3f}  mean score: {means}")
    print(
        f"AUC current / baseline = {figures['current'] / figures['baseline']:.2f} "
        f"(goal current >= 0.95); {seconds:.1f} s for {len(rows)} answers scored twice; "
        f"current score {1000 * timed / len(rows):.1f} ms per answer (chunks embedded already)"
    )
    if show_misses:
        for row, checks in misses:
            print(f"- [{row['label']}/{row['kind']}] {row['answer']}")
            for check in checks:
                print(f"    {check.supported} {check.similarity:.2f} {check.reason}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--only", choices=sorted(SETS))
    args = parser.parse_args()
    os.environ["PLAYGROUND_HOME"] = tempfile.mkdtemp(prefix="bench-grounded-")
    from playground.config import load_settings
    from playground.rag.embeddings import get_embedder
    from playground.rag.sample import load_sample_store
    from playground.rag.store import KnowledgeBase

    started = time.perf_counter()
    settings = load_settings()
    load_sample_store(settings, "sample")
    kb = KnowledgeBase(settings)
    print(f"sample corpus ingested in {time.perf_counter() - started:.1f} s")
    embedder = MemoEmbedder(get_embedder())
    for name in [args.only] if args.only else list(SETS):
        run_set(name, kb, embedder, args.top_k, args.show_misses)
    print(f"\nload average {os.getloadavg()[0]:.1f}; {time.perf_counter() - started:.1f} s in all")


if __name__ == "__main__":
    main()
