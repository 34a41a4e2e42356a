"""`playground app`, `models`, `run` and `serve-model`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from playground.cli.common import (
    echo_format_check,
    echo_json,
    open_store_once_sent,
    parse_pairs,
    sends_first,
    settings,
    split_pairs,
    start_remote_early,
    stderr,
)
from playground.errors import PlaygroundError
from playground.files import read_bounded

if TYPE_CHECKING:
    from playground.config import Settings
    from playground.models.base import Message, ModelParams
    from playground.models.response_format import ResponseFormat
    from playground.records import Result, Run

# What each command needs is imported inside it: `app` and `--help` stay quick, and `run`
# reaches its first request without the store, which it opens while the request is in flight.

APP_FILE = Path(__file__).resolve().parents[2] / "app.py"
MAX_PROMPT_FILE_BYTES = 1_000_000  # a prompt is stored twice (template and rendered message)
PARALLEL_WORKERS = 48  # one parallel fragment per grid cell: 12 models x 4 variants


def streamlit_options(address: str, headless: bool, dev: bool) -> dict[str, str | int | bool]:
    """The Streamlit options the app runs with (`streamlit run --NAME VALUE`), by name."""
    # .streamlit/config.toml is read from the working directory, so pass what the grid needs.
    options: dict[str, str | int | bool] = {"runner.parallelMaxWorkers": PARALLEL_WORKERS}
    # A specific address also stops Streamlit from looking up an external IP (no network).
    options |= {"server.address": address, "browser.gatherUsageStats": False}
    # No file watcher unless developing: with a virtual environment inside the project folder
    # it watched thousands of folders, overflowed inotify and kept a core busy while idle.
    options["server.fileWatcherType"] = "auto" if dev else "none"
    options["server.runOnSave"] = dev
    # A product's toolbar: no "Deploy" button or developer menu in front of an audience.
    options["client.toolbarMode"] = "developer" if dev else "viewer"
    # Streamlit runs a full gc.collect() after every script run. With torch, Chroma and a
    # model loaded that takes most of a second holding the GIL, and a live grid reruns every
    # 0.4 s: a RAG answer then took 45 s to be scored. Python's own collector still runs.
    options["runner.postScriptGC"] = False
    if headless:
        options["server.headless"] = True
    return options


def streamlit_command(port: int | None, address: str, headless: bool, dev: bool) -> list[str]:
    """The `streamlit run app.py` command line the launcher replaces itself with."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP_FILE)]
    for name, value in streamlit_options(address, headless, dev).items():
        command += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    if port:
        command += ["--server.port", str(port)]
    return command


@click.command()
@click.option("--port", type=int, default=None, help="Port for the web app (default 8501).")
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 to share on your network).",
)
@click.option("--headless/--browser", default=False, help="Do not open a browser tab.")
@click.option(
    "--dev",
    is_flag=True,
    help="Watch the app's source files and rerun pages when one is saved (for developing it).",
)
def app(port: int | None, address: str, headless: bool, dev: bool) -> None:
    """Launch the Streamlit app."""
    if not APP_FILE.exists():
        raise PlaygroundError(
            f"app.py not found at {APP_FILE}; install from a checkout with `pip install -e .`."
        )
    command = streamlit_command(port, address, headless, dev)
    sys.stdout.flush()
    sys.stderr.flush()
    # Replace this process, so that a signal (kill, Ctrl-C, a service manager's stop) reaches
    # Streamlit itself instead of leaving it running on the port after the launcher exits.
    os.execv(sys.executable, command)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def models(as_json: bool) -> None:
    """List usable models and their status."""
    from playground.models.registry import list_models

    infos = list_models(settings())
    if as_json:
        echo_json(
            [
                {
                    "id": i.id,
                    "provider": i.provider,
                    "ready": i.ready,
                    "status": i.status,
                    "detail": i.detail,
                }
                for i in infos
            ]
        )
        return
    width = max(len(i.id) for i in infos)
    for info in infos:
        detail = f"  ({info.detail})" if info.detail and not info.ready else ""
        click.echo(f"{info.id:<{width}}  {info.status}{detail}")


def _parse_params(pairs: tuple[str, ...]) -> ModelParams:
    from playground.models.base import ModelParams

    data: dict[str, object] = {}
    stops: list[str] = []
    for key, value in split_pairs(pairs, "--param"):
        if key == "stop":  # repeated stops add up; `stop=` alone means none
            stops += [value] if value else []
            data[key] = stops
        else:
            data[key] = value
    try:
        return ModelParams.parse(data)
    except PlaygroundError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None


def _parse_examples(pairs: tuple[str, ...]) -> list[Message]:
    from playground.models.base import Message

    examples = []
    for role, text in split_pairs(pairs, "--example"):
        if role not in ("user", "assistant"):
            raise click.BadParameter(
                f"'{role}' is not a few-shot role; start each example with user= or assistant=.",
                param_hint="--example",
            )
        examples.append(Message(role=role, content=text))  # type: ignore[arg-type]
    return examples


def _parse_response_format(value: str) -> ResponseFormat | None:
    from playground.models.response_format import parse_format_option

    try:
        return parse_format_option(value)
    except PlaygroundError as exc:  # a bad schema file is bad usage: exit 2, one sentence
        raise click.BadParameter(str(exc), param_hint="--response-format") from None


