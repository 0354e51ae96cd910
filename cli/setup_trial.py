"""`approval-gate setup --try` on AWS: the example pipeline (examples/pipeline.yaml,
stack approval-gate-example) with the gate's topic, a source.zip in its bucket, then ONE
run (none when a request of it is open already), and a bounded wait for its request in
Slack, whose link it prints."""

from __future__ import annotations

import io
import time
import zipfile

from cli.setup import StepFailed
from cli.setup_deploy import (
    EXAMPLE_STACK,
    POLL,
    REQUEST_TIMEOUT,
    TRIAL,
    _run,
    _shown,
    _stack_outputs,
    example_command,
)
from cli.setup_steps import Setup


def _source_zip() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("README.txt", "Approval Gate: the example pipeline's source.\n")
    return data.getvalue()


def aws_trial(setup: Setup) -> None:
    from approval_gate.store import PENDING, ApprovalStore
    from botocore.exceptions import ClientError

    topic = setup.outputs.get("ApprovalTopicArn")
    table = setup.outputs.get("ApprovalsTableName")
    if setup.dry_run:
        command = example_command(setup, topic or "(the ApprovalTopicArn output)")
        setup.console.would(
            TRIAL, f"run {_shown(command)}, upload source.zip, start one run and wait for it"
        )
        return
    if not topic or not table:
        raise StepFailed(TRIAL, f"stack {setup.stack} lacks its outputs", "deploy it again")
    example = _stack_outputs(setup, EXAMPLE_STACK)
    if example is None or not example.get("PipelineName"):
        _run(setup, TRIAL, example_command(setup, topic))
        example = _stack_outputs(setup, EXAMPLE_STACK) or {}
    pipeline, bucket = example.get("PipelineName"), example.get("SourceBucket")
    if not pipeline or not bucket:
        raise StepFailed(TRIAL, f"stack {EXAMPLE_STACK} lacks its outputs", "see its events")
    s3 = setup.client("s3")
    try:
        s3.head_object(Bucket=bucket, Key="source.zip")
    except ClientError:
        s3.put_object(Bucket=bucket, Key="source.zip", Body=_source_zip())
    store = ApprovalStore(table, setup.client("dynamodb"))
    open_ = [a for a in store.all() if a.pipeline == pipeline and a.status == PENDING]
    if open_:
        setup.console.done(TRIAL, f"found an open request of {pipeline}: {_link(setup, open_[0])}")
        return
    execution = setup.client("codepipeline").start_pipeline_execution(name=pipeline)[
        "pipelineExecutionId"
    ]
    deadline = time.monotonic() + REQUEST_TIMEOUT * 3  # a real pipeline's source stage first
    while True:
        posted = [a for a in store.by_pipeline_execution(execution) if a.message_ts]
        if posted:
            break
        if time.monotonic() >= deadline:
            raise StepFailed(
                TRIAL,
                f"no request in Slack yet for {pipeline} run {execution}",
                f"approval-gate pending --stack {setup.stack}; then docs/operations.md, "
                "a stuck approval",
            )
        time.sleep(POLL * 4)
    setup.console.done(
        TRIAL,
        f"started one run of {pipeline}; its request: {_link(setup, posted[0])}: Approve as "
        f"{', '.join(setup.approvers)} or you (the trial rule, for this pipeline only)",
    )


def _link(setup: Setup, approval: object) -> str:
    channel = getattr(approval, "channel", None)
    ts = getattr(approval, "message_ts", None)
    if not channel or not ts:
        return f"in #{setup.channel_name} soon"
    try:
        return str(setup.slack.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
    except Exception:
        return f"in #{setup.channel_name}"
