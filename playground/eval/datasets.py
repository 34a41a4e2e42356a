"""Evaluation datasets: CSV or JSONL files read (with pandas where needed), stored by hash.

A dataset is imported once into `<home>/datasets/<name>/<version>/rows.jsonl` (UTF-8 JSONL, one
row a line) where the version is the first 12 hex digits of the SHA-256 of that normalised text,
so `name@version` names exactly the rows a batch ran and the same file imported twice is one
version. Large files are read in chunks and written as they are read, never loaded whole.
A JSONL file whose rows pandas would return unchanged is read with the json module alone:
importing pandas took longer than `eval run`'s first request (the stored rows are the same).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.config import Settings
from playground.errors import NotFoundError, PlaygroundError

if TYPE_CHECKING:
    import pandas as pd

    from playground.records import Run

CHUNK_ROWS = 5_000
VERSION_DIGITS = 12
MAX_COLUMN_CHARS = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FROM_RUN_COLUMNS = {"expected", "expected_stars", "expected_model", "source_run"}
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


class DatasetError(PlaygroundError):
    """A dataset file that cannot be used: empty, not UTF-8, ragged, or missing a column."""


@dataclass
class DatasetInfo:
    """One stored version of a dataset."""

    name: str
    version: str
    rows: int
    columns: list[str]
    source: str  # the file it was imported from
    created_at: str
    path: Path  # rows.jsonl

    @property
    def ref(self) -> str:
        """`name@version`, what a batch records."""
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json and the meta file."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["ref"] = self.ref
        return data


def dataset_name_for(path: Path) -> str:
    """A dataset name from a file name: `Gear Questions.csv` -> `gear-questions`."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_")
    return (stem or "dataset")[:63]


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    raise DatasetError(
        f"{path.name} is neither CSV nor JSONL; give a .csv, .tsv or .jsonl file of rows."
    )


def _first_bad_utf8_line(path: Path, encoding: str) -> int | None:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return None


def _first_bad_json_line(path: Path) -> tuple[int, str] | None:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return number, exc.msg
            except RecursionError:  # `[[[[...` thousands deep
                return number, "it is nested too deeply"
            if not isinstance(value, dict):
                return number, "the line is not a JSON object"
    return None


def _clean(value: Any) -> Any:
    # pandas fills absent cells with NaN; a dataset row has None there instead.
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        return value.item()  # numpy scalar -> plain Python
    return value


def _check_file(path: Path, encoding: str) -> str:
    """The file's kind (csv|jsonl) once it is a non-empty regular file of `encoding` text."""
    if not path.is_file():
        if path.exists():  # /dev/zero, a pipe or a folder: reading it would never end or fail
            raise DatasetError(
                f"Dataset file {path} is not a regular file; give the path of a CSV or JSONL file."
            )
        raise DatasetError(f"Dataset file {path} does not exist; check the path.")
    kind = _kind(path)
    if path.stat().st_size == 0:
        raise DatasetError(f"{path.name} is empty; add a header and at least one row.")
    bad_line = _first_bad_utf8_line(path, encoding) if encoding.lower().startswith("utf") else None
    if bad_line is not None:
        raise DatasetError(
            f"{path.name} is not {encoding.upper()} text (line {bad_line}); save it as UTF-8 "
            "or give its encoding (e.g. --encoding latin-1)."
        )
    return kind


def iter_frames(
    path: Path, encoding: str = "utf-8", chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The file's rows as pandas DataFrames of at most chunk_rows; one sentence on bad input."""
    import pandas as pd

    path = Path(path)
    kind = _check_file(path, encoding)
    try:
        if kind == "jsonl":
            bad = _first_bad_json_line(path)
            if bad is not None:
                raise DatasetError(
                    f"{path.name} line {bad[0]} is not valid JSON ({bad[1]}); "
                    "each line must be one JSON object."
                )
            reader = pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False)
        else:
            reader = pd.read_csv(
                path,
                chunksize=chunk_rows,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig" if encoding.lower() in {"utf-8", "utf8"} else encoding,
                sep="\t" if path.suffix.lower() == ".tsv" else ",",
            )
        with reader:
            yield from reader
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path.name} is empty; add a header and at least one row.") from None
    except pd.errors.ParserError as exc:
        match = _RAGGED.search(str(exc))
        if match:
            expected, line, saw = match.groups()
            raise DatasetError(
                f"{path.name} line {line} has {saw} fields where the header has {expected}; "
                "quote values that contain commas or fix the row."
            ) from None
        raise DatasetError(f"{path.name} is not a readable CSV file ({exc}).") from None
    except UnicodeDecodeError:
        raise DatasetError(
            f"{path.name} is not {encoding} text; save it as UTF-8 or give its encoding."
        ) from None
    except LookupError:
        raise DatasetError(f"Unknown text encoding '{encoding}'; try utf-8 or latin-1.") from None


