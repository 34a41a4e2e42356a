"""Files nobody probed: devices, pipes, deep nesting and odd column names, each one sentence."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from playground.cli import main
from playground.config import load_settings
from playground.errors import IngestError, SpecError
from playground.eval.datasets import DatasetError, Datasets
from playground.eval.spec import read_eval_file
from playground.rag.store import UploadedFile


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["flow", "validate", "/dev/zero"],
            "Error: The flow spec in /dev/zero is larger than 1 MB; it cannot be a spec.",
        ),
        (
            ["eval", "run", "/dev/zero"],
            "Error: The flow spec in /dev/zero is larger than 1 MB; it cannot be a spec.",
        ),
        (
            ["eval", "dataset", "import", "/dev/zero", "--name", "zero"],
            "Error: Dataset file /dev/zero is not a regular file; give the path of a CSV or "
            "JSONL file.",
        ),
    ],
)
def test_a_file_that_never_ends_is_one_sentence(home, args, expected):
    # Before: each read /dev/zero to the end of memory.
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (1, 2)
    assert last_line(result.output) == expected


def test_an_eval_file_that_never_ends_is_refused(home):
    with pytest.raises(SpecError) as caught:
        read_eval_file(Path("/dev/zero"))
    assert str(caught.value) == (
        "Eval file /dev/zero is larger than 1 MB; it cannot be an eval file."
    )


def test_a_pipe_named_txt_is_read_only_up_to_the_upload_limit(tmp_path):
    # A FIFO reports size 0, so only the read itself can stop at the limit.
    fifo = tmp_path / "endless.txt"
    os.mkfifo(fifo)

    def write() -> None:
        try:
            with fifo.open("wb") as pipe:
                for _ in range(64):
                    pipe.write(b"a" * 65536)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    with pytest.raises(IngestError) as caught:
        UploadedFile.from_path("endless.txt", fifo).read(1024 * 1024)
    writer.join(timeout=10)
    assert str(caught.value) == (
        "endless.txt holds more than the 1 MB limit; split it into smaller files or raise the "
        "limit."
    )


def test_a_dataset_line_nested_thousands_deep_is_one_sentence(home, tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        Datasets(load_settings()).import_file(deep, "deep")
    assert str(caught.value) == (
        "deep.jsonl line 1 is not valid JSON (it is nested too deeply); each line must be one "
        "JSON object."
    )


@pytest.mark.parametrize(
    ("column", "shown"),
    [
        ("q\x00", '"q\\u0000"'),
        ("a" * 101, json.dumps("a" * 40 + "...")),
        ("  ", '"  "'),
    ],
)
def test_dataset_column_names_that_cannot_be_inputs_are_refused(home, tmp_path, column, shown):
    path = tmp_path / "cols.jsonl"
    path.write_text(json.dumps({column: "v", "question": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        Datasets(load_settings()).import_file(path, "cols")
    assert str(caught.value) == (
        f"cols.jsonl has a column named {shown}; a column name must be 1-100 characters "
        "without control characters, so rename it."
    )
