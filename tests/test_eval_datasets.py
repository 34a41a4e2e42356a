"""Datasets: read with pandas, stored by content hash, bad files refused in one sentence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground.config import load_settings
from playground.errors import NotFoundError
from playground.eval.datasets import (
    DatasetError,
    Datasets,
    _clean,
    iter_file_rows,
    iter_frames,
    iter_rows,
)

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "eval" / "gear-questions.jsonl"
CORPUS = SAMPLE.parent.parent / "corpus"


def test_sample_dataset_is_written_from_the_sample_corpus() -> None:
    rows = list(iter_file_rows(SAMPLE))
    assert 12 <= len(rows) <= 20
    for row in rows:
        assert row["question"].strip() and row["expected"].strip()
        for source in row["sources"]:
            assert (CORPUS / source).is_file(), source
        # the short fact a `contains` scorer looks for is stated in one of its sources
        text = " ".join((CORPUS / s).read_text(errors="ignore") for s in row["sources"])
        assert row["keyword"].lower() in text.lower(), row["keyword"]


def test_import_is_content_addressed_and_listed(home: Path, tmp_path: Path) -> None:
    datasets = Datasets(load_settings())
    first = datasets.import_file(SAMPLE)
    again = datasets.import_file(SAMPLE)
    assert first.ref == again.ref and first.rows == 18
    assert first.ref.startswith("gear-questions@")
    changed = tmp_path / "gear-questions.csv"
    changed.write_text("question,expected\nWhy?,Because.\n", encoding="utf-8")
    second = datasets.import_file(changed)
    assert second.version != first.version
    assert {i.ref for i in datasets.list()} == {first.ref, second.ref}
    assert datasets.resolve(first.ref).rows == 18
    assert (
        datasets.preview("gear-questions@" + first.version, 3)["question"]
        .tolist()[0]
        .startswith("How many days")
    )
    assert datasets.delete(second.ref) == 1
    assert [i.ref for i in datasets.list()] == [first.ref]
    with pytest.raises(NotFoundError, match="No dataset nope"):
        datasets.get("nope")


def test_csv_with_latin1_encoding_reads_when_told(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "fr.csv"
    path.write_bytes("question,expected\nCafé?,Oui\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"fr.csv is not UTF-8 text \(line 2\).*--encoding"):
        Datasets(load_settings()).import_file(path)
    info = Datasets(load_settings()).import_file(path, encoding="latin-1")
    assert next(iter_rows(info))["question"] == "Café?"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty.csv is empty"),
        ("header.csv", b"question,expected\n", "header.csv is empty|has a header but no rows"),
        (
            "ragged.csv",
            b"a,b\n1,2\n3,4,5\n",
            "ragged.csv line 3 has 3 fields where the header has 2",
        ),
        ("bad.jsonl", b'{"a": 1}\n{oops\n', "bad.jsonl line 2 is not valid JSON"),
        ("list.jsonl", b'{"a": 1}\n[1, 2]\n', "list.jsonl line 2 is not valid JSON"),
        ("data.xlsx", b"PK", "neither CSV nor JSONL"),
    ],
)
def test_bad_files_are_refused_in_one_sentence(
    home: Path, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as caught:
        Datasets(load_settings()).import_file(path)
    assert "\n" not in str(caught.value)
    assert not list((home / "datasets").glob("*/*/rows.jsonl"))  # nothing half-written


def test_large_file_is_streamed_in_chunks(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("question,expected\n")
        for i in range(12_000):
            handle.write(f"q{i},a{i}\n")
    info = Datasets(load_settings()).import_file(path)
    assert info.rows == 12_000
    rows = iter_rows(info, start=11_998)
    assert [r["question"] for r in rows] == ["q11998", "q11999"]


JSONL_CASES = {
    "plain": ['{"b": "x", "a": 1, "c": [true, {"d": null}]}', '{"a": 2, "c": [], "b": "y"}'],
    "nulls": ['{"a": "x", "b": true}', '{"a": null, "b": null}'],
    "strings-pandas-could-parse": ['{"a": "1", "b": "2024-01-01", "c": "NaN", "1": "01"}'],
    "int-with-null": ['{"a": 1}', '{"a": null}'],
    "float": ['{"a": 1.1, "b": [0.30000000000000004]}'],
    "date-column": ['{"created_at": "2024-01-01", "x": "y"}'],
    "missing-key": ['{"a": "x"}', '{"b": "y"}'],
    "huge-int": ['{"a": 9223372036854775808}', '{"a": 1}'],
    "escaped-emoji": ['{"a": "\\ud83d\\ude00"}'],
    "blank-line": ['{"a": "x"}', "", '{"a": "y"}'],
}


@pytest.mark.parametrize("name", sorted(JSONL_CASES))
def test_jsonl_rows_are_the_rows_pandas_reads(tmp_path: Path, name: str) -> None:
    # Most JSONL files are read without pandas; the rows (so the version a file imports as)
    # must stay exactly what pandas gave, or re-importing a file would make a new version.
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(JSONL_CASES[name]) + "\n", encoding="utf-8")
    by_pandas = [
        {str(k): _clean(v) for k, v in record.items()}
        for frame in iter_frames(path)
        for record in frame.to_dict(orient="records")
    ]
    rows = list(iter_file_rows(path))

    def lines(found: list[dict]) -> list[str]:
        return [json.dumps(row, ensure_ascii=False, default=str) for row in found]

    assert lines(rows) == lines(by_pandas)


def test_a_plain_jsonl_file_imports_without_loading_pandas(home: Path, tmp_path: Path) -> None:
    # pandas took longer to import than `eval run` took to send its first request
    path = tmp_path / "questions.jsonl"
    path.write_text('{"question": "hi", "expected": "Hello", "n": 1}\n', encoding="utf-8")
    script = (
        "import sys\n"
        "from playground.config import load_settings\n"
        "from playground.eval.datasets import Datasets\n"
        f"info = Datasets(load_settings()).import_file({str(path)!r})\n"
        "print(info.rows, info.columns, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["1", "['question',", "'expected',", "'n']", "False"]