# pandas turns these JSONL values into something else (dates, floats, NaN), so a file with
# any of them is left to pandas: the rows stored, and so the version, stay what they were.
_INT64 = (-(2**63), 2**63 - 1)
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class _NotPlain(Exception):
    """A JSONL value that pandas would convert; read the file with pandas."""


def _plain_int(text: str) -> int:
    value = int(text)
    if not _INT64[0] <= value <= _INT64[1]:
        raise _NotPlain
    return value


def _not_plain(text: str) -> Any:
    raise _NotPlain


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _NotPlain  # a repeated key: which one pandas keeps is its own business
    return value


_PLAIN = json.JSONDecoder(
    parse_float=_not_plain,
    parse_int=_plain_int,
    parse_constant=_not_plain,
    object_pairs_hook=_unique_keys,
)


def _pandas_date_column(name: str) -> bool:
    # read_json converts these columns to datetimes (its keep_default_dates)
    lower = name.lower()
    return (
        lower.endswith(("_at", "_time"))
        or lower in {"modified", "date", "datetime"}
        or lower.startswith("timestamp")
    )


def _plain_jsonl(path: Path) -> bool:
    """Whether pandas would give back every row of this (valid) JSONL file unchanged.

    That is: every row has the same keys, none of them a date column; no floats, NaN or
    integers beyond 64 bits anywhere; no column mixing integers and nulls (pandas makes
    those floats); no repeated keys or lone surrogates.
    """
    keys: set[str] | None = None
    int_columns: set[str] = set()
    null_columns: set[str] = set()
    rows = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                return False  # pandas' handling of blank lines is left to pandas
            if "\\u" in line and _SURROGATE.search(line):
                return False
            try:
                row = _PLAIN.decode(line)
            except _NotPlain:
                return False
            if keys is None:
                keys = set(row)
                if any(_pandas_date_column(k) for k in keys):
                    return False
            elif set(row) != keys:
                return False
            for key, value in row.items():
                if value is None:
                    null_columns.add(key)
                elif isinstance(value, int) and not isinstance(value, bool):
                    int_columns.add(key)
            rows += 1
    return rows > 0 and not (int_columns & null_columns)


def _plain_jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a file _plain_jsonl accepted, keys in the first row's order (as pandas)."""
    order: list[str] | None = None
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if order is None:
                order = list(row)
            yield {key: row[key] for key in order}


