"""`playground models` and `playground run`: JSON shapes, saved runs, exact errors, exit codes."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from playground.cli import main
from playground.config import load_settings
from playground.store import open_store
from tests.support import FAULT_MODEL, FaultServer, free_port

LOCAL = "local/smollm2-135m-instruct"
SERVED = "smollm2-135m-instruct"
SHORT = ["--param", "max_tokens=8", "--param", "temperature=0", "--param", "seed=5"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def raise_unexpected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug must surface as a traceback in tests, not as a tidy one-line message."""
    monkeypatch.setenv("PLAYGROUND_RAISE_ERRORS", "1")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def unreachable_endpoint() -> str:
    return f'[endpoints.gone]\nbase_url = "http://127.0.0.1:{free_port()}/v1"\nmax_retries = 0\n'


def test_models_json_lists_every_model_with_its_status(
    write_config: Any, llama_server: str
) -> None:
    write_config(f'[endpoints.srv]\nbase_url = "{llama_server}"\n')

    result = invoke("models", "--json")

    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert all(set(m) == {"id", "provider", "ready", "status", "detail"} for m in listed)
    by_id = {m["id"]: m for m in listed}
    assert by_id[LOCAL]["ready"] is True
    assert by_id[f"srv/{SERVED}"] == {
        "id": f"srv/{SERVED}",
        "provider": "srv",
        "ready": True,
        "status": "ready",
        "detail": "",
    }
    assert by_id["openai/gpt-4o-mini"]["status"] == "needs key"


def test_models_as_text_shows_why_a_model_is_not_ready(home: Path) -> None:
    result = invoke("models")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any(line.startswith(LOCAL) and line.endswith("ready") for line in lines)
    assert any(
        line.startswith("openai/gpt-4o-mini") and line.endswith("needs key  (set OPENAI_API_KEY)")
        for line in lines
    )


