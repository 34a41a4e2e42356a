"""Scorer benchmarks: similarity throughput against raw encode, and a 100,000-row dataset's memory.

similarity: N (answer, reference) pairs made from sample-corpus sentences. The baseline is
`SentenceTransformer.encode` on the same 2N texts in one call (batch 64, normalised), in this
process; the scorer runs as the batch runner runs it: cells come from
`scorers.encode_references_ahead` (each window's references encoded in one call on a thread,
inside the clock; `--per-cell` turns it off), `score_answer` from --threads threads with at
most twice that in flight, and once more from one thread. Goal: scorer >= 0.85 of raw pairs
per second.

memory: a 100,000-row JSONL (question, expected, sources) is imported as a dataset and every
row is read through `iter_rows`, the batch runner's path, in a fresh process; the baseline is
`pandas.read_json(lines=True)` of the whole file in another fresh process. Both report peak RSS
(VmHWM) added over the process after imports. Goal: streamed <= 200 MB added.

    python bench/bench_eval_scorers.py [--pairs 2000] [--threads 16] [--rows 100000]
        [--only similarity [--rounds 3] [--unique-references] [--gather-ms 3] [--no-cache]
                           [--per-cell]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

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


def texts(pairs: int, unique_references: bool = False) -> list[tuple[str, str]]:
    """(answer, reference) pairs: neighbouring sentences of the sample corpus, varied.

    Answers are all distinct; references repeat (98 sentences), as a row's `expected` does
    across configurations, unless unique_references gives each its own "(ref #i)".
    """
    from playground.rag.chunking import split_sentences

    sentences = []
    for path in sorted((ROOT / "sample_data" / "corpus").glob("*.md")):
        sentences += [s for s in split_sentences(path.read_text(encoding="utf-8")) if len(s) > 30]
    tag = " (ref #{})" if unique_references else ""
    return [
        (
            f"{sentences[i % len(sentences)]} (#{i})",
            sentences[(i + 1) % len(sentences)] + tag.format(i),
        )
        for i in range(pairs)
    ]


def run_cells(scorer_specs: list[Any], contexts: list[Any], threads: int, ahead: bool) -> list[Any]:
    """Score the contexts as the batch runner does: cells from `encode_references_ahead`
    (the references of the next window encoded on a thread, unless not ahead), at most
    2 x threads in flight on `threads` worker threads."""
    from playground.eval import scorers

    cells = iter(contexts)
    if ahead:
        cells = scorers.encode_references_ahead(cells, lambda ctx: ctx.row, scorer_specs)
    verdicts: dict[int, Any] = {}
    in_flight: set[Future[Any]] = set()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for index, ctx in enumerate(cells):
            if len(in_flight) >= threads * 2:
                _, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            future = pool.submit(scorers.score_answer, scorer_specs, ctx)
            future.add_done_callback(lambda f, i=index: verdicts.__setitem__(i, f.result()[0]))
            in_flight.add(future)
    return [verdicts[i] for i in range(len(contexts))]


def bench_similarity(
    pairs: int,
    threads: int,
    rounds: int,
    unique_references: bool,
    gather_ms: float | None,
    cache: bool,
    ahead: bool,
) -> None:
    from playground.config import load_settings
    from playground.eval import scorers
    from playground.eval.scorers_similarity import shared_encoder
    from playground.eval.spec import EvaluationSpec
    from playground.models.base import ModelParams
    from playground.rag.embeddings import get_embedder
    from playground.records import Result, Run

    data = texts(pairs, unique_references)
    model = get_embedder().model
    flat = [t for pair in data for t in pair]
    encoder = shared_encoder()
    if gather_ms is not None:
        encoder.gather_s = gather_ms / 1000
    if not cache:
        encoder.cache_size = 0
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
    sample = contexts[: max(pairs // 10, 50)]
    model.encode(flat[:64], batch_size=64, normalize_embeddings=True)  # warm up
    print(
        f"similarity: {pairs} pairs, {len(set(flat[1::2]))} distinct references, "
        f"{threads} threads, gather {encoder.gather_s * 1000:g} ms, "
        f"cache {'on' if cache else 'off'}, references "
        f"{'encoded ahead in windows of ' + str(scorers.REFERENCE_WINDOW) if ahead else 'per cell'}"
    )
    for round_ in range(1, rounds + 1):
        load = os.getloadavg()[0]
        start = time.perf_counter()
        model.encode(flat, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        raw = pairs / (time.perf_counter() - start)
        encoder.forget()  # every round starts cold: no vector from the round before
        start = time.perf_counter()
        verdicts = run_cells(spec.scorers, contexts, threads, ahead)
        threaded = pairs / (time.perf_counter() - start)
        assert all(v.score is not None for v in verdicts)
        encoder.forget()
        start = time.perf_counter()
        run_cells(spec.scorers, sample, 1, ahead)
        single = len(sample) / (time.perf_counter() - start)
        print(
            f"  round {round_} (load {load:.1f}->{os.getloadavg()[0]:.1f}): raw encode "
            f"{raw:.0f} pairs/s; scorer from {threads} threads {threaded:.0f} pairs/s, ratio "
            f"{threaded / raw:.2f} (goal >= 0.85); scorer from one thread {single:.0f} pairs/s, "
            f"ratio {single / raw:.2f}",
            flush=True,
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
    parser.add_argument("--rounds", type=int, default=1, help="similarity: raw/scorer rounds")
    parser.add_argument(
        "--unique-references", action="store_true", help="similarity: no reference repeats"
    )
    parser.add_argument(
        "--gather-ms", type=float, default=None, help="similarity: leader's wait for company"
    )
    parser.add_argument("--no-cache", action="store_true", help="similarity: no vector cache")
    parser.add_argument(
        "--per-cell",
        action="store_true",
        help="similarity: no references encoded ahead (each cell encodes its own)",
    )
    args = parser.parse_args()
    os.environ.setdefault("PLAYGROUND_HOME", tempfile.mkdtemp(prefix="bench-eval-sc-"))
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared with other agents)")
    if args.only in (None, "memory"):
        bench_memory(args.rows)
    if args.only in (None, "similarity"):
        bench_similarity(
            args.pairs,
            args.threads,
            args.rounds,
            args.unique_references,
            args.gather_ms,
            not args.no_cache,
            not args.per_cell,
        )


if __name__ == "__main__":
    main()
