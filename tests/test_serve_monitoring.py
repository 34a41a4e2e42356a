"""Online scoring off the request path, alerts with webhooks, and the Monitor's figures."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from playground.config import Settings, load_settings
from playground.flows.loader import parse_spec
from playground.records import utc_now
from playground.serve.alerts import BACKOFF_S, AlertEngine, WebhookSender
from playground.serve.monitor import monitor_report, percentile
from playground.serve.settings import ServeSettings, alert_rules
from playground.store import open_store
from tests.serve_support import (
    ENDPOINT_SPEC,
    WebhookReceiver,
    down_url,
    endpoint_spec,
    save_flow,
    served,
    wait_for,
)
from tests.support import FaultServer

SCORED = (
    ENDPOINT_SPEC
    + """\
x-evaluation:
  scorers:
    - {{type: regex, pattern: "Hello", name: greets}}
    - {{type: latency, max_ms: 5000}}
    - {{type: contains, value: "{{{{ expected }}}}"}}
    - {{type: judge, rubric: "Is polite", model: "slowjudge/fault-model", threshold: 0.5}}
"""
)


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(v) for v in range(1, 101)], 95) == pytest.approx(95.05)


def test_sampled_calls_are_scored_off_the_request_path(
    home: Path, fault_server: FaultServer, write_config: object
) -> None:
    # The judge answers after 1 s; the caller must not wait for it.
    write_config(  # type: ignore[operator]
        f'[endpoints.slowjudge]\nbase_url = "{fault_server.url("slow")}"\nmax_retries = 0\n'
    )
    settings = load_settings()
    spec = parse_spec(
        SCORED.format(
            name="scored", base_url=fault_server.url("ok"), max_tokens=16, description="s"
        )
    )
    save_flow(settings, spec)
    with served(["scored"], settings, ServeSettings(score_sample=1.0), background=True) as url:
        since = utc_now() - timedelta(minutes=5)
        # 60 s: the first call imports the SDK, 5-8 s on a box at load 25-30 (httpx's 5 s failed)
        response = httpx.post(
            f"{url}/v1/flows/scored/run", json={"inputs": {"question": "hi"}}, timeout=60
        )
        traces = open_store(settings).traces
        # The judge takes a second after the answer is recorded; scored on the request path,
        # its verdict would already be stored when the answer arrives.
        judged_before_answer = any(s.scorer == "judge" for s in traces.scores_since(since))
        assert wait_for(lambda: len(traces.scores_since(since)) >= 3, 15)
    assert response.status_code == 200 and not judged_before_answer
    scores = {s.scorer: s for s in traces.scores_since(since)}
    assert set(scores) == {"greets", "latency", "judge"}  # `contains` needs a reference
    assert scores["greets"].status == "pass" and scores["greets"].score == 1.0
    assert scores["latency"].status == "pass"
    assert scores["judge"].status == "unmeasured" and "no 1-5 grade" in scores["judge"].reason
    assert {s.run_id for s in scores.values()} == {response.json()["run_id"]}
    report = monitor_report(settings, "1h")
    assert report.versions[0].online_scored == 1
    assert report.versions[0].online_score == pytest.approx(1.0)


def _alert_config(webhook: str, extra: str = "") -> str:
    return f"""