def test_run_json_on_two_models_carries_every_measurement_and_is_saved(
    write_config: Any, llama_server: str
) -> None:
    write_config(
        f'[endpoints.srv]\nbase_url = "{llama_server}"\n'
        f'[prices."srv/{SERVED}"]\ninput = 1000\noutput = 2000\n'
    )

    result = invoke(
        "run", "--model", LOCAL, "--model", f"srv/{SERVED}", "--system", "Be brief.",
        "--prompt", "Say {{ word }}.", "--var", "word=hello", *SHORT, "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    local, remote = document["results"]
    assert [local["model"], remote["model"]] == [LOCAL, f"srv/{SERVED}"]
    for item in (local, remote):
        assert item["error"] is None
        assert item["text"].strip()
        assert 0 < item["usage"]["completion_tokens"] <= 8
        assert item["usage"]["prompt_tokens"] > 0
        assert 0 < item["ttft_ms"] <= item["latency_ms"]
        assert item["tokens_per_s"] > 0
        assert item["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ]
    assert local["usage"]["estimated"] is False
    assert local["cost_usd"] == 0.0
    assert remote["usage"]["estimated"] is True  # llama_cpp.server streams no usage
    usage = remote["usage"]
    expected_cost = (usage["prompt_tokens"] * 1000 + usage["completion_tokens"] * 2000) / 1e6
    assert remote["cost_usd"] == pytest.approx(expected_cost)

    saved = open_store(load_settings()).runs.get_run(document["run_id"])
    assert saved.source == "cli"
    assert saved.variables == {"word": "hello"}
    assert [r.text for r in saved.results] == [local["text"], remote["text"]]
    assert saved.results[1].params.max_tokens == 8


def test_run_continues_when_one_model_fails(write_config: Any) -> None:
    write_config(unreachable_endpoint())

    result = invoke("run", "--model", "gone/m", "--model", LOCAL, "--prompt", "Hi.", *SHORT)

    assert result.exit_code == 1
    assert result.stdout.startswith("== gone/m\n== local/smollm2-135m-instruct\n")
    assert "tokens · $0.000000" in result.stdout
    error_line, saved_line = result.stderr.splitlines()
    assert error_line.startswith("Error: Cannot reach http://127.0.0.1:")
    assert error_line.endswith(
        "for gone/m; check that the server is running and its base_url in playground.toml."
    )
    assert saved_line.startswith("saved run ")


def test_run_json_prints_every_result_and_exits_1_when_one_fails(write_config: Any) -> None:
    write_config(unreachable_endpoint())

    result = invoke(
        "run", "--model", LOCAL, "--model", "gone/m", "--prompt", "Hi.", *SHORT, "--json"
    )

    assert result.exit_code == 1
    good, bad = json.loads(result.stdout)["results"]
    assert good["error"] is None and good["text"].strip()
    assert bad["error"].startswith("Cannot reach ")
    assert bad["text"] == ""
    assert open_store(load_settings()).runs.count_runs() == 1


def test_run_reads_the_prompt_from_a_file(home: Path) -> None:
    prompt = Path.cwd() / "prompt.txt"
    prompt.write_text("Name a {{ thing }}.", encoding="utf-8")

    result = invoke(
        "run", "--model", LOCAL, "--prompt-file", str(prompt), "--var", "thing=fruit", *SHORT,
        "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    (only,) = json.loads(result.stdout)["results"]
    assert only["messages"] == [{"role": "user", "content": "Name a fruit."}]
    assert only["text"].strip()


@pytest.mark.parametrize(
    ("args", "exit_code", "error_line"),
    [
        (
            ["--model", "nope/x", "--prompt", "hi"],
            1,
            "Error: Unknown model 'nope/x'; no provider 'nope': use local/, openai/, azure/ or "
            "an [endpoints.nope] table in playground.toml.",
        ),
        (
            ["--model", LOCAL, "--prompt", "{{ q }}", "--var", "q="],
            1,
            "Error: Variable 'q' in the user message is empty; fill it in and run again.",
        ),
        (
            ["--model", LOCAL, "--prompt", "{{ q }}"],
            1,
            "Error: Variable 'q' in the user message has no value; give it one "
            "(--var q=... on the command line) and run again.",
        ),
        (
            ["--model", LOCAL, "--prompt", "{% if %}"],
            1,
            "Error: Template syntax error in the user message on line 1: Expected an expression, "
            "got 'end of statement block'; fix the template and run again.",
        ),
        (
            ["--model", "openai/gpt-4o-mini", "--prompt", "hi"],
            1,
            "Error: openai/gpt-4o-mini needs an OpenAI key; set OPENAI_API_KEY in the "
            "environment or in .streamlit/secrets.toml.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--param", "temperature=7"],
            2,
            "Error: Invalid value for --param: Parameter 'temperature' is 7: input should be "
            "less than or equal to 2; change it and run again.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--param", "temperature=nan"],
            2,
            "Error: Invalid value for --param: Parameter 'temperature' is nan: input should be "
            "a finite number; change it and run again.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--prompt-file", "/dev/zero"],
            2,
            "Error: Give exactly one of --prompt or --prompt-file.",
        ),
        (
            ["--model", LOCAL, "--prompt-file", "/dev/zero"],
            2,
            "Error: Invalid value for --prompt-file: /dev/zero is larger than 1 MB; a prompt file "
            "may hold at most that much text, so shorten it or attach it as a knowledge store.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--param", "nope=1"],
            2,
            "Error: Invalid value for --param: Unknown parameter 'nope'; "
            "use one of temperature, top_p, max_tokens, seed, stop.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--param", "max_tokens=-1"],
            2,
            "Error: Invalid value for --param: Parameter 'max_tokens' is -1: input should be "
            "greater than or equal to 1; change it and run again.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--var", "novalue"],
            2,
            "Error: Invalid value for --var: 'novalue' is not key=value.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--var", "=x"],
            2,
            "Error: Invalid value for --var: '=x' is not key=value.",
        ),
        (
            ["--model", LOCAL],
            2,
            "Error: Give exactly one of --prompt or --prompt-file.",
        ),
        (
            ["--model", LOCAL, "--prompt", "hi", "--prompt-file", "playground.toml"],
            2,
            "Error: Give exactly one of --prompt or --prompt-file.",
        ),
        (
            ["--prompt", "hi"],
            2,
            "Error: Missing option '--model'.",
        ),
    ],
)
def test_run_refuses_bad_input_with_one_line_and_an_exit_code(
    write_config: Any, args: list[str], exit_code: int, error_line: str
) -> None:
    write_config("")

    result = invoke("run", *args)

    assert result.exit_code == exit_code
    assert result.stdout == ""
    assert last_line(result.stderr) == error_line
    assert "Traceback" not in result.stderr
    assert open_store(load_settings()).runs.count_runs() == 0


