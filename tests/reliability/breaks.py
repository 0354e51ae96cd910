"""Deliberate product breaks shared by the reliability tests (each figure must count its own)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sandbox import patches
from sandbox.services import FakeAwsError


@contextlib.contextmanager
def reporting_each_decision_twice(server: Any) -> Iterator[None]:
    """The workflow sends every PutApprovalResult twice. The fake refuses the second
    (ApprovalAlreadyCompletedException), so CodePipeline hears one result; only the attempts
    in its call log show the second report."""
    fake = server.sandbox.codepipeline

    def twice(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        answered = fake.call(operation, params)
        if operation == "PutApprovalResult":
            with contextlib.suppress(FakeAwsError):
                fake.call(operation, params)
        return answered

    patches.set_codepipeline(twice)
    try:
        yield
    finally:
        patches.set_codepipeline(fake.call)
