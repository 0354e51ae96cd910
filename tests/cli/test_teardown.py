"""`approval-gate teardown` against moto's CloudFormation (in process): --dry-run deletes
nothing and says so; a real run deletes the example's stack (its bucket emptied) and the
gate's, and says what stays (the table by name, the secret by ARN, the Slack app) unless
asked to delete them; --sandbox is refused."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cli.main import main
from tests.cli.conftest import Ran

REGION = "us-east-2"
TABLE = "approval-gate-approvals-test"
#: The parts of the gate's stack teardown reads: its outputs and the secret parameter.
GATE = {
    "Parameters": {"SlackSecretArn": {"Type": "String"}},
    "Resources": {"ApprovalTopic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        "ApprovalTopicArn": {"Value": {"Ref": "ApprovalTopic"}},
        "ApprovalsTableName": {"Value": TABLE},
    },
}
EXAMPLE = {
    "Parameters": {"ApprovalTopicArn": {"Type": "String"}},
    "Resources": {"SourceBucket": {"Type": "AWS::S3::Bucket"}},
    "Outputs": {"SourceBucket": {"Value": {"Ref": "SourceBucket"}}},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret = secrets.create_secret(Name="approval-gate/slack", SecretString="{}")["ARN"]
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName="gate",
            TemplateBody=json.dumps(GATE),
            Parameters=[{"ParameterKey": "SlackSecretArn", "ParameterValue": secret}],
        )
        outputs = cloudformation.describe_stacks(StackName="gate")["Stacks"][0]["Outputs"]
        topic = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "ApprovalTopicArn")
        cloudformation.create_stack(
            StackName="approval-gate-example",
            TemplateBody=json.dumps(EXAMPLE),
            Parameters=[{"ParameterKey": "ApprovalTopicArn", "ParameterValue": topic}],
        )
        example = cloudformation.describe_stacks(StackName="approval-gate-example")["Stacks"][0]
        bucket = example["Outputs"][0]["OutputValue"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=bucket, Key="source.zip", Body=b"one")
        s3.put_object(Bucket=bucket, Key="source.zip", Body=b"two")
        yield {"secret": secret, "bucket": bucket, "cloudformation": cloudformation}


def teardown(*more: str) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    code = main(["teardown", "--region", REGION, *more], stdout=out, stderr=err)
    return Ran(code, out.getvalue(), err.getvalue())


def stacks(cloudformation: Any) -> set[str]:
    return {
        s["StackName"]
        for s in cloudformation.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }


def test_dry_run_deletes_nothing_and_says_what_it_would(aws: dict[str, Any]) -> None:
    ran = teardown("--stack", "gate", "--dry-run")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines()[:2] == [
        f"→ example pipeline: would delete stack approval-gate-example, emptying its bucket "
        f"{aws['bucket']} first",
        "→ gate: would delete stack gate and wait until it is gone",
    ]
    assert f"• leaves the approvals table {TABLE} (retained: the audit trail)" in ran.out
    assert f"• leaves the Slack secret {aws['secret']}" in ran.out
    assert "• leaves the Slack app and its tokens" in ran.out
    assert stacks(aws["cloudformation"]) == {"gate", "approval-gate-example"}


def test_teardown_deletes_both_stacks_and_says_what_stays(aws: dict[str, Any]) -> None:
    ran = teardown("--stack", "gate")
    assert (ran.code, ran.err) == (0, ""), ran.out
    assert ran.out.splitlines()[:2] == [
        f"✓ example pipeline: deleted stack approval-gate-example, emptying its bucket "
        f"{aws['bucket']} first",
        "✓ gate: deleted stack gate",
    ]
    assert stacks(aws["cloudformation"]) == set()
    assert f"• leaves the approvals table {TABLE}" in ran.out
    assert f"• leaves the Slack secret {aws['secret']}" in ran.out
    # What it leaves is still there.
    boto3.client("dynamodb", region_name=REGION).describe_table(TableName=TABLE)
    boto3.client("secretsmanager", region_name=REGION).describe_secret(SecretId=aws["secret"])
    # Run again: the gate is gone, said in one line, exit 1.
    again = teardown("--stack", "gate")
    assert again.code == 1
    assert again.out == "✗ teardown: stack gate does not exist → fix: check --stack and --region\n"


def test_asked_to_it_deletes_the_table_and_the_secret(aws: dict[str, Any]) -> None:
    ran = teardown("--stack", "gate", "--delete-table", "--delete-secret")
    assert ran.code == 0, ran.out
    assert f"✓ approvals table: deleted {TABLE}" in ran.out
    assert f"✓ Slack secret: deleted {aws['secret']}" in ran.out
    assert "leaves the approvals table" not in ran.out
    tables = boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"]
    assert TABLE not in tables
    described = boto3.client("secretsmanager", region_name=REGION).describe_secret(
        SecretId=aws["secret"]
    )
    assert "DeletedDate" in described  # scheduled for deletion (recoverable 30 days)


def test_an_example_stack_of_another_gate_is_left_alone(aws: dict[str, Any]) -> None:
    cloudformation = aws["cloudformation"]
    cloudformation.update_stack(
        StackName="approval-gate-example",
        TemplateBody=json.dumps(EXAMPLE),
        Parameters=[
            {
                "ParameterKey": "ApprovalTopicArn",
                "ParameterValue": "arn:aws:sns:us-east-2:123456789012:another-gate",
            }
        ],
    )
    ran = teardown("--stack", "gate")
    assert ran.code == 0, ran.out
    assert "✓ example pipeline: no stack approval-gate-example notifying this gate" in ran.out
    assert stacks(cloudformation) == {"approval-gate-example"}


def test_the_sandbox_has_nothing_to_tear_down() -> None:
    ran = teardown("--stack", "gate", "--sandbox", "http://127.0.0.1:1")
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == (
        "approval-gate teardown: the sandbox has nothing to tear down: stop it (Ctrl-C)\n"
    )


def test_the_example_bucket_is_emptied_of_every_version(aws: dict[str, Any]) -> None:
    """CloudFormation deletes only an empty bucket (moto does not check: asked directly)."""
    from cli.teardown import _empty_bucket

    s3 = boto3.client("s3", region_name=REGION)
    s3.delete_object(Bucket=aws["bucket"], Key="source.zip")  # a delete marker too
    _empty_bucket(s3, aws["bucket"])
    left = s3.list_object_versions(Bucket=aws["bucket"])
    assert not left.get("Versions") and not left.get("DeleteMarkers")
    _empty_bucket(s3, "no-such-bucket-of-the-example")  # gone already: nothing to do
