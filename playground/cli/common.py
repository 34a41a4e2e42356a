"""What every `playground` command shares: error boundary, settings, JSON output."""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from playground.errors import PlaygroundError
from playground.redaction import clean_message

if TYPE_CHECKING:
    from playground.config import Settings
    from playground.records import Result


# A command that sends (`sends_first`) runs its first seconds with the cyclic garbage collector
# paused. Start-up builds hundreds of thousands of objects (the SDK's modules, pydantic's
# schemas) and the collector walked that growing heap again and again: 90-110 ms of CPU before
# the first request of `run` and `eval run`, a tenth of it. Resumed when the command ends or
# this long after it began, whichever is first; resumed at the send instead, its first full
# collection landed while the answer streamed in (60 ms more reported latency for a 1 s call).
GC_PAUSE_LIMIT_S = 5.0


def sends_first(command: click.Command) -> click.Command:
    """Mark a command whose first request should leave before the garbage collector runs."""
    command.gc_paused_at_start = True  # type: ignore[attr-defined]
    return command


_gc_lock = threading.Lock()
_gc_pauses = 0  # pauses begun in this process
_gc_holder: int | None = None  # the pause that holds the collector now, if any


def _pause_gc() -> None:
    global _gc_pauses, _gc_holder
    with _gc_lock:
        if gc.isenabled():  # a caller that paused it itself keeps it paused
            gc.disable()
            _gc_pauses += 1
            _gc_holder = _gc_pauses


def _resume_gc(pause: int | None = None) -> None:
    global _gc_holder
    # a timer left by an earlier command in this process must not end a later one's pause
    with _gc_lock:
        if _gc_holder is not None and pause in (None, _gc_holder):
            _gc_holder = None
            gc.enable()


class PlaygroundGroup(click.Group):
    """A click group that turns library errors into one `Error: ...` line and exit 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line, the garbage collector paused until a command says otherwise."""
        _pause_gc()
        try:
            return super().main(*args, **kwargs)
        finally:
            _resume_gc()

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """The subcommand; a command that does not send first resumes the collector now."""
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, click.Group):
            if getattr(command, "gc_paused_at_start", False):
                if _gc_holder is None:
                    return name, command, rest
                timer = threading.Timer(GC_PAUSE_LIMIT_S, _resume_gc, [_gc_holder])
                timer.daemon = True
                timer.start()
            else:
                _resume_gc()  # servers and listings run with the collector, as they always did
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; PlaygroundError -> exit 1, unexpected errors -> one line too."""
        try:
            value = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe (`| head`) shows here, not at interpreter exit
            return value
        except PlaygroundError as exc:
            raise click.ClickException(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            raise  # the reader stopped (`runs list | head`): click's main exits quietly
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            if os.environ.get("PLAYGROUND_RAISE_ERRORS"):
                raise
            raise click.ClickException(clean_message(_os_error_sentence(exc))) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            if os.environ.get("PLAYGROUND_RAISE_ERRORS"):
                raise
            raise click.ClickException(
                clean_message(
                    f"Unexpected {type(exc).__name__}: {exc} "
                    "(set PLAYGROUND_RAISE_ERRORS=1 to see the traceback)."
                )
            ) from None


class LazyGroup(PlaygroundGroup):
    """A group whose subcommands are imported only when one runs (or help lists them).

    `lazy_commands` maps a name to "module:attribute", so `playground run` never imports the
    store, the flows or the evaluation code that other commands need.
    """

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand's name, loaded or not."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The subcommand, importing its module the first time it is asked for."""
        target = self.lazy_commands.get(cmd_name)
        if target is not None and cmd_name not in self.commands:
            module, _, attribute = target.partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


def settings() -> Settings:
    """Settings for this command (playground.toml + environment), loaded once per process."""
    from playground.config import load_settings

    ctx = click.get_current_context()
    root = ctx.find_root()
    root.meta.setdefault("playground.settings", None)
    if root.meta["playground.settings"] is None:
        root.meta["playground.settings"] = load_settings()
    return root.meta["playground.settings"]  # type: ignore[no-any-return]


def open_store_once_sent(config: Settings, create: bool = True) -> None:
    """Import (and, with `create`, open) the store in the background once a request has left.

    SQLAlchemy and the migrations take a few hundred milliseconds: done while the model
    thinks, they cost the user nothing; done before the send, they would delay every answer.
    Without `create` nothing is written (a failed `flow run` leaves no database behind). A
    failure here is left for the save to report, in its own words.
    """
    from playground.models.base import request_sent

    def open_it() -> None:
        request_sent.wait(timeout=10.0)  # a run that never sends still saves its errors
        with contextlib.suppress(Exception):
            from playground.store import open_store

            if create:
                open_store(config)

    threading.Thread(target=open_it, name="open-store", daemon=True).start()


def start_remote_early(model_ids: Sequence[str], import_sdk: bool = True) -> None:
    """Begin, on threads, what a call to an endpoint needs: its SSL context and the openai SDK.

    Both run alongside the reading of the command's input instead of between it and the first
    request. With `model_ids` (what --model gave) they decide; without, a configured endpoint
    or OpenAI/Azure key does, since a flow's model is known only once it has been read.
    """
    from playground.models.openai_compat import build_tls_early, import_sdk_early
    from playground.models.providers import all_providers, provider_for

    if model_ids:  # known without the settings: `run` reads them only after checking its usage
        remote = any(not provider_for(m.partition("/")[0]).in_process for m in model_ids)
    else:
        config = settings()
        remote = any(p.configured(config) and not p.in_process for p in all_providers(config))
    if remote:
        build_tls_early()  # first: loading the CA bundle leaves the GIL to the imports
        if import_sdk:
            import_sdk_early()


def echo_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False))


def split_pairs(pairs: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    """Repeated `k=v` options in order, repeats kept; a malformed one is a usage error (exit 2)."""
    split: list[tuple[str, str]] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{pair}' is not key=value.", param_hint=flag)
        split.append((key.strip(), value))
    return split


def parse_pairs(pairs: tuple[str, ...], flag: str) -> dict[str, str]:
    """Parse repeated `k=v` options; the last of a repeated key wins."""
    return dict(split_pairs(pairs, flag))


def stderr(message: str) -> None:
    """Print a note on stderr (progress, warnings) without disturbing --json output."""
    click.echo(message, err=True)
    sys.stderr.flush()


def _os_error_sentence(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"Cannot use{where}: {exc.strerror or exc}; check the path and its permissions."


def output_file(path: Path | None, flag: str) -> Path | None:
    """`path` when its folder exists (checked before any work is done), else a usage error."""
    if path is None:
        return None
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a file name in it.", param_hint=flag)
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(
            f"folder {folder} does not exist; create it first or write somewhere else.",
            param_hint=flag,
        )
    return path


def write_output(path: Path, text: str, flag: str) -> None:
    """Write a command's output file; a missing folder or a refused write is one sentence."""
    output_file(path, flag)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(
            f"Cannot write {path} ({exc.strerror or exc}); check the folder's permissions "
            f"or choose another {flag}."
        ) from None


def echo_format_check(result: Result) -> None:
    """Under a JSON answer, on stderr: whether it is valid against its format, and why not."""
    check = result.format_check
    if check is not None:
        stderr(f"   {'valid' if check.valid else 'invalid'}: {check.reason}")