def execute_and_print(config: Settings, the_run: Run, as_json: bool) -> None:
    """Run every cell, scoring and saving each as it ends; print; exit 1 if one failed."""
    from playground.runner import CellFinisher, run_cells

    positions = {result.id: i for i, result in enumerate(the_run.results)}
    open_store_once_sent(config)
    finisher = CellFinisher(config, the_run)

    def finish(result: Result) -> None:
        # score and save each cell as it completes: a killed run keeps every finished answer
        for problem in finisher.finish(result, positions[result.id]):
            stderr(problem)

    results = run_cells(the_run.results, config, on_done=finish)
    the_run.results = results
    if as_json:
        document: dict[str, object] = {"run_id": the_run.id}
        if the_run.parent_run_id is not None:
            document["parent_run_id"] = the_run.parent_run_id
        echo_json({**document, "results": [r.to_json() for r in results]})
    else:
        for result in results:
            click.echo(click.style(f"== {result.model_id}", bold=True))
            if result.error:
                if result.text:  # a cut-off answer keeps what arrived
                    click.echo(result.text)
                click.echo(f"Error: {result.error}", err=True)
                continue
            click.echo(result.text)
            echo_format_check(result)
            click.echo(
                click.style(
                    f"   ttft {result.ttft_ms or 0:.0f} ms · total {result.latency_ms or 0:.0f} ms"
                    f" · {result.tokens_per_s or 0:.1f} tok/s · {result.usage.prompt_tokens}+"
                    f"{result.usage.completion_tokens} tokens · ${result.cost_usd:.6f}",
                    dim=True,
                )
            )
        stderr(f"saved run {the_run.id}")
    if any(r.error for r in results):
        raise SystemExit(1)


def _read_prompt_file(path: Path) -> str:
    try:
        data = read_bounded(path, MAX_PROMPT_FILE_BYTES)  # /dev/zero must not fill memory
    except OSError as exc:
        raise click.BadParameter(
            f"Cannot read {path} ({exc.strerror or exc}).", param_hint="--prompt-file"
        ) from None
    if len(data) > MAX_PROMPT_FILE_BYTES:
        raise click.BadParameter(
            f"{path} is larger than {MAX_PROMPT_FILE_BYTES // 1_000_000} MB; a prompt file may "
            "hold at most that much text, so shorten it or attach it as a knowledge store.",
            param_hint="--prompt-file",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path} is not UTF-8 text.", param_hint="--prompt-file") from None


@sends_first
@click.command()
@click.option("--model", "model_ids", multiple=True, required=True, help="Model id; repeatable.")
@click.option("--prompt", default=None, help="The user message (a Jinja2 template).")
@click.option(
    "--prompt-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the user message from a file.",
)
@click.option("--system", default="", help="The system message (a Jinja2 template).")
@click.option(
    "--example",
    "example_pairs",
    multiple=True,
    metavar="user=TEXT|assistant=TEXT",
    help="A few-shot message sent before the prompt; repeatable, alternating user and assistant.",
)
@click.option("--var", "var_pairs", multiple=True, help="Template variable k=v; repeatable.")
@click.option("--param", "param_pairs", multiple=True, help="Model parameter k=v; repeatable.")
@click.option("--store", default=None, help="Knowledge store to retrieve {{ context }} from.")
@click.option("--top-k", default=4, show_default=True, type=click.IntRange(1, 50))
@click.option(
    "--response-format",
    "response_format",
    default="text",
    metavar="text|json|SCHEMA.json",
    help="Answer as text, any JSON, or JSON matching the JSON Schema in this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def run(
    model_ids: tuple[str, ...],
    prompt: str | None,
    prompt_file: Path | None,
    system: str,
    example_pairs: tuple[str, ...],
    var_pairs: tuple[str, ...],
    param_pairs: tuple[str, ...],
    store: str | None,
    top_k: int,
    response_format: str,
    as_json: bool,
) -> None:
    """Run one prompt on one or more models at once and save the run."""
    if (prompt is None) == (prompt_file is None):
        raise click.UsageError("Give exactly one of --prompt or --prompt-file.")
    start_remote_early(model_ids, import_sdk=False)  # the SDK is imported here, in line
    fmt = _parse_response_format(response_format)
    if prompt_file is not None:
        prompt = _read_prompt_file(prompt_file)
    assert prompt is not None
    from playground.records import PromptVariant, RetrievalSettings
    from playground.runner import prepare_run

    config = settings()
    retrieval = RetrievalSettings(store=store, top_k=top_k) if store else None
    the_run = prepare_run(
        config,
        [PromptVariant(system=system, user=prompt, examples=_parse_examples(example_pairs))],
        list(model_ids),
        dict.fromkeys(model_ids, _parse_params(param_pairs)),
        parse_pairs(var_pairs, "--var"),
        retrieval,
        source="cli",
        response_format=fmt,
    )
    execute_and_print(config, the_run, as_json)


@click.command("serve-model")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--n-ctx", type=int, default=None, help="Context window in tokens (default: the model's own)."
)
def serve_model(port: int, host: str, n_ctx: int | None) -> None:
    """Serve the embedded model as an OpenAI-compatible server (llama-cpp-python's server)."""
    from playground.models.local import DEFAULT_MODEL_ID, DEFAULT_N_CTX, embedded_gguf_path

    n_ctx = n_ctx or DEFAULT_N_CTX
    gguf = embedded_gguf_path()
    model_name = DEFAULT_MODEL_ID.split("/", 1)[1]
    stderr(f"serving {DEFAULT_MODEL_ID} at http://{host}:{port}/v1 (model name '{model_name}')")
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        # its default stops a running answer when the next request arrives (the first answer
        # then ends empty); queue requests instead
        "--interrupt_requests",
        "False",
    ]
    sys.stdout.flush()
    # Replace this process so that signals (Ctrl-C, terminate) reach the server directly.
    os.execv(sys.executable, command)