def iter_file_rows(path: Path, encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    """Every row of a CSV/JSONL file as a dict, streamed chunk by chunk."""
    path = Path(path)
    if _check_file(path, encoding) == "jsonl":
        try:
            bad = _first_bad_json_line(path)
            plain = bad is None and _plain_jsonl(path)
        except UnicodeDecodeError:
            plain = False  # iter_frames says so in its own words
        if plain:
            yield from _plain_jsonl_rows(path)
            return
    for frame in iter_frames(path, encoding):
        for record in frame.to_dict(orient="records"):
            yield {str(k): _clean(v) for k, v in record.items()}


def _check_column(name: str, path: Path) -> None:
    # Column names become flow inputs, template keys and table headings on the Evaluate page.
    if not name.strip() or len(name) > MAX_COLUMN_CHARS or _CONTROL.search(name):
        shown = json.dumps(name[:40] + ("..." if len(name) > 40 else ""), ensure_ascii=False)
        raise DatasetError(
            f"{path.name} has a column named {shown}; a column name must be 1-"
            f"{MAX_COLUMN_CHARS} characters without control characters, so rename it."
        )


class Datasets:
    """The datasets stored under the data home: import, list, preview, resolve, delete."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.home / "datasets"

    def import_file(
        self, path: Path, name: str | None = None, encoding: str = "utf-8"
    ) -> DatasetInfo:
        """Store a CSV/JSONL file as NAME@VERSION (same content -> same version)."""
        path = Path(path)
        name = name or dataset_name_for(path)
        if not NAME_PATTERN.match(name):
            raise DatasetError(
                f"Dataset name '{name}' is not allowed; use lower-case letters, digits, - and _."
            )
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        columns: list[str] = []
        rows = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".import-", suffix=".jsonl")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for row in iter_file_rows(path, encoding):
                    for key in row:
                        if key not in columns:
                            _check_column(key, path)
                            columns.append(key)
                    line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
                    digest.update(line.encode("utf-8"))
                    out.write(line)
                    rows += 1
            if rows == 0:
                raise DatasetError(f"{path.name} has a header but no rows; add at least one row.")
            version = digest.hexdigest()[:VERSION_DIGITS]
            target = self.root / name / version
            if not (target / "rows.jsonl").exists():
                target.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target / "rows.jsonl")
                info = DatasetInfo(
                    name=name,
                    version=version,
                    rows=rows,
                    columns=columns,
                    source=path.name,
                    created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    path=target / "rows.jsonl",
                )
                meta = {k: v for k, v in info.to_json().items() if k not in {"path", "ref"}}
                (target / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
                return info
            return self.get(name, version)
        finally:
            tmp.unlink(missing_ok=True)

    def _info(self, folder: Path) -> DatasetInfo:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return DatasetInfo(**meta, path=folder / "rows.jsonl")

    def versions(self, name: str) -> list[DatasetInfo]:
        """Stored versions of one dataset, newest first."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = [self._info(v) for v in folder.iterdir() if (v / "meta.json").is_file()]
        return sorted(found, key=lambda i: i.created_at, reverse=True)

    def list(self) -> list[DatasetInfo]:
        """Every stored version of every dataset, by name then newest first."""
        if not self.root.is_dir():
            return []
        found: list[DatasetInfo] = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            found.extend(self.versions(folder.name))
        return found

    def get(self, name: str, version: str | None = None) -> DatasetInfo:
        """One version (the newest when none is given); NotFoundError naming what exists."""
        versions = self.versions(name)
        if version is not None:
            versions = [v for v in versions if v.version.startswith(version)]
        if not versions:
            known = ", ".join(sorted({i.name for i in self.list()})) or "none yet"
            what = f"{name}@{version}" if version else name
            raise NotFoundError(
                f"No dataset {what}; stored datasets: {known} "
                "(import one with `playground eval dataset import FILE`)."
            )
        return versions[0]

    def resolve(self, ref: str | Path, encoding: str = "utf-8") -> DatasetInfo:
        """A file path (imported on the fly) or NAME / NAME@VERSION of a stored dataset."""
        text = str(ref)
        path = Path(text)
        if path.suffix.lower() in {".csv", ".tsv", ".jsonl", ".ndjson"} or path.exists():
            return self.import_file(path, encoding=encoding)
        name, _, version = text.partition("@")
        return self.get(name, version or None)

    def delete(self, ref: str) -> int:
        """Delete NAME (every version) or NAME@VERSION; returns how many versions went."""
        name, _, version = ref.partition("@")
        targets = [self.get(name, version)] if version else self.versions(name)
        if not targets:
            self.get(name)  # raises NotFoundError with the list of names
        for info in targets:
            shutil.rmtree(info.path.parent)
        folder = self.root / name
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        return len(targets)

    def preview(self, ref: str, rows: int = 20) -> pd.DataFrame:
        """The first rows of a stored dataset as a DataFrame."""
        import pandas as pd

        info = self.resolve(ref)
        return pd.DataFrame(list(_take(iter_rows(info), rows)))


def _take(rows: Iterator[dict[str, Any]], limit: int) -> Iterator[dict[str, Any]]:
    for index, row in enumerate(rows):
        if index >= limit:
            return
        yield row


def iter_rows(info: DatasetInfo, start: int = 0) -> Iterator[dict[str, Any]]:
    """The stored rows from index `start` on, one at a time (constant memory)."""
    with info.path.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if index >= start:
                yield json.loads(line)


def rows_from_runs(runs: Sequence[Run], ratings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One dataset row per run: its template variables, the best-rated answer as `expected`.

    `ratings` maps result id -> a summary with `count` and `mean` stars (the store's
    rating_summaries). The best answer has the highest mean, then the most ratings; a run
    nobody rated gets an empty `expected`, and `expected_stars` says so.
    """
    rows = []
    for run in runs:
        rated = []
        for result in run.results:
            summary = ratings.get(result.id)
            if result.error or not result.text or summary is None or not summary.count:
                continue
            if summary.mean is None:
                continue
            rated.append((float(summary.mean), int(summary.count), result))
        best = max(rated, key=lambda t: (t[0], t[1]), default=None)
        row: dict[str, Any] = dict(run.variables)
        row["expected"] = best[2].text.strip() if best else ""
        row["expected_stars"] = round(best[0], 2) if best else None
        row["expected_model"] = best[2].model_id if best else None
        row["source_run"] = run.id
        rows.append(row)
    return rows


def dataset_from_runs(
    settings: Settings, runs: Sequence[Run], ratings: Mapping[str, Any], name: str
) -> DatasetInfo:
    """Store the selected History runs as dataset NAME (rows_from_runs), content-hashed."""
    if not runs:
        raise DatasetError("No run selected; select the runs that should become rows.")
    rows = rows_from_runs(runs, ratings)
    if not any(k for row in rows for k in row if k not in FROM_RUN_COLUMNS):
        raise DatasetError(
            "The selected runs have no template variables, so their rows would have no inputs; "
            "select runs whose prompts use {{ variables }}."
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return Datasets(settings).import_file(path, name=name)
