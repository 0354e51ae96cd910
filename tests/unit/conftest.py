"""Fixtures for the unit tests: the approvals table in moto's in-process DynamoDB."""

from __future__ import annotations

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
