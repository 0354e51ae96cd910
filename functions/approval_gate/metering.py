"""What the functions that measure decisions build (close_request, remind_approvers).

Apart from approval_gate.runtime, which every handler imports: the click path and the other
functions never load the metrics code they do not emit.
"""

from __future__ import annotations

import logging

import boto3

from approval_gate.decision_metrics import Measurement, MeteredStore, at_close, emit
from approval_gate.runtime import METRICS_NAMESPACE
from approval_gate.settings import SERVICE, Settings


def log_line(line: str) -> None:
    """Write one line where the function's log lines go: stdout in Lambda, the sandbox's
    captured logs when it runs the handlers in-process (it redirects the logger's stream)."""
    for handler in logging.getLogger(SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.acquire()  # one line at a time: the sandbox runs handlers in threads
            try:
                handler.stream.write(line + "\n")
                handler.stream.flush()
            finally:
                handler.release()
            return
    print(line, flush=True)


def emit_metrics(measurements: list[Measurement]) -> None:
    """The gate's EMF metrics (approval_gate.decision_metrics), to the log stream."""
    emit(measurements, namespace=METRICS_NAMESPACE, service=SERVICE, out=log_line)


def metered_store(settings: Settings) -> MeteredStore:
    """The approvals table, measuring each decision when its request is closed."""
    return MeteredStore(
        settings.table_name,
        boto3.client("dynamodb"),
        settings.retention_days,
        measure=lambda approval: emit_metrics(at_close(approval)),
    )
