"""Groundedness that sees contradictions: AUC on a labelled set over the sample corpus.

bench/data/groundedness-labelled.jsonl holds answers to sample questions, each labelled
`grounded` (a faithful restatement of the corpus) or `contradiction` (the same words with a
negation flipped, a number changed or a name swapped). The sample corpus is ingested into a
fresh store (real Chroma and MiniLM), every question retrieves its top-k chunks, and both the
earlier score (similarity and numbers only, the baseline) and the current one score every answer.
AUC = probability that a grounded answer scores above a contradicting one (ties count half).

    python bench/bench_groundedness.py [--top-k 4] [--show-misses]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data" / "groundedness-labelled.jsonl"


def auc(grounded: list[float], contradicting: list[float]) -> float:
    """P(grounded score > contradicting score), ties counted half (Mann-Whitney U / n1 n2)."""
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(grounded, contradicting, alternative="two-sided").statistic
    return float(u) / (len(grounded) * len(contradicting))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    os.environ["PLAYGROUND_HOME"] = tempfile.mkdtemp(prefix="bench-grounded-")
    from playground.config import load_settings
    from playground.rag.groundedness import Grounding
    from playground.rag.sample import load_sample_store
    from playground.rag.store import KnowledgeBase

    settings = load_settings()
    load_sample_store(settings, "sample")
    kb = KnowledgeBase(settings)
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    scores: dict[str, dict[str, list[float]]] = {
        "baseline": defaultdict(list),
        "current": defaultdict(list),
    }
    by_kind: dict[str, dict[str, list[float]]] = {"baseline": {}, "current": {}}
    misses = []
    start = time.perf_counter()
    for row in rows:
        chunks = [hit.text for hit in kb.query("sample", row["question"], args.top_k)]
        grounding = Grounding(chunks)  # embeds the chunks once for both scores
        for name, consistency in (("baseline", False), ("current", True)):
            grounding.check_consistency = consistency
            value = grounding.score(row["answer"]) or 0.0
            scores[name][row["label"]].append(value)
            key = "grounded" if row["label"] == "grounded" else row["kind"]
            by_kind[name].setdefault(key, []).append(value)
            wrong = (value < 1.0) if row["label"] == "grounded" else (value > 0.0)
            if name == "current" and wrong:
                misses.append((row, grounding.check(row["answer"])))
    seconds = time.perf_counter() - start
    grounded_n = len(scores["current"]["grounded"])
    contra_n = len(scores["current"]["contradiction"])
    print(f"load average {os.getloadavg()[0]:.1f}; {grounded_n} grounded, {contra_n} contradicting")
    figures = {}
    for name in ("baseline", "current"):
        figures[name] = auc(scores[name]["grounded"], scores[name]["contradiction"])
        means = ", ".join(
            f"{kind} {sum(v) / len(v):.2f}" for kind, v in sorted(by_kind[name].items())
        )
        print(f"{name:8s} AUC {figures[name]:.3f}  mean score: {means}")
    print(
        f"AUC current / baseline = {figures['current'] / figures['baseline']:.2f} "
        f"(goal current >= 0.95); {seconds:.1f} s for {len(rows)} answers scored twice"
    )
    if args.show_misses:
        for row, checks in misses:
            print(f"- [{row['label']}/{row['kind']}] {row['answer']}")
            for check in checks:
                print(f"    {check.supported} {check.similarity:.2f} {check.reason}")


if __name__ == "__main__":
    main()
