"""The sandbox serves Slack's requests before background work (sandbox/engine.py).

On AWS a click's Lambda never shares a CPU with the workflow's; in the sandbox every
function shares one interpreter, so a background invocation waits (boundedly) while an
API Gateway request is in flight.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sandbox import engine
from sandbox.engine import Sandbox

POLICY = Path(__file__).parents[1] / "policies" / "standard.yaml"


def test_background_work_waits_for_the_request_in_flight_then_runs() -> None:
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    order: list[str] = []
    started = threading.Event()

    def background() -> None:
        started.set()
        sandbox._let_requests_through()
        order.append("background")

    with sandbox.serving():
        sandbox._let_requests_through()  # the request's own thread never waits on itself
        worker = threading.Thread(target=background)
        worker.start()
        assert started.wait(timeout=5)
        worker.join(timeout=0.2)
        assert worker.is_alive()  # held while the request is served
        order.append("request answered")
    worker.join(timeout=5)
    assert order == ["request answered", "background"]


def test_background_work_is_never_held_longer_than_the_bound(monkeypatch) -> None:
    monkeypatch.setattr(engine, "BACKGROUND_YIELD", 0.2)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    done = threading.Event()

    def background() -> None:
        sandbox._let_requests_through()
        done.set()

    with sandbox.serving():
        started = time.monotonic()
        threading.Thread(target=background).start()
        assert done.wait(timeout=5)  # released by the bound, the request still in flight
        assert time.monotonic() - started < 2


def test_a_request_counts_as_in_flight_until_its_answer_is_sent(gate) -> None:
    """Background work waits until Slack has the answer, not merely until it is built:
    the request stays in flight until the server closes the response it wrote."""
    from werkzeug.test import EnvironBuilder

    sandbox = gate.server.sandbox
    assert sandbox._serving == 0
    environ = EnvironBuilder(
        path="/slack/interactions",
        method="POST",
        data=b"payload=%7B%7D",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ).get_environ()
    statuses: list[str] = []
    answer = gate.server._wsgi(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["401 UNAUTHORIZED"]  # answered (no signature), not yet sent
    assert sandbox._serving == 1
    b"".join(answer)
    assert sandbox._serving == 1  # written, the connection not yet done with
    answer.close()
    assert sandbox._serving == 0


def test_an_answered_request_is_released_once() -> None:
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    done = sandbox.begin_serving()
    other = sandbox.begin_serving()
    done()
    done()  # a second call changes nothing: the other request is still in flight
    assert sandbox._serving == 1
    other()
    assert sandbox._serving == 0


def test_background_work_waits_for_a_quiet_moment_after_an_answer(monkeypatch) -> None:
    """A burst's requests reach the sandbox a few milliseconds apart: the gap between two of
    them does not let background work in; a quiet moment after the last answer does."""
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0.5)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    released = threading.Event()

    def background() -> None:
        sandbox._let_requests_through()
        released.set()

    first = sandbox.begin_serving()
    worker = threading.Thread(target=background)
    worker.start()
    first()  # answered; the next request of the burst comes within the quiet time
    second = sandbox.begin_serving()
    assert not released.wait(timeout=0.1)
    second()
    answered = time.monotonic()
    assert released.wait(timeout=5)
    assert time.monotonic() - answered >= 0.45  # waited out the quiet time after the last


def test_the_status_feed_waits_for_running_workflow_steps(monkeypatch) -> None:
    """On AWS the feed's Lambdas never share a CPU with the approval workflow; here an
    EventBridge-invoked function (the status feed) starts once no workflow step is
    running, still within the bound, while a step does not wait for the feed."""
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    sandbox._event_driven = {"Feed"}
    step_running, step_may_end, feed_ran = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def step(event: object, context: object) -> None:
        step_running.set()
        assert step_may_end.wait(timeout=5)
        order.append("step")

    def feed(event: object, context: object) -> None:
        order.append("feed")
        feed_ran.set()

    for name, handler in (("Step", step), ("Feed", feed), ("Other", lambda e, c: None)):
        sandbox._handlers[name] = handler
        sandbox._arns[name] = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        sandbox._functions[name] = type("Spec", (), {"timeout": 30})()
    worker = threading.Thread(target=sandbox.invoke, args=("Step", {}))
    worker.start()
    assert step_running.wait(timeout=5)
    sandbox.invoke("Other", {})  # another step is not held by the running one
    feeder = threading.Thread(target=sandbox.invoke, args=("Feed", {}))
    feeder.start()
    assert not feed_ran.wait(timeout=0.2)  # held while the step runs
    step_may_end.set()
    assert feed_ran.wait(timeout=5)
    worker.join(timeout=5)
    feeder.join(timeout=5)
    assert order == ["step", "feed"]


def test_the_status_feed_is_never_held_longer_than_the_bound(monkeypatch) -> None:
    monkeypatch.setattr(engine, "BACKGROUND_YIELD", 0.2)
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    sandbox._steps_running = 1  # a step that never ends
    started = time.monotonic()
    sandbox._let_requests_through(after_steps=True)
    assert 0.15 <= time.monotonic() - started < 2
