"""Scorer benchmarks: similarity throughput against raw encode, and a 100,000-row dataset's memory.

similarity: N (answer, reference) pairs made from sample-corpus sentences. The baseline is
`SentenceTransformer.encode` on the same 2N texts in one call (batch 64, normalised), in this
process; the scorer runs as the batch runner runs it, `score_one` from --threads threads, and
once more from one thread. Goal: scorer >= 0.85 of raw pairs per second.

memory: a 100,000-row JSONL (question, expected, sources) is imported as a dataset and every
row is read through `iter_rows`, the batch runner's path, in a fresh process; the baseline is
`pandas.read_json(lines=True)` of the whole file in another fresh process. Both report peak RSS
(VmHWM) added over the process after imports. Goal: streamed <= 200 MB added.

    python bench/bench_eval_scorers.py [--pairs 2000] [--threads 16] [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMORY_CHILD = """
import sys, json
sys.path.insert(0, {root!r})
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) / 1024
import pandas
from playground.config import load_settings
from playground.eval.datasets import Datasets, iter_rows
before = hwm()
if {mode!r} == 'streamed':
    info = Datasets(load_settings()).import_file(__import__('pathlib').Path({path!r}))
    rows = sum(1 for _ in iter_rows(info))
else:
    rows = len(pandas.read_json({path!r}, lines=True))
print(json.dumps({{'rows': rows, 'added_mb': hwm() - before}}))
"""


def texts(pairs: int) -> list[tuple[str, str]]:
    """(answer, reference) pairs: neighbouring sentences of the sample corpus, varied."""
    from playground.rag.chunking import split_sentences

    sentences = []
    for path in sorted((ROOT / "sample_data" / "corpus").glob("*.md")):
        sentences += [s for s in split_sentences(path.read_text(encoding="utf-8")) if len(s) > 30]
    return [
        (f"{sentences[i % len(sentences)]} (#{i})", sentences[(i + 1) % len(sentences)])
        for i in range(pairs)
    ]


def bench_similarity(pairs: int, threads: int) -> None:
    from playground.config import load_settings
    from playground.eval import scorers
    from playground.eval.spec import EvaluationSpec
    from playground.models.base import ModelParams
    from playground.rag.embeddings import get_embedder
    from playground.records import Result, Run

    data = texts(pairs)
    model = get_embedder().model
    flat = [t for pair in data for t in pair]
    model.encode(flat[:64], batch_size=64, normalize_embeddings=True)  # warm up
    start = time.perf_counter()
    model.encode(flat, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    raw = pairs / (time.perf_counter() - start)

    spec = EvaluationSpec.model_validate(
        {"dataset": "d", "scorers": [{"type": "similarity", "reference": "{{ expected }}"}]}
    )
    settings = load_settings()
    contexts = [
        scorers.ScoreContext(
            row={"expected": ref},
            result=Result(model_id="x/y", messages=[], params=ModelParams(), text=answer),
            run=Run(),
            settings=settings,
        )
        for answer, ref in data
    ]
    scorer = spec.scorers[0]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        verdicts = list(pool.map(lambda ctx: scorers.score_one(scorer, ctx), contexts))
    threaded = pairs / (time.perf_counter() - start)
    assert all(v.score is not None for v in verdicts)
    sample = contexts[: max(pairs // 10, 50)]
    start = time.perf_counter()
    for ctx in sample:
        scorers.score_one(scorer, ctx)
    single = len(sample) / (time.perf_counter() - start)
    print(
        f"similarity: raw encode {raw:.0f} pairs/s; scorer from {threads} threads {threaded:.0f} "
        f"pairs/s, ratio {threaded / raw:.2f} (goal >= 0.85); scorer from one thread "
        f"{single:.0f} pairs/s, ratio {single / raw:.2f}"
    )


def bench_memory(rows: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-eval-mem-"))
    path = work / "big.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            row = {
                "question": f"How many days do I have to return item number {i}?",
                "expected": f"Unused items can be returned within 60 days ({i}).",
                "sources": ["returns-policy.md"],
            }
            handle.write(json.dumps(row) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLAYGROUND_HOME": str(work / "home")}
    figures = {}
    for mode in ("whole", "streamed"):
        code = MEMORY_CHILD.format(root=str(ROOT), mode=mode, path=str(path))
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=work, capture_output=True, text=True
        )
        if out.returncode:
            raise SystemExit(out.stderr.strip().splitlines()[-1])
        figures[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    size = path.stat().st_size / 1e6
    whole, streamed = figures["whole"]["added_mb"], figures["streamed"]["added_mb"]
    print(
        f"memory: {rows:,} rows ({size:.0f} MB file): pandas.read_json whole adds {whole:.0f} MB; "
        f"dataset import + iter_rows adds {streamed:.0f} MB (goal <= 200 MB); "
        f"ratio {streamed / whole:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--only", choices=["similarity", "memory"], default=None)
    args = parser.parse_args()
    os.environ.setdefault("PLAYGROUND_HOME", tempfile.mkdtemp(prefix="bench-eval-sc-"))
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared with other agents)")
    if args.only in (None, "memory"):
        bench_memory(args.rows)
    if args.only in (None, "similarity"):
        bench_similarity(args.pairs, args.threads)


if __name__ == "__main__":
    main()
