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
