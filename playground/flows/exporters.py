"""Exports of a flow spec to the tools engineers already use: PromptFlow, Prompty, plain Python.

Each target lives in playground/flows/export/. Every exporter builds all its files in memory
first (`build_export`), so a failure writes nothing. Keys never appear in an export:
connections carry a placeholder and code reads the environment variable the spec names.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

from playground.config import Settings
from playground.errors import SpecError
from playground.flows.export.promptflow import promptflow_files
from playground.flows.export.prompty import prompty_text
from playground.flows.export.python import python_script
from playground.flows.export.target import target_for
from playground.flows.spec import FlowSpec

ExportFormat = Literal["promptflow", "prompty", "python"]
FORMATS: tuple[ExportFormat, ...] = ("promptflow", "prompty", "python")


def build_export(spec: FlowSpec, fmt: str, settings: Settings | None = None) -> dict[str, str]:
    """Every file of an export, relative path -> text, built in memory."""
    if fmt == "promptflow":
        return promptflow_files(spec, settings)
    if fmt == "prompty":
        return {f"{spec.name}.prompty": prompty_text(spec, settings)}
    if fmt == "python":
        script = python_script(spec, target_for(spec, settings))
        return {f"{spec.name.replace('-', '_')}.py": script}
    raise SpecError(f"Unknown export format '{fmt}'; use one of {', '.join(FORMATS)}.")


def export_flow(
    spec: FlowSpec, fmt: str, out_dir: Path, settings: Settings | None = None
) -> list[Path]:
    """Write an export into out_dir (created if needed); returns the paths written."""
    files = build_export(spec, fmt, settings)
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecError(f"{out_dir} is a file; give a directory for --out.")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text in files.items():
        path = out_dir / relative
        fd, tmp = tempfile.mkstemp(prefix=".export-", dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o755 if relative.endswith(".py") else 0o644)
        os.replace(tmp, path)
        written.append(path)
    return written


def export_zip(spec: FlowSpec, fmt: str, settings: Settings | None = None) -> bytes:
    """A zip archive of an export, for download buttons."""
    files = build_export(spec, fmt, settings)
    buffer = io.BytesIO()
    folder = f"{spec.name}-v{spec.version or 0}-{fmt}"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, text in files.items():
            archive.writestr(f"{folder}/{relative}", text)
    return buffer.getvalue()
