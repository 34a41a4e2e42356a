"""`playground runs list/show/export`: output, exit codes and exact error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from click.testing import CliRunner

from playground.cli import main
from tests.history_fixtures import T0, make_run


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_json_gives_each_run_with_results_ratings_and_config_hash(store):
    older = make_run(created_at=T0)
    newer = make_run(models=("local/a",), created_at=T0 + timedelta(minutes=1))
    store.runs.save_run(older)
    store.runs.save_run(newer)
    store.ratings.add_rating(older.results[0].id, 4, "clear", session_id="s")
    result = invoke("runs", "list", "--json")
    assert result.exit_code == 0
    runs = json.loads(result.output)
    assert [r["id"] for r in runs] == [newer.id, older.id]
    answer = runs[1]["results"][0]
    assert answer["config_hash"] == older.results[0].config_hash
    assert answer["rating"] == {"mean": 4.0, "count": 1}
    assert answer["ratings"][0]["comment"] == "clear"
    assert {"model", "text", "error", "usage", "ttft_ms", "latency_ms", "cost_usd"} <= set(answer)


def test_list_limit_and_text_output(store):
    for i in range(3):
        store.runs.save_run(make_run(models=("local/a",), created_at=T0 + timedelta(minutes=i)))
    result = invoke("runs", "list", "--limit", "2")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[-1] == "(2 of 3 runs; use --limit to see more)"
    assert lines[0].endswith("2026-11-01 09:02  app")
    assert "local/a" in lines[1] and "not rated" in lines[1]


def test_list_with_no_runs_says_how_to_make_one(store):
    result = invoke("runs", "list")
    assert result.exit_code == 0
    assert result.output == "No runs stored yet; try `playground run --model ID --prompt TEXT`.\n"
    assert json.loads(invoke("runs", "list", "--json").output) == []


def test_bad_limit_is_a_usage_error(store):
    result = CliRunner().invoke(main, ["runs", "list", "--limit", "0"])
    assert result.exit_code == 2
    assert "Error: Invalid value for '--limit': 0 is not in the range x>=1." in result.output


def test_show_unknown_run_is_one_error_line(store):
    result = CliRunner().invoke(main, ["runs", "show", "nope"])
    assert result.exit_code == 1
    assert result.output == "Error: No run with id nope; check the id on the History page.\n"


def test_export_csv_and_json(store, tmp_path):
    run = make_run()
    store.runs.save_run(run)
    store.ratings.add_rating(run.results[0].id, 5, session_id="s")
    csv_out = invoke("runs", "export", "--format", "csv")
    assert csv_out.exit_code == 0
    assert csv_out.output.splitlines()[0].startswith("run_id,run_created_at,source")
    assert len(csv_out.output.splitlines()) == 3
    target = tmp_path / "ratings.json"
    written = invoke(
        "runs", "export", "--format", "json", "--what", "ratings", "--out", str(target)
    )
    assert written.exit_code == 0
    assert json.loads(target.read_text())[0]["stars"] == 5


def _runs_with_ids(store, *ids: str) -> list:
    """Saved runs whose ids are chosen, so that prefixes can be shared on purpose."""
    runs = []
    for run_id in ids:
        run = make_run(models=("local/a",), texts=(f"Answer of {run_id}.",))
        run.id = run_id
        store.runs.save_run(run)
        runs.append(run)
    return runs


def test_show_accepts_the_eight_characters_a_heading_shows(store):
    """Defect 13: the id in a 'Run 1a2b3c4d' heading opens that run."""
    run, _ = _runs_with_ids(store, "1a2b3c4d-aaaa-bbbb", "9f9f9f9f-cccc-dddd")
    result = invoke("runs", "show", "1a2b3c4d", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["id"] == run.id


def test_show_with_an_ambiguous_prefix_is_one_sentence_asking_for_more(store):
    _runs_with_ids(store, "abcd0001-x", "abcd0002-y")
    result = CliRunner().invoke(main, ["runs", "show", "abcd"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: Run id abcd is ambiguous: it starts abcd0001-x, abcd0002-y; give more characters.\n"
    )


def test_list_search_that_matches_nothing_says_so_when_runs_exist(store):
    store.runs.save_run(make_run())
    result = invoke("runs", "list", "--search", "zzzz")
    assert result.exit_code == 0
    assert result.output == 'No run matches --search "zzzz" (1 run stored); try other filters.\n'
    by_model = invoke("runs", "list", "--model", "nobody/none")
    assert by_model.output == (
        "No run matches --model nobody/none (1 run stored); try other filters.\n"
    )


def test_export_into_a_missing_folder_is_one_sentence_and_writes_nothing(store, tmp_path):
    store.runs.save_run(make_run())
    target = tmp_path / "missing" / "runs.csv"
    result = CliRunner().invoke(main, ["runs", "export", "--format", "csv", "--out", str(target)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for --out: folder {target.parent} does not exist; "
        "create it first or write somewhere else."
    )
    assert "Unexpected" not in result.output
    assert not target.parent.exists()


def test_list_piped_into_head_exits_quietly(store, home):
    # Enough output to fill the pipe, so the writer meets the reader that went away.
    for i in range(250):
        store.runs.save_run(make_run(created_at=T0 + timedelta(seconds=i)))
    env = {**os.environ, "PLAYGROUND_HOME": str(home)}
    env.pop("PLAYGROUND_RAISE_ERRORS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "playground.cli", "runs", "list", "--limit", "250"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does once it has its line
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.decode().split()[0] in {r.id for r in store.runs.recent_runs(250)}
    assert stderr == ""
