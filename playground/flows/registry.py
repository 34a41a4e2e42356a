"""The registry of flow versions: one immutable YAML file per version, indexed in the store.

Files live at `<home>/flows/<name>/<name>.v<N>.yaml`. A version is claimed by hard-linking a
fully written temporary file to its final name: `os.link` fails if the name exists, so a version
is never overwritten and two concurrent saves of one name get two distinct versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from playground.config import Settings
from playground.errors import NotFoundError, SpecError
from playground.flows.loader import dump_spec, looks_like_path, parse_spec, read_spec_file
from playground.flows.spec import FlowSpec, check_templates, is_valid_name

if TYPE_CHECKING:  # the store imports SQLAlchemy: `flow run PATH` must not wait for it
    from playground.store import Store
    from playground.store.flows import FlowVersionRow, LabelMove

LABEL_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,62}")
REF_PATTERN = re.compile(r"(?P<name>[a-z0-9][a-z0-9-]{1,62})(?:@(?P<ref>[a-z0-9][a-z0-9-]{0,62}))?")
_FILE_PATTERN = re.compile(
    r"(?P<name>[a-z0-9][a-z0-9-]{1,62})\.v(?P<version>[1-9][0-9]{0,8})\.yaml"
)
MAX_SAVE_ATTEMPTS = 1000


@dataclass
class FlowSummary:
    """One flow in the list: its versions and labels."""

    name: str
    latest: int
    versions: list[FlowVersionRow]
    labels: dict[str, int]


def utc_stamp() -> str:
    """Now, as the ISO 8601 UTC text a spec's created_at holds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_label(label: str) -> str:
    """A label is lowercase letters, digits and dashes, not a number and not `latest`."""
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label) or label == "latest":
        raise SpecError(
            f"Label '{label}' is not valid; use lowercase letters, digits and dashes starting "
            "with a letter (e.g. production), and not 'latest'."
        )
    return label


def check_name(name: str) -> str:
    """Refuse anything but `[a-z0-9][a-z0-9-]{1,62}` (no path tricks)."""
    if not is_valid_name(name):
        raise SpecError(
            f"Flow name {name!r} is not valid; use 2-63 lowercase letters, digits or dashes, "
            "starting with a letter or digit."
        )
    return name


