"""Ingest throughput against raw SentenceTransformer.encode on the same chunks, three ways.

- in-process: `KnowledgeBase.ingest` (model loaded) vs `model.encode` of the same chunks
  (goal >= 0.90);
- whole process: `python -m playground.cli rag ingest DIR` from launch to exit, torch's import,
  the model's load and Chroma's start included, vs the same raw encode (goal >= 0.85);
- for reference, a bare process that only imports sentence-transformers, loads the model and
  encodes the chunks (what any ingest must at least pay).

Rounds alternate the sides so that noise from other processes hits all of them; the best
round of each is kept.

    python bench/bench_rag_ingest.py [--docs 400] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground.config import load_settings
from playground.rag.chunking import ChunkSettings, chunk_document
from playground.rag.embeddings import ENCODE_BATCH, get_embedder, resolve_model
from playground.rag.loaders import load_document
from playground.rag.sample import corpus_files
from playground.rag.store import KnowledgeBase, UploadedFile

ROOT = Path(__file__).resolve().parent.parent
BARE = """
import json, sys
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[2]))
model = SentenceTransformer(sys.argv[1], device="cpu")
model.encode(texts, batch_size=int(sys.argv[3]), normalize_embeddings=True)
"""


def write_corpus(folder: Path, count: int) -> list[UploadedFile]:
    """`count` distinct documents made from the sample corpus (text files, numbered)."""
    base = [p for p in corpus_files() if p.suffix != ".pdf"]
    files = []
    for i in range(count):
        path = base[i % len(base)]
        body = path.read_bytes() + f"\n\nCopy {i} of this document.".encode()
        (folder / f"{i:03d}-{path.name}").write_bytes(body)
        files.append(UploadedFile(f"{i:03d}-{path.name}", body))
    return files


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    corpus = work / "corpus"
    corpus.mkdir()
    files = write_corpus(corpus, args.docs)
    chunking = ChunkSettings()
    texts = [c.text for f in files for c in chunk_document(load_document(f.name, f.data), chunking)]
    (work / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    model = get_embedder().model
    model.encode(texts[:64], batch_size=ENCODE_BATCH)  # warm up every side alike
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    best = dict.fromkeys(("raw", "ingest", "cli", "bare"), float("inf"))
    for round_no in range(args.repeat):
        start = time.perf_counter()
        model.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True)
        best["raw"] = min(best["raw"], time.perf_counter() - start)

        os.environ["PLAYGROUND_HOME"] = str(work / f"home-{round_no}")
        kb = KnowledgeBase(load_settings())
        start = time.perf_counter()
        reports = kb.ingest("bench", files)
        best["ingest"] = min(best["ingest"], time.perf_counter() - start)
        assert sum(r.chunks for r in reports) == len(texts)

        cli_env = {**env, "PLAYGROUND_HOME": str(work / f"cli-home-{round_no}")}
        command = [sys.executable, "-m", "playground.cli", "rag", "ingest", "--store", "bench"]
        best["cli"] = min(best["cli"], timed([*command, str(corpus)], cli_env))

        bare = [sys.executable, "-c", BARE, resolve_model("all-MiniLM-L6-v2")]
        bare += [str(work / "texts.json"), str(ENCODE_BATCH)]
        best["bare"] = min(best["bare"], timed(bare, env))
    rate = {side: len(texts) / seconds for side, seconds in best.items()}
    print(f"chunks: {len(texts)} from {len(files)} documents; load {os.getloadavg()[0]:.1f}")
    labels = {
        "raw": "raw SentenceTransformer.encode",
        "ingest": "KnowledgeBase.ingest (in-process)",
        "cli": "`playground rag ingest` (process)",
        "bare": "bare process: import, load, encode",
    }
    for side, label in labels.items():
        print(f"{label + ':':<38}{rate[side]:6.1f} chunks/s ({best[side]:.1f} s)")
    print(f"ratio in-process vs raw encode:     {rate['ingest'] / rate['raw']:.2f} (goal >= 0.90)")
    print(f"ratio whole process vs raw encode:  {rate['cli'] / rate['raw']:.2f} (goal >= 0.85)")
    print(f"ratio whole process vs bare process: {rate['cli'] / rate['bare']:.2f}")


if __name__ == "__main__":
    main()
