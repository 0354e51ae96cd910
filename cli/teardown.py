"""`approval-gate teardown --stack NAME` (DESIGN §8.7): delete the example pipeline's
stack (when it notifies this gate's topic) and the gate's stack, waiting for each, then
say what stays: the approvals table (``DeletionPolicy: Retain``, the audit trail), the
Slack secret (created outside the stack) and the Slack app, unless asked to delete the
first two. ``--dry-run`` says each action and changes nothing.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from cli.setup import EXIT_FAILED, EXIT_OK
from cli.setup_deploy import EXAMPLE_STACK
from cli.target import SLACK_SECRET_PARAMETER, TABLE_OUTPUT

#: How long to wait for a stack to go (DeleteStack of the gate takes a few minutes).
WAIT = {"Delay": 5, "MaxAttempts": 360}


def _stack(cloudformation: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        found = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            return None
        raise
    return found[0] if found and found[0].get("StackStatus") != "DELETE_COMPLETE" else None


def _empty_bucket(s3: Any, bucket: str) -> None:
    """Every version and delete marker (CloudFormation deletes only an empty bucket)."""
    from botocore.exceptions import ClientError

    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]
            ]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def _delete(cloudformation: Any, name: str) -> None:
    cloudformation.delete_stack(StackName=name)
    cloudformation.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig=WAIT)


def run_teardown(args: argparse.Namespace, *, out: TextIO) -> int:
    """Delete the stacks, then say what stays; 0 when done, 1 when the gate's stack
    does not exist."""
    import boto3

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    cloudformation = session.client("cloudformation")
    dry = bool(args.dry_run)

    def say(mark: str, text: str) -> None:
        out.write(f"{mark} {text}\n")

    gate = _stack(cloudformation, args.stack)
    if gate is None:
        say("✗", f"teardown: stack {args.stack} does not exist → fix: check --stack and --region")
        return EXIT_FAILED
    outputs = {o["OutputKey"]: o["OutputValue"] for o in gate.get("Outputs", ())}
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in gate.get("Parameters", ())}
    table = outputs.get(TABLE_OUTPUT)
    secret = parameters.get(SLACK_SECRET_PARAMETER)
    topic = outputs.get("ApprovalTopicArn")

    example = _stack(cloudformation, EXAMPLE_STACK)
    example_parameters = {
        p["ParameterKey"]: p.get("ParameterValue") for p in (example or {}).get("Parameters", ())
    }
    if example is not None and topic and example_parameters.get("ApprovalTopicArn") == topic:
        bucket = {o["OutputKey"]: o["OutputValue"] for o in example.get("Outputs", ())}.get(
            "SourceBucket"
        )
        emptied = f", emptying its bucket {bucket} first" if bucket else ""
        if dry:
            say("→", f"example pipeline: would delete stack {EXAMPLE_STACK}{emptied}")
        else:
            if bucket:
                _empty_bucket(session.client("s3"), bucket)
            _delete(cloudformation, EXAMPLE_STACK)
            say("✓", f"example pipeline: deleted stack {EXAMPLE_STACK}{emptied}")
    else:
        say("✓", f"example pipeline: no stack {EXAMPLE_STACK} notifying this gate")

    if dry:
        say("→", f"gate: would delete stack {args.stack} and wait until it is gone")
    else:
        _delete(cloudformation, args.stack)
        say("✓", f"gate: deleted stack {args.stack}")

    verb = "would delete" if dry else "deleted"
    mark = "→" if dry else "✓"
    if table and args.delete_table:
        if not dry:
            session.client("dynamodb").delete_table(TableName=table)
        say(mark, f"approvals table: {verb} {table} (its decision records with it)")
    elif table:
        say(
            "•",
            f"leaves the approvals table {table} (retained: the audit trail); delete it with "
            f"--delete-table, or aws dynamodb delete-table --table-name {table}",
        )
    if secret and args.delete_secret:
        if not dry:
            session.client("secretsmanager").delete_secret(SecretId=secret)
        say(mark, f"Slack secret: {verb} {secret} (recoverable for 30 days)")
    elif secret:
        say(
            "•",
            f"leaves the Slack secret {secret}; delete it with --delete-secret, or aws "
            f"secretsmanager delete-secret --secret-id {secret}",
        )
    say(
        "•",
        "leaves the Slack app and its tokens: delete it in Slack (api.slack.com/apps → the "
        "app → Basic Information → Delete App); and samconfig.toml, your local file",
    )
    return EXIT_OK
