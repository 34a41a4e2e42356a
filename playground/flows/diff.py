"""Compare two flow versions: a unified YAML diff and a field-level summary in words."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from playground.flows.loader import dump_yaml
from playground.flows.spec import FlowSpec

# Bookkeeping that differs between any two versions and says nothing about behaviour.
_IGNORED = {"version", "parent", "created_at"}
_MISSING = object()


@dataclass
class FlowDiff:
    """The difference between two specs."""

    unified: str
    changes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line such as "temperature 0.7 -> 0.2, model changed" ("no changes" if equal)."""
        return ", ".join(self.changes) if self.changes else "no changes"

    @property
    def identical(self) -> bool:
        """True when the specs differ only in version bookkeeping."""
        return not self.changes


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _short(value: Any) -> str:
    if value is _MISSING:
        return "unset"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _messages_changes(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    changes = []
    for index in range(max(len(a), len(b))):
        left = a[index] if index < len(a) else None
        right = b[index] if index < len(b) else None
        if left == right:
            continue
        if left is None:
            changes.append(f"{right['role']} message added")  # type: ignore[index]
        elif right is None:
            changes.append(f"{left['role']} message removed")
        elif left["role"] != right["role"]:
            changes.append(f"message {index + 1} role {left['role']} -> {right['role']}")
        else:
            changes.append(f"{left['role']} prompt changed")
    return changes


def summarize(a: FlowSpec, b: FlowSpec) -> list[str]:
    """Field-level changes from a to b in words, most important first."""
    left, right = a.to_data(), b.to_data()
    changes: list[str] = []
    if left["model"]["id"] != right["model"]["id"]:
        changes.append("model changed")
    if left["model"].get("endpoint") != right["model"].get("endpoint"):
        changes.append("endpoint changed")
    lp, rp = left["model"].get("params", {}), right["model"].get("params", {})
    for key in list(dict.fromkeys([*lp, *rp])):
        if lp.get(key, _MISSING) != rp.get(key, _MISSING):
            before, after = _short(lp.get(key, _MISSING)), _short(rp.get(key, _MISSING))
            changes.append(f"{key} {before} -> {after}")
    changes += _messages_changes(left["prompt"]["messages"], right["prompt"]["messages"])
    for section in ("retrieval", "evidence"):
        if section in left and section not in right:
            changes.append(f"{section} removed")
        elif section in right and section not in left:
            changes.append(f"{section} added")
        elif section == "retrieval" and left.get(section) != right.get(section):
            fl, fr = _flatten(left[section]), _flatten(right[section])
            for key in list(dict.fromkeys([*fl, *fr])):
                if fl.get(key, _MISSING) != fr.get(key, _MISSING):
                    changes.append(
                        f"retrieval {key} {_short(fl.get(key, _MISSING))} -> "
                        f"{_short(fr.get(key, _MISSING))}"
                    )
        elif section == "evidence" and left.get(section) != right.get(section):
            changes.append("evidence changed")
    li, ri = left.get("inputs", {}), right.get("inputs", {})
    for key in list(dict.fromkeys([*li, *ri])):
        if key not in ri:
            changes.append(f"input {key} removed")
        elif key not in li:
            changes.append(f"input {key} added")
        elif li[key] != ri[key]:
            changes.append(f"input {key} changed")
    for key in ("name", "description"):
        if left.get(key) != right.get(key):
            changes.append(f"{key} changed")
    known = {
        "schema",
        "inputs",
        "prompt",
        "model",
        "retrieval",
        "evidence",
        "name",
        "description",
        *_IGNORED,
    }
    for key in list(dict.fromkeys([*left, *right])):
        if key not in known and left.get(key, _MISSING) != right.get(key, _MISSING):
            changes.append(f"{key} changed")
    return changes


def diff_specs(a: FlowSpec, b: FlowSpec, a_label: str = "", b_label: str = "") -> FlowDiff:
    """Unified diff of the two YAML documents plus the field-level summary."""
    a_text = dump_yaml(a.to_data()).splitlines(keepends=True)
    b_text = dump_yaml(b.to_data()).splitlines(keepends=True)
    unified = "".join(
        difflib.unified_diff(a_text, b_text, fromfile=a_label or a.ref, tofile=b_label or b.ref)
    )
    return FlowDiff(unified=unified, changes=summarize(a, b))