class FlowRegistry:
    """Saved flow versions under the data directory, with labels and a SQL index."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.root = settings.home / "flows"
        self._store = store

    @property
    def store(self) -> Store:
        """The run store that holds the index (opened on first use: it imports SQLAlchemy)."""
        if self._store is None:
            from playground.store import open_store

            self._store = open_store(self.settings)
        return self._store

    def path_for(self, name: str, version: int) -> Path:
        """Where a version's YAML file lives."""
        check_name(name)
        return self.root / name / f"{name}.v{version}.yaml"

    def _disk_versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for entry in folder.iterdir():
            match = _FILE_PATTERN.fullmatch(entry.name)
            if match and match["name"] == name:
                found.append(int(match["version"]))
        return sorted(found)

    def versions(self, name: str) -> list[int]:
        """Every saved version of a flow (files on disk), oldest first."""
        check_name(name)
        return self._disk_versions(name)

    def latest(self, name: str) -> int | None:
        """The newest version of a flow, or None."""
        found = self.versions(name)
        return found[-1] if found else None

    def save(self, spec: FlowSpec, parent: int | None = None) -> FlowSpec:
        """Save a spec as the next version of its name; returns the spec as written.

        `parent` defaults to the newest version at the time of the save (None for a new flow).
        """
        check_name(spec.name)
        folder = self.root / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        created = utc_stamp()
        for _ in range(MAX_SAVE_ATTEMPTS):
            existing = self._disk_versions(spec.name)
            latest = existing[-1] if existing else None
            version = (latest or 0) + 1
            chosen_parent = parent if parent is not None else latest
            if chosen_parent is not None and chosen_parent >= version:
                chosen_parent = latest
            saved = spec.model_copy(
                update={"version": version, "parent": chosen_parent, "created_at": created}
            )
            text = dump_spec(saved)
            # Re-read what we are about to write: the file must load back as the same spec.
            check = parse_spec(text, f"{spec.name} v{version}")
            if check.to_data() != saved.to_data():
                raise SpecError(f"Flow {spec.name} does not survive a YAML round trip; report it.")
            if self._claim(folder / f"{spec.name}.v{version}.yaml", text):
                self._index(saved, folder / f"{spec.name}.v{version}.yaml", text)
                return saved
        raise SpecError(f"Could not claim a new version of {spec.name}; try again.")

    @staticmethod
    def _claim(final: Path, text: str) -> bool:
        """Write text to a temp file and hard-link it to `final`; False if final exists."""
        fd, tmp = tempfile.mkstemp(prefix=".saving-", suffix=".yaml", dir=final.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            except OSError:
                # Filesystems without hard links: O_EXCL still refuses to overwrite.
                try:
                    exclusive = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(exclusive, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(text)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _index_exists(self) -> bool:
        """False for a fresh SQLite home, so reading a spec never creates the database."""
        url = self.settings.database_url
        if self._store is None and url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///")).exists()
        return True

    def _index(self, spec: FlowSpec, path: Path, text: str) -> None:
        assert spec.version is not None and spec.created_at is not None
        from playground.store.flows import FlowVersionRow

        self.store.flows.index_flow_version(
            FlowVersionRow(
                name=spec.name,
                version=spec.version,
                parent=spec.parent,
                path=str(path.relative_to(self.root)),
                sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                description=spec.description,
                model_id=spec.model.id,
                created_at=datetime.fromisoformat(spec.created_at),
            )
        )

    def sync_index(self) -> int:
        """Index version files that are on disk but not in the store (e.g. from git)."""
        added = 0
        if not self.root.is_dir():
            return 0
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or not is_valid_name(folder.name):
                continue
            indexed = {r.version for r in self.store.flows.flow_version_rows(folder.name)}
            for version in self._disk_versions(folder.name):
                if version in indexed:
                    continue
                path = folder / f"{folder.name}.v{version}.yaml"
                try:
                    spec = read_spec_file(path)
                except SpecError:
                    continue  # a broken file stays out of the index; `flow validate` explains
                if spec.name != folder.name or spec.version != version:
                    continue
                if spec.created_at is None:
                    spec = spec.model_copy(update={"created_at": utc_stamp()})
                self._index(spec, path, path.read_text(encoding="utf-8"))
                added += 1
        return added

    def get(self, name: str, version: int) -> FlowSpec:
        """One saved version; NotFoundError if it does not exist."""
        path = self.path_for(name, version)
        if not path.is_file():
            known = self.versions(name)
            hint = f"it has versions {_ranges(known)}" if known else "it has no saved versions"
            raise NotFoundError(f"Flow {name} has no version {version}; {hint}.")
        raw = path.read_bytes()
        row = self.store.flows.flow_version_row(name, version) if self._index_exists() else None
        if row is not None and row.sha256 != hashlib.sha256(raw).hexdigest():
            raise SpecError(
                f"Flow {name} v{version} was changed on disk after it was saved ({path}); "
                "restore it, or save the edited file as a new version with `playground flow save`."
            )
        spec = parse_spec(raw, str(path))
        if spec.name != name or spec.version != version:
            raise SpecError(f"{path} says {spec.ref}, not {name}@{version}; restore the file.")
        return spec

    def yaml_text(self, name: str, version: int) -> str:
        """The stored YAML of a version, exactly as saved."""
        self.get(name, version)
        return self.path_for(name, version).read_text(encoding="utf-8")

    def list(self) -> list[FlowSummary]:
        """Every flow with its versions and labels, alphabetically."""
        self.sync_index()
        summaries = []
        for name in self.store.flows.flow_names():
            rows = [
                r
                for r in self.store.flows.flow_version_rows(name)
                if (self.root / r.path).is_file()
            ]
            if not rows:
                continue
            summaries.append(
                FlowSummary(name, rows[-1].version, rows, self.store.flows.flow_labels(name))
            )
        return summaries

    def set_label(self, name: str, label: str, version: int) -> int | None:
        """Point a label at a version (one version per label); returns the previous version."""
        check_label(label)
        self.get(name, version)  # must exist and be intact
        self.sync_index()
        return self.store.flows.move_flow_label(name, label, version)

    def labels(self, name: str) -> dict[str, int]:
        """Current labels of a flow."""
        check_name(name)
        return self.store.flows.flow_labels(name)

    def label_history(self, name: str, label: str | None = None) -> list[LabelMove]:
        """Every move of a flow's labels, oldest first."""
        check_name(name)
        return self.store.flows.flow_label_moves(name, label)

    def resolve_ref(self, ref: str) -> FlowSpec:
        """`name` (newest), `name@3`, `name@latest` or `name@<label>` to a saved spec."""
        match = REF_PATTERN.fullmatch(ref)
        if not match:
            raise NotFoundError(
                f"'{ref}' is neither a flow file nor a flow reference like name@3 or "
                "name@production; check the path or run `playground flow list`."
            )
        name, part = match["name"], match["ref"]
        known = self.versions(name)
        if not known:
            raise NotFoundError(
                f"No flow named {name}; save one with `playground flow save FILE` or check "
                "`playground flow list`."
            )
        if part is None or part == "latest":
            return self.get(name, known[-1])
        if part.isdigit():
            return self.get(name, int(part))
        labels = self.store.flows.flow_labels(name) if self._index_exists() else {}
        if part not in labels:
            have = ", ".join(sorted(labels)) or "none yet"
            raise NotFoundError(
                f"Flow {name} has no label '{part}' (labels: {have}); set one with "
                f"`playground flow label {name} VERSION {part}`."
            )
        return self.get(name, labels[part])

    def resolve(self, path_or_ref: str | Path) -> tuple[FlowSpec, str]:
        """A spec from a file path or a registry reference, with where it came from."""
        if isinstance(path_or_ref, Path):
            return read_spec_file(path_or_ref), str(path_or_ref)
        candidate = Path(path_or_ref)
        if candidate.is_file() or (looks_like_path(path_or_ref) and "@" not in path_or_ref):
            return read_spec_file(candidate), str(candidate)
        spec = self.resolve_ref(path_or_ref)
        return spec, spec.ref

    def import_text(
        self, raw: str | bytes, name: str | None = None, source: str | None = None
    ) -> FlowSpec:
        """Validate uploaded YAML (schema, templates, sandbox) and save it as the next version."""
        spec = parse_spec(raw, source)
        check_templates(spec)
        return self.import_spec(spec, name or None)

    def overview(self, name: str) -> list[dict[str, object]]:
        """One row per version, newest first: labels, model, evidence, description."""
        check_name(name)
        labels_by_version: dict[int, list[str]] = {}
        for label, version in self.labels(name).items():
            labels_by_version.setdefault(version, []).append(label)
        rows: list[dict[str, object]] = []
        for version in reversed(self.versions(name)):
            try:
                spec = self.get(name, version)
            except (SpecError, NotFoundError) as exc:
                rows.append({"version": version, "description": f"unreadable: {exc}"})
                continue
            ratings = spec.evidence.ratings if spec.evidence else None
            rows.append(
                {
                    "version": version,
                    "parent": spec.parent,
                    "labels": ", ".join(sorted(labels_by_version.get(version, []))),
                    "model": spec.model.id,
                    "ratings": ratings.count if ratings else 0,
                    "mean stars": ratings.mean if ratings else None,
                    "runs": len(spec.evidence.runs) if spec.evidence else 0,
                    "created": spec.created_at,
                    "description": spec.description,
                }
            )
        return rows

    def import_spec(self, spec: FlowSpec, name: str | None = None) -> FlowSpec:
        """Save a spec read from elsewhere as a new flow or the next version of its name."""
        if name:
            check_name(name)
            spec = spec.model_copy(update={"name": name})
        parent = spec.version if spec.version and spec.version in self.versions(spec.name) else None
        return self.save(spec, parent=parent)


def _ranges(versions: list[int]) -> str:
    if len(versions) == 1:
        return str(versions[0])
    if versions == list(range(versions[0], versions[-1] + 1)):
        return f"{versions[0]}-{versions[-1]}"
    return ", ".join(str(v) for v in versions)