def test_a_prompt_file_that_is_not_utf8_is_a_usage_error(home: Path) -> None:
    prompt = Path.cwd() / "latin1.txt"
    prompt.write_bytes("Caf\xe9 {{ x }}".encode("latin-1"))

    result = invoke("run", "--model", LOCAL, "--prompt-file", str(prompt))

    assert result.exit_code == 2
    assert last_line(result.stderr) == (
        f"Error: Invalid value for --prompt-file: {prompt} is not UTF-8 text."
    )


def test_a_broken_config_is_one_line_and_exit_1(write_config: Any) -> None:
    path = write_config('[endpoints.x]\nbase_url = "ftp://x"\n')

    result = invoke("models")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Setting 'endpoints.x.base_url' in {path} is invalid: Value error, must start "
        "with http:// or https://; fix it and try again.\n"
    )


def test_a_real_process_prints_one_error_line_and_no_traceback(write_config: Any) -> None:
    write_config(unreachable_endpoint())
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_RAISE_ERRORS"}
    env["PYTHONPATH"] = str(ROOT)

    proc = subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", "--model", "gone/m", "--prompt", "hi"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    error_line, saved_line = proc.stderr.splitlines()
    assert error_line.startswith("Error: Cannot reach http://127.0.0.1:")
    assert saved_line.startswith("saved run ")
    assert proc.stdout == "== gone/m\n"


