"""Flow spec texts shared by the flow tests."""

from __future__ import annotations

from pathlib import Path

MODEL_ID = "local/smollm2-135m-instruct"

GOOD = """\
schema: playground.flow/v1
name: gear-support
description: Answer customer questions in one sentence
inputs:
  question: {type: string, default: "Is the trail tent waterproof?"}
prompt:
  messages:
    - {role: system, content: "Answer in one short sentence."}
    - {role: user, content: "{{ question }}"}
model:
  id: local/smollm2-135m-instruct
  params: {temperature: 0.0, top_p: 1.0, max_tokens: 24, seed: 7}
"""


def write_spec(folder: Path, text: str = GOOD, name: str = "flow.yaml") -> Path:
    """Write a spec file and return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
