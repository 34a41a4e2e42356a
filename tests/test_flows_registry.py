"""The flow registry: immutable numbered versions on disk, an index, labels and references."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from playground.config import load_settings
from playground.errors import NotFoundError, SpecError
from playground.flows.loader import parse_spec
from playground.flows.registry import FlowRegistry
from playground.flows.spec import FlowSpec
from tests.flow_samples import GOOD

ROOT = Path(__file__).resolve().parent.parent


def _spec(description: str = "") -> FlowSpec:
    spec = parse_spec(GOOD)
    return spec.model_copy(update={"description": description}) if description else spec


def test_saves_become_numbered_versions_with_parents(home: Path) -> None:
    registry = FlowRegistry(load_settings())
    first = registry.save(_spec("one"))
    second = registry.save(_spec("two"))
    assert (first.version, first.parent) == (1, None)
    assert (second.version, second.parent) == (2, 1)
    folder = home / "flows" / "gear-support"
    assert sorted(p.name for p in folder.iterdir()) == [
        "gear-support.v1.yaml",
        "gear-support.v2.yaml",
    ]
    assert registry.get("gear-support", 1).description == "one"
    assert registry.get("gear-support", 2).created_at is not None


def test_an_existing_version_file_is_never_overwritten(home: Path) -> None:
    registry = FlowRegistry(load_settings())
    registry.save(_spec("one"))
    path = registry.path_for("gear-support", 1)
    before = path.read_bytes()
    # Another writer claimed v2 by hand: the next save must skip to v3, not replace it.
    (path.parent / "gear-support.v2.yaml").write_text(
        before.decode().replace("version: 1", "version: 2"), encoding="utf-8"
    )
    saved = registry.save(_spec("three"))
    assert saved.version == 3
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".saving-")]


def test_concurrent_saves_in_threads_get_distinct_versions(home: Path) -> None:
    settings = load_settings()
    saved: list[int] = []
    lock = threading.Lock()

    def save(n: int) -> None:
        spec = FlowRegistry(settings).save(_spec(f"thread {n}"))
        with lock:
            saved.append(spec.version or 0)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(saved) == list(range(1, 9))
    registry = FlowRegistry(settings)
    assert registry.versions("gear-support") == list(range(1, 9))
    descriptions = {registry.get("gear-support", v).description for v in range(1, 9)}
    assert descriptions == {f"thread {n}" for n in range(8)}


_SAVE_IN_PROCESS = """
import sys
from playground.config import load_settings
from playground.flows.loader import parse_spec
from playground.flows.registry import FlowRegistry
from tests.flow_samples import GOOD
spec = parse_spec(GOOD).model_copy(update={"description": sys.stdin.read()})
print(FlowRegistry(load_settings()).save(spec).version)
"""


def test_concurrent_saves_in_processes_get_distinct_versions(home: Path) -> None:
    # Fresh interpreters, as separate CLI or app processes would be (the test chdirs to a
    # temp dir, so the child imports the project from PYTHONPATH, not from the test package).
    FlowRegistry(load_settings()).store  # noqa: B018 - create the database before the race
    env = {**os.environ, "PLAYGROUND_HOME": str(home), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAVE_IN_PROCESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(f"process {n}", timeout=120) for n, proc in enumerate(procs)]
    assert [proc.returncode for proc in procs] == [0] * 4, [err for _, err in outputs]
    versions = sorted(int(out.strip()) for out, _ in outputs)
    assert versions == [1, 2, 3, 4]
    rows = FlowRegistry(load_settings()).store.flows.flow_version_rows("gear-support")
    assert [r.version for r in rows] == [1, 2, 3, 4]


def test_labels_move_and_every_move_is_kept(home: Path) -> None:
    registry = FlowRegistry(load_settings())
    for n in range(3):
        registry.save(_spec(f"v{n + 1}"))
    assert registry.set_label("gear-support", "production", 1) is None
    assert registry.set_label("gear-support", "staging", 3) is None
    assert registry.set_label("gear-support", "production", 2) == 1
    assert registry.labels("gear-support") == {"production": 2, "staging": 3}
    moves = registry.label_history("gear-support", "production")
    assert [(m.version, m.previous_version) for m in moves] == [(1, None), (2, 1)]
    assert moves[0].moved_at <= moves[1].moved_at


@pytest.mark.parametrize(
    ("ref", "expected_description"),
    [("gear-support", "v3"), ("gear-support@latest", "v3"), ("gear-support@1", "v1"),
     ("gear-support@production", "v2")],
)  # fmt: skip
def test_references_resolve(home: Path, ref: str, expected_description: str) -> None:
    registry = FlowRegistry(load_settings())
    for n in range(3):
        registry.save(_spec(f"v{n + 1}"))
    registry.set_label("gear-support", "production", 2)
    spec, source = registry.resolve(ref)
    assert spec.description == expected_description
    assert source == spec.ref


@pytest.mark.parametrize(
    ("ref", "expected_error"),
    [
        ("gear-support@9", "Flow gear-support has no version 9; it has versions 1-2."),
        ("gear-support@prod", "Flow gear-support has no label 'prod' (labels: none yet); set one"),
        ("nothing-here", "No flow named nothing-here; save one with `playground flow save FILE`"),
        ("../etc@1", "'../etc@1' is neither a flow file nor a flow reference"),
    ],
)
def test_bad_references_are_one_clear_error(home: Path, ref: str, expected_error: str) -> None:
    registry = FlowRegistry(load_settings())
    registry.save(_spec())
    registry.save(_spec())
    with pytest.raises(NotFoundError) as caught:
        registry.resolve(ref)
    assert str(caught.value).startswith(expected_error)


@pytest.mark.parametrize(
    ("label", "expected_error"),
    [("Production", "Label 'Production' is not valid"), ("3", "Label '3' is not valid"),
     ("latest", "Label 'latest' is not valid"), ("a/b", "Label 'a/b' is not valid")],
)  # fmt: skip
def test_bad_labels_are_refused(home: Path, label: str, expected_error: str) -> None:
    registry = FlowRegistry(load_settings())
    registry.save(_spec())
    with pytest.raises(SpecError, match=expected_error):
        registry.set_label("gear-support", label, 1)


def test_a_version_edited_on_disk_is_refused(home: Path) -> None:
    registry = FlowRegistry(load_settings())
    registry.save(_spec())
    path = registry.path_for("gear-support", 1)
    path.write_text(path.read_text().replace("temperature: 0.0", "temperature: 0.9"))
    with pytest.raises(SpecError, match="was changed on disk after it was saved"):
        registry.get("gear-support", 1)


def test_version_files_copied_in_are_indexed(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = FlowRegistry(load_settings())
    registry.save(_spec())
    # The same files in git, checked out into another data home:
    other_home = tmp_path / "other"
    (other_home / "flows" / "gear-support").mkdir(parents=True)
    source = registry.path_for("gear-support", 1)
    (other_home / "flows" / "gear-support" / source.name).write_bytes(source.read_bytes())
    monkeypatch.setenv("PLAYGROUND_HOME", str(other_home))
    other = FlowRegistry(load_settings())
    assert [s.name for s in other.list()] == ["gear-support"]
    assert other.get("gear-support", 1).name == "gear-support"


def test_reading_a_spec_does_not_create_the_database(home: Path) -> None:
    registry = FlowRegistry(load_settings())
    registry.root.mkdir(parents=True)
    with pytest.raises(NotFoundError):
        registry.resolve("gear-support@1")
    assert not (home / "playground.db").exists()


def test_import_saves_the_next_version_with_its_parent(home: Path) -> None:
    registry = FlowRegistry(load_settings())
    registry.save(_spec())
    exported = registry.yaml_text("gear-support", 1).replace("temperature: 0.0", "temperature: 0.2")
    saved = registry.import_text(exported.encode())
    assert (saved.version, saved.parent) == (2, 1)
    renamed = registry.import_text(exported, name="gear-copy")
    assert (renamed.name, renamed.version, renamed.parent) == ("gear-copy", 1, None)
    with pytest.raises(SpecError, match="Flow name 'Bad Name' is not valid"):
        registry.import_text(exported, name="Bad Name")