def test_an_api_key_echoed_by_a_failing_server_is_never_printed_or_stored(
    write_config: Any, fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-live-9f8e7d6c5b4a39281706"
    monkeypatch.setenv("SRV_KEY", secret)
    write_config(
        f'[endpoints.srv]\nbase_url = "{fault_server.url("echo400")}"\napi_key_env = "SRV_KEY"\n'
        "max_retries = 0\n"
    )

    ran = invoke("run", "--model", f"srv/{FAULT_MODEL}", "--prompt", "hi", "--json")
    listed = invoke("runs", "list", "--json")
    exported = invoke("runs", "export", "--format", "csv")

    assert ran.exit_code == 1
    (answer,) = json.loads(ran.stdout)["results"]
    assert answer["error"].endswith("(Authorization: Bearer [redacted])")
    for output in (ran.stdout, ran.stderr, listed.stdout, exported.stdout):
        assert secret not in output
    (stored,) = open_store(load_settings()).runs.recent_runs()
    assert secret not in (stored.results[0].error or "")


def test_a_prompt_file_over_the_limit_is_refused_before_anything_is_sent(home: Path) -> None:
    big = Path.cwd() / "big.txt"
    big.write_text("word " * 300_000, encoding="utf-8")  # 1.5 MB

    result = invoke("run", "--model", LOCAL, "--prompt-file", str(big))

    assert result.exit_code == 2
    assert last_line(result.stderr) == (
        f"Error: Invalid value for --prompt-file: {big} is larger than 1 MB; a prompt file may "
        "hold at most that much text, so shorten it or attach it as a knowledge store."
    )
    assert open_store(load_settings()).runs.count_runs() == 0


def test_repeated_stop_params_add_up(write_config: Any, fault_server: FaultServer) -> None:
    write_config(f'[endpoints.good]\nbase_url = "{fault_server.url("ok")}"\n')

    result = invoke(
        "run", "--model", f"good/{FAULT_MODEL}", "--prompt", "hi",
        "--param", "stop=END", "--param", "stop=###", "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    (answer,) = json.loads(result.stdout)["results"]
    assert answer["params"]["stop"] == ["END", "###"]


def test_a_cut_off_answer_prints_what_arrived_and_the_reason(
    write_config: Any, fault_server: FaultServer
) -> None:
    write_config(f'[endpoints.cut]\nbase_url = "{fault_server.url("cutoff")}"\nmax_retries = 0\n')

    result = invoke("run", "--model", f"cut/{FAULT_MODEL}", "--prompt", "hi")

    assert result.exit_code == 1
    assert result.stdout == f"== cut/{FAULT_MODEL}\nHello from the\n"
    assert result.stderr.splitlines()[0] == (
        f"Error: The answer from cut/{FAULT_MODEL} was cut off after 3 tokens: "
        f"{fault_server.url('cutoff')} closed the connection mid-stream; the partial answer is "
        "kept, run again for a full one."
    )
    (stored,) = open_store(load_settings()).runs.recent_runs()
    assert stored.results[0].text == "Hello from the"


def test_kill_9_mid_run_keeps_every_answer_that_had_finished(
    write_config: Any, fault_server: FaultServer
) -> None:
    write_config(
        f'[endpoints.good]\nbase_url = "{fault_server.url("ok")}"\n'
        f'[endpoints.stuck]\nbase_url = "{fault_server.url("hang")}"\ntimeout = 25\n'
        "max_retries = 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "run", "--model", f"good/{FAULT_MODEL}",
         "--model", f"stuck/{FAULT_MODEL}", "--prompt", "hi"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    store = open_store(load_settings())
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not store.runs.recent_runs():
            time.sleep(0.2)
        assert proc.poll() is None  # still waiting for the stuck model
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    (saved,) = store.runs.recent_runs()
    assert [r.model_id for r in saved.results] == [f"good/{FAULT_MODEL}"]
    assert saved.results[0].text == "Hello from the test server."


def test_a_fresh_process_reports_a_1s_server_at_about_1s_and_saves_the_run(
    write_config: Any, fault_server: FaultServer
) -> None:
    # The first call of a process imports the SDK and builds its client: a user must not see
    # that as the server's latency (it used to show a 1 s server as 1.5-1.7 s).
    write_config(f'[endpoints.slow]\nbase_url = "{fault_server.url("slow")}"\nmax_retries = 0\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    proc = subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", "--model", f"slow/{FAULT_MODEL}",
         "--prompt", "hi", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    (result,) = document["results"]
    assert result["error"] is None and result["text"] == "Hello from the test server."
    # imports inside the clock added 0.5-0.7 s; a busy box may add a little parsing time
    assert 1000 <= result["ttft_ms"] <= result["latency_ms"] < 1400
    saved = open_store(load_settings()).runs.get_run(document["run_id"])
    assert [r.text for r in saved.results] == ["Hello from the test server."]


GC_WATCH = """
import gc, sys, threading
from playground.models import base

seen = {}
def note_sent(inner=base.note_request_sent):
    seen.setdefault("at_send", gc.isenabled())
    inner()
base.note_request_sent = note_sent  # what the openai client's request hook calls
sys.argv = ["playground", *sys.argv[1:]]
from playground.cli import main
try:
    main()
finally:
    print("gc at send", seen.get("at_send"), "after", gc.isenabled(), file=sys.stderr)
"""


def test_the_garbage_collector_waits_for_the_first_request_then_runs_again(
    write_config: Any, fault_server: FaultServer
) -> None:
    # collecting the SDK's and pydantic's start-up objects cost ~0.1 s before every first
    # request; a collector left paused afterwards would let the process grow without bound
    write_config(f'[endpoints.slow]\nbase_url = "{fault_server.url("slow")}"\nmax_retries = 0\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    proc = subprocess.run(
        [sys.executable, "-c", GC_WATCH, "run", "--model", f"slow/{FAULT_MODEL}", "--prompt", "hi"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "gc at send False after True"


@pytest.mark.parametrize(("limit_s", "running"), [(5.0, False), (0.1, True)])
def test_the_collector_pause_is_bounded_while_a_command_runs(
    write_config: Any,
    fault_server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    limit_s: float,
    running: bool,
) -> None:
    # a 1 s answer streams in without a collection; a longer command gets it back on time
    from playground.cli import common
    from playground.runner import CellFinisher

    write_config(f'[endpoints.slow]\nbase_url = "{fault_server.url("slow")}"\nmax_retries = 0\n')
    monkeypatch.setattr(common, "GC_PAUSE_LIMIT_S", limit_s)
    seen: list[bool] = []
    finish = CellFinisher.finish

    def watched(self: CellFinisher, *args: Any) -> Any:
        seen.append(gc.isenabled())  # the answer has arrived, a second after the send
        return finish(self, *args)

    monkeypatch.setattr(CellFinisher, "finish", watched)

    result = invoke("run", "--model", f"slow/{FAULT_MODEL}", "--prompt", "hi")

    assert result.exit_code == 0, result.output
    assert seen == [running]
    assert gc.isenabled()


def test_a_command_that_sends_nothing_leaves_the_collector_running(write_config: Any) -> None:
    write_config("")
    assert gc.isenabled()

    result = invoke("run", "--model", "nowhere/m1", "--prompt", "hi")  # refused before sending

    assert result.exit_code == 1 and "nowhere/m1" in result.output
    assert gc.isenabled()
