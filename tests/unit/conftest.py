"""Fixtures for the unit tests: the approvals table in moto's in-process DynamoDB, and the
gate logger's records."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import boto3
import pytest
from approval_gate.store import ApprovalStore
from moto import mock_aws

from tests.unit.fakes import SerialisedClient, create_approvals_table

TABLE = "approval-gate-approvals"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[SerialisedClient]:
    """A DynamoDB client on moto with the approvals table of template.yaml."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-2")
        create_approvals_table(client, TABLE)
        yield SerialisedClient(client)


@pytest.fixture
def store(dynamodb: SerialisedClient) -> ApprovalStore:
    return ApprovalStore(TABLE, dynamodb, retention_days=400)


@pytest.fixture
def gate_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.LogCaptureFixture]:
    """The gate logger's records, each once: Powertools stops them from reaching the root
    logger once a handler module has built its Logger, and not before."""
    gate = logging.getLogger("approval-gate")
    monkeypatch.setattr(gate, "propagate", False)
    gate.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="approval-gate")
    yield caplog
    gate.removeHandler(caplog.handler)
