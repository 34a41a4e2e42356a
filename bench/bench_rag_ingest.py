"""Ingest throughput against raw SentenceTransformer.encode on the same chunks.

Two ratios, each against a baseline measured in the same round:

- in-process: `KnowledgeBase.ingest` (model loaded) vs `model.encode` of the same chunks
  (goal >= 0.90);
- whole process: `python -m playground.cli rag ingest DIR` from launch to exit vs a bare
  script that imports sentence-transformers, loads the model, reads and chunks the same files
  and encodes them (goal >= 0.85): torch's import, Chroma and the command line included.

The whole process against the in-process raw encode is printed too, for reference (it pays
the imports that raw encode does not). Rounds alternate the four sides so that noise from
other processes hits all of them; medians of the rounds are reported.

    python bench/bench_rag_ingest.py [--docs 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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
# What any ingest must at least do: import the encoder, read and chunk the files (with the
# project's own loader and chunker, so the chunks are the same), encode them.
BARE = """
import sys
from pathlib import Path
from sentence_transformers import SentenceTransformer
from playground.rag.chunking import ChunkSettings, chunk_document
from playground.rag.loaders import load_document
model = SentenceTransformer(sys.argv[1], device="cpu")
settings = ChunkSettings()
texts = [
    chunk.text
    for path in sorted(Path(sys.argv[2]).iterdir())
    for chunk in chunk_document(load_document(path.name, path.read_bytes()), settings)
]
model.encode(texts, batch_size=int(sys.argv[3]), normalize_embeddings=True)
print(len(texts))
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


def timed(command: list[str], env: dict[str, str], stderr_to: Path) -> tuple[float, str]:
    """Wall time of a process from launch to exit, and its stdout."""
    start = time.perf_counter()
    with stderr_to.open("w") as err:
        done = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, stderr=err)
    return time.perf_counter() - start, done.stdout.decode()


def count_upserts() -> list[int]:
    """Count Chroma upsert calls of the in-process side (one per batch, not per document)."""
    from chromadb.api.models.Collection import Collection

    calls = [0]
    real = Collection.upsert

    def counted(self: Collection, **kwargs: object) -> None:
        calls[0] += 1
        real(self, **kwargs)

    Collection.upsert = counted  # type: ignore[method-assign]
    return calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    """Every round of every side, then the figures."""
    corpus = work / "corpus"
    corpus.mkdir()
    files = write_corpus(corpus, args.docs)
    chunking = ChunkSettings()
    texts = [c.text for f in files for c in chunk_document(load_document(f.name, f.data), chunking)]
    model = get_embedder().model
    model.encode(texts[:64], batch_size=ENCODE_BATCH)  # warm up every side alike
    upserts = count_upserts()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict[str, list[float]] = {side: [] for side in ("raw", "ingest", "cli", "bare")}
    loads = [os.getloadavg()[0]]
    progress_lines = 0
    for round_no in range(args.repeat):
        start = time.perf_counter()
        model.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True)
        times["raw"].append(time.perf_counter() - start)

        os.environ["PLAYGROUND_HOME"] = str(work / f"home-{round_no}")
        kb = KnowledgeBase(load_settings())
        upserts[0] = 0
        start = time.perf_counter()
        reports = kb.ingest("bench", files)
        times["ingest"].append(time.perf_counter() - start)
        assert sum(r.chunks for r in reports) == len(texts)

        # The bare process goes before the command in odd rounds: neither always runs second.
        cli_env = {**env, "PLAYGROUND_HOME": str(work / f"cli-home-{round_no}")}
        command = [sys.executable, "-m", "playground.cli", "rag", "ingest", "--store", "bench"]
        bare = [sys.executable, "-c", BARE, resolve_model("all-MiniLM-L6-v2"), str(corpus)]
        bare.append(str(ENCODE_BATCH))
        for side in ("cli", "bare") if round_no % 2 == 0 else ("bare", "cli"):
            if side == "cli":
                seconds, out = timed([*command, str(corpus)], cli_env, work / "cli.err")
                assert len(out.splitlines()) == len(files), out
                progress_lines = len((work / "cli.err").read_text().splitlines())
            else:
                seconds, out = timed(bare, env, work / "bare.err")
                assert int(out) == len(texts), out
            times[side].append(seconds)
        loads.append(os.getloadavg()[0])
    median = {side: statistics.median(values) for side, values in times.items()}
    rate = {side: len(texts) / seconds for side, seconds in median.items()}
    print(
        f"chunks: {len(texts)} from {len(files)} documents; {args.repeat} rounds, medians; "
        f"load {min(loads):.1f}-{max(loads):.1f}"
    )
    labels = {
        "raw": "raw SentenceTransformer.encode",
        "ingest": "KnowledgeBase.ingest (in-process)",
        "cli": "`playground rag ingest` (process)",
        "bare": "bare script: import, read, chunk, encode",
    }
    for side, label in labels.items():
        each = ", ".join(f"{s:.1f}" for s in times[side])
        print(f"{label + ':':<43}{rate[side]:6.1f} chunks/s ({median[side]:.1f} s; {each})")
    print(f"Chroma upserts per in-process ingest: {upserts[0]} for {len(files)} documents")
    print(f"progress lines on the command's stderr (not a terminal): {progress_lines}")
    in_process = [r / i for r, i in zip(times["raw"], times["ingest"], strict=True)]
    whole = [b / c for b, c in zip(times["bare"], times["cli"], strict=True)]
    print(
        f"ratio in-process vs raw encode:      {rate['ingest'] / rate['raw']:.2f} "
        f"(per round {', '.join(f'{x:.2f}' for x in in_process)}; goal >= 0.90)"
    )
    print(
        f"ratio whole process vs bare script:  {rate['cli'] / rate['bare']:.2f} "
        f"(per round {', '.join(f'{x:.2f}' for x in whole)}; goal >= 0.85)"
    )
    print(f"ratio whole process vs raw encode:   {rate['cli'] / rate['raw']:.2f} (for reference)")


if __name__ == "__main__":
    main()
