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
        sandbox._functions[name] = type("Spec", (), {"timeout": 30, "memory_mb": 512})()
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


def _decide(sandbox: Sandbox, execution: str, order: list[str]) -> threading.Thread:
    """A thread that takes `execution`'s turn as a decision, then notes it in `order`."""

    def take() -> None:
        sandbox.background_gate(decision=True, execution=execution)
        order.append(execution)

    thread = threading.Thread(target=take)
    thread.start()
    return thread


def _wait_for(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_decisions_take_turns_in_the_order_they_came(monkeypatch) -> None:
    """A burst of clicks is finished one decision at a time: each execution carrying a
    decision keeps its turn to its end, the next goes then, in the order they came; a
    step of an execution that has its turn (reporting after the resumed task) goes on."""
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    monkeypatch.setattr(engine, "DECISION_TURN", 30)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    order: list[str] = []
    scopes = {name: sandbox._execution(name) for name in ("a", "b", "c")}
    for scope in scopes.values():
        scope.__enter__()
    _decide(sandbox, "a", order).join(timeout=5)
    assert order == ["a"]
    sandbox.background_gate(decision=True, execution="a")  # its turn still: no wait
    waiting = [_decide(sandbox, "b", order)]
    _wait_for(lambda: len(sandbox._turn_queue) == 1)
    waiting.append(_decide(sandbox, "c", order))
    _wait_for(lambda: len(sandbox._turn_queue) == 2)
    waiting[1].join(timeout=0.2)  # a bounded look: neither goes while "a" has its turn
    assert order == ["a"]
    scopes["a"].__exit__(None, None, None)  # "a" ends: "b" goes, "c" still waits on it
    _wait_for(lambda: order == ["a", "b"])
    waiting[1].join(timeout=0.2)
    assert order == ["a", "b"]
    scopes["b"].__exit__(None, None, None)
    _wait_for(lambda: order == ["a", "b", "c"])
    scopes["c"].__exit__(None, None, None)
    for thread in waiting:
        thread.join(timeout=5)
    assert sandbox._turn_holder is None and not sandbox._turns and not sandbox._turn_queue


def test_a_turn_is_never_held_longer_than_the_bound(monkeypatch) -> None:
    """An execution that runs long after its decision (a retry's back-off) lets the next
    decision go after DECISION_TURN seconds."""
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    monkeypatch.setattr(engine, "DECISION_TURN", 0.3)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    order: list[str] = []
    with sandbox._execution("slow"), sandbox._execution("next"):
        sandbox.background_gate(decision=True, execution="slow")
        started = time.monotonic()
        _decide(sandbox, "next", order).join(timeout=5)
        assert order == ["next"]
        assert 0.25 <= time.monotonic() - started < 2


def test_other_background_work_does_not_wait_for_a_decision_but_the_feed_does(
    monkeypatch,
) -> None:
    """Workflow steps outside a decision (asking, reminding) are not held by one; the status
    feed is, like it is by a running step, within its bound."""
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    monkeypatch.setattr(engine, "BACKGROUND_YIELD", 0.3)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    with sandbox._execution("deciding"):
        sandbox.background_gate(decision=True, execution="deciding")
        started = time.monotonic()
        sandbox.background_gate()
        sandbox.background_gate(decision=True, execution=None)  # not an execution's
        assert time.monotonic() - started < 0.2
        sandbox._let_requests_through(after_steps=True)
        assert time.monotonic() - started >= 0.25  # the feed waited out its bound
    started = time.monotonic()
    sandbox._let_requests_through(after_steps=True)  # the decision ended: no wait
    assert time.monotonic() - started < 0.2


def test_an_execution_that_has_ended_takes_no_turn(monkeypatch) -> None:
    """A task's thread can outlive its execution (its timeout fired, or it was stopped): at
    the gate it must not take the turn, which nothing would then hand on, holding every
    later decision and the status feed up to their bounds."""
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    monkeypatch.setattr(engine, "BACKGROUND_YIELD", 0.3)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    with sandbox._execution("ended"):
        pass
    sandbox.background_gate(decision=True, execution="ended")
    sandbox.background_gate(decision=True, execution="another sandbox's")  # never ran here
    assert sandbox._turn_holder is None and not sandbox._turns and not sandbox._turn_queue
    started = time.monotonic()
    sandbox._let_requests_through(after_steps=True)  # the feed: nothing to wait for
    assert time.monotonic() - started < 0.2


def test_an_execution_that_ends_while_it_waits_for_its_turn_does_not_take_it(
    monkeypatch,
) -> None:
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    monkeypatch.setattr(engine, "DECISION_TURN", 30)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    order: list[str] = []
    holding, queued = sandbox._execution("holding"), sandbox._execution("queued")
    holding.__enter__()
    queued.__enter__()
    sandbox.background_gate(decision=True, execution="holding")
    waiter = _decide(sandbox, "queued", order)
    _wait_for(lambda: len(sandbox._turn_queue) == 1)
    queued.__exit__(None, None, None)  # it ends (its outer task timed out) while queued
    holding.__exit__(None, None, None)
    waiter.join(timeout=5)
    assert order == ["queued"]  # it went on
    assert sandbox._turn_holder is None and not sandbox._turns and not sandbox._turn_queue


def test_a_run_start_waits_for_clicks_once_before_it_starts(monkeypatch) -> None:
    """A start request waits at the gate while a click is answered, then starts; what it
    invokes while it starts does not wait again, since starts go one at a time and one
    that waited inside would hold every start behind it."""
    monkeypatch.setattr(engine, "BACKGROUND_QUIET", 0)
    monkeypatch.setattr(engine, "BACKGROUND_YIELD", 30)
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9")
    started, click_again = threading.Event(), threading.Event()
    inner_wait: list[float] = []

    class Pipeline:
        def start_run(self, pipeline: str, body: dict) -> str:
            started.set()
            assert click_again.wait(timeout=5)
            before = time.monotonic()
            sandbox._let_requests_through()  # SNS → start_approval, inside the start
            inner_wait.append(time.monotonic() - before)
            return pipeline

    sandbox.codepipeline = Pipeline()  # type: ignore[assignment]
    answered = sandbox.begin_serving()
    starter = threading.Thread(target=sandbox.start_run, args=("web", {}))
    starter.start()
    assert not started.wait(timeout=0.2)  # held while the click is answered
    answered()
    assert started.wait(timeout=5)
    another = sandbox.begin_serving()  # a click comes while the run starts
    click_again.set()
    starter.join(timeout=5)
    another()
    assert inner_wait and inner_wait[0] < 0.2
