"""`playground flow build`: a directory an engineer can ship (spec, pins, Dockerfile)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from playground.flows.loader import dump_spec
from playground.flows.spec import FlowSpec

DISTRIBUTION = "prompt-playground"
PORT = 8300
# The CPU build of torch; a plain `torch` requirement pulls a multi-GB CUDA build.
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

DOCKERFILE = """\
# Serves {ref} with `playground flow serve`; build with: docker build -t {name} .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \\
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV PLAYGROUND_HOME=/data PLAYGROUND_CONFIG=/app/playground.toml PYTHONUNBUFFERED=1
COPY requirements.txt .
# The playground itself: put its wheel in wheels/ (pip wheel --no-deps -w wheels/ <checkout>)
# or publish it to your index.
COPY wheels/ /wheels/
RUN pip install --no-cache-dir --extra-index-url {torch_index} --find-links /wheels \\
    -r requirements.txt
COPY flow.yaml playground.toml ./
VOLUME /data
EXPOSE {port}
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health')"
CMD ["playground", "flow", "serve", "flow.yaml", "--host", "0.0.0.0", "--port", "{port}"]
"""

CONFIG = """\
# Runtime settings of the served flow; secrets come from the environment, never this file.
[serve]
api_key_env = "PLAYGROUND_SERVE_TOKEN"  # clients send Authorization: Bearer $PLAYGROUND_SERVE_TOKEN
max_body_kb = 64
max_tokens = 1024
score_sample = 0.1

# One PostgreSQL store for every replica (password from the environment):
# [storage]
# database_url = "postgresql://playground@db:5432/playground"
# password_env = "PLAYGROUND_DB_PASSWORD"
"""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _requirements() -> tuple[str, list[str]]:
    # A checkout's pyproject.toml is what this code needs; an installed wheel's metadata else.
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DISTRIBUTION:
            return str(project.get("version", "0")), list(project.get("dependencies", []))
    dist = importlib.metadata.distribution(DISTRIBUTION)
    return dist.version, list(dist.requires or [])


def pinned_requirements() -> list[str]:
    """This installation's own version and its runtime dependencies, pinned as installed."""
    own_version, requirements = _requirements()
    pins = [f"{DISTRIBUTION}=={own_version}"]
    for requirement in requirements:
        if "extra ==" in requirement:
            continue  # test tools are not needed to serve
        match = _NAME.match(requirement)
        if not match:
            continue
        name = match.group()
        extras = requirement[len(name) :].split(";")[0].strip()
        extras = extras[: extras.index("]") + 1] if extras.startswith("[") else ""
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        pins.append(f"{name}{extras}=={version}")
    return pins


def build_directory(spec: FlowSpec, out: Path) -> list[Path]:
    """Write flow.yaml, requirements.txt, playground.toml, Dockerfile and wheels/; return them."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "wheels").mkdir(exist_ok=True)
    files = {
        "flow.yaml": dump_spec(spec),
        "requirements.txt": "# pinned from the environment that ran `playground flow build`\n"
        + "\n".join(pinned_requirements())
        + "\n",
        "playground.toml": CONFIG,
        "Dockerfile": DOCKERFILE.format(
            ref=spec.ref, name=spec.name, port=PORT, torch_index=TORCH_INDEX
        ),
        "wheels/README.txt": "Put the prompt-playground wheel here before `docker build`.\n",
    }
    written = []
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
