"""`playground flow serve`, `flow build` and `monitor`: operate a flow version."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import tempfile
from pathlib import Path

import click

from playground.cli.common import echo_json, settings, stderr


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("serve")
@click.argument("refs", metavar="NAME@LABEL|PATH...", nargs=-1, required=True)
@click.option(
    "--host", default=None, help="Address to listen on (default [serve] host, 127.0.0.1)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 8300).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (each resolves labels and records runs on its own; /metrics "
    "sums them all).",
)
def serve_flow(refs: tuple[str, ...], host: str | None, port: int | None, workers: int) -> None:
    """Serve flow versions as an HTTP API (OpenAI-compatible chat route included)."""
    import uvicorn

    from playground.serve.app import create_app
    from playground.serve.settings import serve_settings

    config = settings()
    serve = serve_settings(config)
    host = host or serve.host
    port = port or serve.port
    app = create_app(list(refs), config, serve)  # bad refs, specs or token fail here
    if not _loopback(host) and not serve.api_key_env:
        stderr(
            f"Warning: listening on {host} without a token; anyone who can reach it can call "
            "your models. Set [serve] api_key_env."
        )
    served = app.state.service.resolver
    shown = ", ".join(
        f"{r.name}@v{r.version}" if r.version else r.name
        for r in (served.resolve(n) for n in served.names)
    )
    stderr(f"Serving {shown} at http://{host}:{port} (OpenAPI at /openapi.json); Ctrl+C stops.")
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    os.environ["PLAYGROUND_SERVE_REFS"] = json.dumps(list(refs))
    # Each worker is its own process: /metrics sums them all through prometheus_client's
    # multiprocess files (see playground.serve.metrics); a fresh directory, so no stale counts.
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="playground-serve-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "playground.serve.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@click.command("build")
@click.argument("ref", metavar="NAME@LABEL|PATH")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write (created if needed).",
)
def build_flow(ref: str, out_dir: Path) -> None:
    """Write a deployable directory: the spec, pinned requirements and a Dockerfile."""
    from playground.flows.registry import FlowRegistry
    from playground.flows.run import Flow
    from playground.serve.build import build_directory

    spec, source = FlowRegistry(settings()).resolve(ref)
    Flow(spec, settings(), source).check()
    for path in build_directory(spec, out_dir):
        click.echo(str(path))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


@click.command("monitor")
@click.option("--window", default="24h", show_default=True, help="How far back: 15m, 1h, 7d...")
@click.option("--flow", "flow_name", default=None, help="Only this flow.")
@click.option("--evaluate", is_flag=True, help="Evaluate [[alerts]] now and post their webhooks.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def monitor(window: str, flow_name: str | None, evaluate: bool, as_json: bool) -> None:
    """Served calls per flow version: requests, errors, latency, tokens, cost, scores, alerts."""
    from playground.serve.monitor import monitor_report
    from playground.serve.settings import window_seconds

    try:
        window_seconds(window)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--window") from None
    config = settings()
    if evaluate:
        from playground.serve.alerts import AlertEngine, WebhookSender

        sender = WebhookSender(config)
        AlertEngine(config, sender=sender).evaluate()
        sender.drain()
        sender.stop()
    report = monitor_report(config, window, flow_name)
    if as_json:
        echo_json(report.to_json())
        return
    if not report.versions:
        click.echo(
            f"No served calls in the last {window}; serve a flow with `playground flow serve`."
        )
    for v in report.versions:
        stars = "-" if v.mean_stars is None else f"{v.mean_stars:.1f}"
        score = "-" if v.online_score is None else f"{v.online_score:.2f}"
        click.echo(
            f"{v.flow}@v{v.version}  {v.requests} calls  errors {v.error_rate:.1%}  "
            f"p50 {_ms(v.latency_p50_ms)} ms  p95 {_ms(v.latency_p95_ms)} ms  "
            f"{v.tokens} tokens  ${v.cost_usd:.4f}  stars {stars}  score {score}"
        )
    for alert in report.alerts:
        state = f"FIRING since {alert['since']}" if alert["firing"] else "ok"
        click.echo(f"alert {alert['name']}: {alert['rule']}: {state}")