[[alerts]]
name = "errors"
flow = "stub-flow"
metric = "error_rate"
operator = ">"
value = 0.5
window = "1h"
webhook = "{webhook}"
{extra}
"""


def test_a_breach_posts_once_retrying_a_failing_webhook_then_recovers(
    home: Path, fault_server: FaultServer, write_config: object
) -> None:
    with WebhookReceiver(fail_first=2) as hook:
        write_config(_alert_config(hook.url))  # type: ignore[operator]
        settings = load_settings()
        save_flow(settings, endpoint_spec(down_url()), label="production")
        with served(["stub-flow@production"], settings) as url:
            for _ in range(3):
                assert (
                    httpx.post(
                        f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "q"}}
                    ).status_code
                    == 502
                )
        sender = WebhookSender(settings, backoff=(0.05, 0.05, 0.05))
        engine = AlertEngine(settings, sender=sender)
        first = engine.evaluate()
        again = engine.evaluate()
        sender.drain()
        assert first[0].breached and first[0].changed and first[0].value == 1.0
        assert again[0].breached and not again[0].changed  # posted once, not per evaluation
        assert hook.attempts == 3 and len(hook.received) == 1
        assert hook.received[0]["kind"] == "breach"
        assert "Alert errors" in str(hook.received[0]["text"])
        report = monitor_report(settings, "1h")
        assert report.alerts[0]["firing"] is True
        assert report.events[0]["delivered"] is True and report.events[0]["attempts"] == 3

        save_flow(settings, endpoint_spec(fault_server.url("ok")), label="production")
        with served(["stub-flow@production"], settings) as url:
            for _ in range(4):
                httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "q"}})
        recovered = engine.evaluate()
        sender.drain()
        sender.stop()
    assert not recovered[0].breached and recovered[0].changed
    assert recovered[0].value == pytest.approx(3 / 7)
    assert [m["kind"] for m in hook.received] == ["breach", "recovery"]
    assert monitor_report(settings, "1h").alerts[0]["firing"] is False


def test_a_down_webhook_never_blocks_serving_or_evaluation(
    home: Path, write_config: object
) -> None:
    write_config(  # type: ignore[operator]
        _alert_config(down_url().removesuffix("/v1") + "/hook") + "\n[runner]\nmax_retries = 0\n"
    )
    settings = load_settings()
    save_flow(settings, endpoint_spec(down_url()))
    serve = ServeSettings(alert_interval_s=0.1)
    with served(["stub-flow"], settings, serve, background=True) as url:
        first = httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "q"}})
        traces = open_store(settings).traces
        assert wait_for(lambda: traces.alert_events(), 10)  # the schedule saw the breach
        start = time.perf_counter()
        later = [
            httpx.post(f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": "q"}})
            for _ in range(5)
        ]
        elapsed = time.perf_counter() - start
    assert first.status_code == 502 and {r.status_code for r in later} == {502}
    # The sender keeps retrying for sum(BACKOFF_S) = 15.5 s; blocked calls would wait it out.
    assert elapsed < sum(BACKOFF_S) / 2
    event = traces.alert_events()[0]
    assert event.kind == "breach" and event.delivered is False


def test_bad_alert_settings_are_one_sentence(home: Path, write_config: object) -> None:
    write_config(  # type: ignore[operator]
        '[[alerts]]\nname = "x"\nmetric = "vibes"\noperator = ">"\nvalue = 1\n'
    )
    from playground.errors import ConfigError

    with pytest.raises(ConfigError, match=r"alerts\[0\]\.metric.*not one of requests"):
        alert_rules(load_settings())


def test_feedback_shows_in_the_monitor(settings_home: Settings, fault_server: FaultServer) -> None:
    settings = settings_home
    save_flow(settings, endpoint_spec(fault_server.url("ok")))
    with served(["stub-flow"], settings) as url:
        ids = [
            httpx.post(
                f"{url}/v1/flows/stub-flow/run", json={"inputs": {"question": f"q{i}"}}
            ).json()["run_id"]
            for i in range(2)
        ]
        for run_id, stars in zip(ids, (4, 2), strict=True):
            response = httpx.post(f"{url}/v1/feedback", json={"run_id": run_id, "stars": stars})
            assert response.status_code == 201
    report = monitor_report(settings, "1h")
    assert report.versions[0].feedback == 2 and report.versions[0].mean_stars == 3.0
    assert report.worst[0].run_id == ids[1] and report.worst[0].why == "rated 2 star(s)"
    assert report.daily[0].requests == 2 and report.daily[0].mean_stars == 3.0


@pytest.fixture
def settings_home(home: Path) -> Settings:
    """Settings of the fresh home."""
    return load_settings()
