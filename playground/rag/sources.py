"""Which files an ingest of some paths reads, and the name each one is known by in a store.

A document's identity in a store is its name, so two different files must never share one:
names are paths relative to the deepest folder that holds everything given (one folder: paths
inside it; one file: its own name), which keeps `d1/readme.txt` and `d2/readme.txt` apart.
Directories are walked without following links out of them: a link that leaves the folder
(`tree/passwd.txt -> /etc/passwd`) is skipped and reported, never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from playground.rag.loaders import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest and its name in the store."""

    name: str
    path: Path


@dataclass
class CollectedSources:
    """The files found under some paths, and the ones skipped with the reason why."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _absolute(path: Path) -> Path:
    """An absolute path with `..` folded, links kept (a link's own name is what was given)."""
    return Path(os.path.abspath(path))


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk(folder: Path) -> tuple[list[Path], list[str]]:
    """Supported files below folder (sorted), and a sentence per link that leaves it."""
    root = folder.resolve()
    found: list[Path] = []
    skipped: list[str] = []
    for current, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(current)
        for name in dirs:
            link = here / name
            if link.is_symlink() and not _inside(link.resolve(), root):
                skipped.append(
                    f"Skipped {link}: it links to {link.resolve()}, outside {folder}; "
                    "copy what you need into the folder to ingest it."
                )
        for name in sorted(names):
            file = here / name
            if name.startswith(".") or file.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            if file.is_symlink():
                target = file.resolve()
                if not _inside(target, root):
                    skipped.append(
                        f"Skipped {file}: it links to {target}, outside {folder}; "
                        "copy what you need into the folder to ingest it."
                    )
                    continue
                if not target.is_file():
                    skipped.append(f"Skipped {file}: it links to {target}, which is not a file.")
                    continue
            if file.is_file():
                found.append(file)
    return sorted(found), skipped


def collect_sources(paths: list[Path]) -> CollectedSources:
    """Every supported file of the given files and folders, each with a unique store name."""
    collected = CollectedSources()
    listed: list[Path] = []
    for path in paths:
        if path.is_dir():
            files, skipped = _walk(path)
            listed.extend(files)
            collected.skipped.extend(skipped)
        else:
            listed.append(path)
    if not listed:
        return collected
    # The deepest folder holding everything given: a folder argument counts as itself,
    # a file argument as the folder it sits in.
    anchors = [_absolute(p) if p.is_dir() else _absolute(p).parent for p in paths]
    base = Path(os.path.commonpath([str(a) for a in anchors]))
    seen: set[Path] = set()
    for file in listed:
        absolute = _absolute(file)
        if absolute in seen:  # the same file given twice (a folder and a file in it)
            continue
        seen.add(absolute)
        collected.files.append(SourceFile(absolute.relative_to(base).as_posix(), file))
    return collected
