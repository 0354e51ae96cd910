"""What the sandbox keeps in memory, and what the garbage collector has to walk.

A long sandbox run (the soak, a throughput benchmark, a day of `make sandbox`) must not stall
on collections that grow with the run. No sandbox of another module runs meanwhile (one at a
time: moto's patches are process-wide).
"""

from __future__ import annotations

import gc
from pathlib import Path

from sandbox.engine import Sandbox

POLICY = Path(__file__).parents[1] / "policies" / "standard.yaml"


def test_the_start_up_heap_is_frozen_while_the_sandbox_runs_and_handed_back_after() -> None:
    """The collector does not walk what the sandbox built at start (it lives as long as the
    sandbox) on every full collection; a stopped sandbox hands it back to be collected."""
    assert gc.get_freeze_count() == 0
    sandbox = Sandbox(policy_file=POLICY, base_url="http://127.0.0.1:9").start()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 100_000  # modules, botocore's models, moto, the resources
        gc.collect()
        # Full collections leave it alone. Reference counting may still free a few frozen
        # objects (the AWS endpoint's server thread was mid-request at the freeze): the
        # count shrinks by those, never back to what the collector walks.
        assert frozen - 1_000 <= gc.get_freeze_count() <= frozen
    finally:
        sandbox.stop()
    assert gc.get_freeze_count() == 0
