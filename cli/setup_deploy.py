"""`approval-gate setup`'s last four steps: build and deploy, the interactivity URL,
doctor, and with ``--try`` the example pipeline and one run.

On AWS, ``make build`` and ``sam deploy`` run as children with no Slack token in their
arguments or environment; ``--save-params`` keeps the deploy's options in samconfig.toml
(no secret: the secret's ARN only), so the next deploy is plain ``sam deploy``. Against
the sandbox the deploys are printed, not run: the sandbox runs this checkout's template.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from typing import Any

from cli.setup import StepFailed
from cli.setup_steps import ROOT, SAM_TOOL, Setup

#: The example pipeline's stack: its pipeline is then approval-gate-example-Pipeline-…,
#: which the trial rule of the policy matches.
EXAMPLE_STACK = "approval-gate-example"
EXAMPLE_TEMPLATE = "examples/pipeline.yaml"
#: The name the sandbox's run of the example pipeline gets.
SANDBOX_EXAMPLE = "approval-gate-example-Pipeline-sandbox"
#: How long to wait for the trial request to show in Slack.
REQUEST_TIMEOUT = 60.0
POLL = 0.5

DEPLOY = "build and deploy"
INTERACTIVITY = "interactivity URL"
DOCTOR = "doctor"
TRIAL = "try"


def sam() -> str:
    """SAM CLI: on PATH, or the one make build installs."""
    return shutil.which("sam") or str(SAM_TOOL)


def deploy_command(setup: Setup) -> list[str]:
    """``sam deploy`` of the gate, non-interactive; the secret's ARN is no secret."""
    command = [
        sam(),
        "deploy",
        "--stack-name",
        setup.stack,
        "--region",
        str(setup.region),
        "--capabilities",
        "CAPABILITY_IAM",
        "CAPABILITY_AUTO_EXPAND",
        "--resolve-s3",
        "--parameter-overrides",
        f"SlackSecretArn={setup.secret_arn}",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--save-params",
    ]
    if setup.args.profile:
        command += ["--profile", setup.args.profile]
    return command


def example_command(setup: Setup, topic: str) -> list[str]:
    """``sam deploy`` of examples/pipeline.yaml with the gate's topic. It saves nothing:
    samconfig.toml stays the gate's (whose options the flags here override)."""
    command = [
        sam(),
        "deploy",
        "--template-file",
        EXAMPLE_TEMPLATE,
        "--stack-name",
        EXAMPLE_STACK,
        "--region",
        str(setup.region),
        "--capabilities",
        "CAPABILITY_IAM",
        "--resolve-s3",
        "--parameter-overrides",
        f"ApprovalTopicArn={topic}",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
    ]
    if setup.args.profile:
        command += ["--profile", setup.args.profile]
    return command


def _shown(command: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in command)


def _run(setup: Setup, step: str, command: list[str]) -> str:
    """Run a child in the repository, without any Slack token; its output, or StepFailed
    with its last lines."""
    done = subprocess.run(  # noqa: S603 - our own command line, no shell
        command, cwd=ROOT, env=setup.child_env(), capture_output=True, text=True, check=False
    )
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-4:])
        raise StepFailed(
            step,
            f"{command[0].rsplit('/', 1)[-1]} {command[1]} exited {done.returncode}: {tail}",
            f"see the output of {_shown(command[:2])} (run from {ROOT}), fix it, run setup again",
        )
    return output


def _stack_outputs(setup: Setup, stack: str) -> dict[str, str] | None:
    from botocore.exceptions import ClientError

    try:
        found = setup.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError:
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", ())}


# --------------------------------------------------------------------------- 7. deploy


def build_and_deploy(setup: Setup) -> None:
    """make build, then sam deploy (samconfig.toml saved); the sandbox: printed only."""
    command = deploy_command(setup)
    if setup.sandbox is not None:
        url = setup.args.sandbox.rstrip("/")
        setup.outputs = {
            "SlackInteractivityUrl": f"{url}/slack/interactions",
            "ApprovalTopicArn": setup.sandbox.resource("ApprovalTopic") or "",
        }
        setup.console.done(
            DEPLOY,
            "not run: the sandbox runs this checkout's template; on AWS: make build && "
            + _shown(command),
        )
        return
    if setup.dry_run:
        setup.console.would(
            DEPLOY, f"run make build, then {_shown(command)} (saves samconfig.toml)"
        )
        setup.outputs = _stack_outputs(setup, setup.stack) or {}
        return
    _run(setup, DEPLOY, ["make", "build"])
    output = _run(setup, DEPLOY, command)
    setup.outputs = _stack_outputs(setup, setup.stack) or {}
    state = "found up to date" if "No changes to deploy" in output else "deployed"
    setup.console.done(
        DEPLOY, f"stack {setup.stack} {state}; samconfig.toml saved: next time, sam deploy"
    )


# --------------------------------------------------------------------------- 8. interactivity


def interactivity(setup: Setup) -> None:
    """The Slack app's request URL: through the App Manifest API with a configuration
    token; otherwise the exact field and value, and (a terminal) Enter once it is set."""
    url = setup.outputs.get("SlackInteractivityUrl")
    if not url:
        if setup.dry_run:
            setup.console.would(INTERACTIVITY, "set the stack output SlackInteractivityUrl")
            return
        raise StepFailed(
            INTERACTIVITY, f"stack {setup.stack} has no output SlackInteractivityUrl", "deploy it"
        )
    if setup.config_token:
        _set_by_manifest(setup, url)
        return
    if setup.sandbox is not None:
        setup.console.done(INTERACTIVITY, f"the sandbox's own ({url}): counts as set")
        return
    field = (
        "Slack app (api.slack.com/apps) → Interactivity & Shortcuts → Interactivity On → "
        "Request URL"
    )
    if setup.dry_run:
        setup.console.would(INTERACTIVITY, f"ask you to set {field} to {url}")
        return
    setup.console.line("→", INTERACTIVITY, f"set {field} to {url}, then Save Changes")
    if setup.console.wait_enter("Press Enter once it is saved"):
        setup.console.done(INTERACTIVITY, f"set by you to {url}")
    else:
        setup.console.done(
            INTERACTIVITY, "no terminal to wait in: going on; set it before the first click"
        )


def _set_by_manifest(setup: Setup, url: str) -> None:
    from slack_sdk import WebClient

    from cli.doctor_slack import SLACK_TIMEOUT, slack_error

    if not setup.app_id:
        raise StepFailed(
            INTERACTIVITY,
            "the app's id is not known (bots.info did not answer)",
            "unset SLACK_CONFIG_TOKEN to set the URL by hand",
        )
    options: dict[str, Any] = {"token": setup.config_token, "timeout": SLACK_TIMEOUT}
    if setup.slack_api_url:
        options["base_url"] = setup.slack_api_url
    client = WebClient(**options)
    fix = (
        "SLACK_CONFIG_TOKEN must be an app configuration token (xoxe.xoxp-…, api.slack.com/apps "
        "→ Your App Configuration Tokens; it lasts 12 hours), or unset it to set the URL by hand"
    )
    try:
        manifest = dict(client.apps_manifest_export(app_id=setup.app_id)["manifest"])
        settings = dict(manifest.get("settings") or {})
        current = dict(settings.get("interactivity") or {})
        if current.get("request_url") == url and current.get("is_enabled"):
            setup.console.done(INTERACTIVITY, f"found: app {setup.app_id} already sends to {url}")
            return
        if setup.dry_run:
            setup.console.would(INTERACTIVITY, f"set app {setup.app_id}'s Request URL to {url}")
            return
        settings["interactivity"] = {**current, "is_enabled": True, "request_url": url}
        client.apps_manifest_update(
            app_id=setup.app_id, manifest={**manifest, "settings": settings}
        )
    except Exception as exc:
        raise StepFailed(
            INTERACTIVITY, f"the App Manifest API answered {slack_error(exc)}", fix
        ) from None
    setup.console.done(INTERACTIVITY, f"set app {setup.app_id}'s Request URL to {url}")


# --------------------------------------------------------------------------- 9. doctor


def doctor(setup: Setup) -> None:
    """`approval-gate doctor`, its table; a failed check stops setup."""
    from cli.doctor import diagnose, write_checks
    from cli.target import describe_sandbox, describe_stack

    where = (
        f"--sandbox {setup.args.sandbox}" if setup.sandbox is not None else f"--stack {setup.stack}"
    )
    if setup.dry_run:
        setup.console.would(DOCTOR, f"run approval-gate doctor {where}")
        return
    if setup.sandbox is not None:
        deployment = describe_sandbox(setup.args.sandbox)
    else:
        deployment = describe_stack(setup.stack, region=setup.region, profile=setup.args.profile)
    checks = diagnose(deployment)
    write_checks(checks, "table", setup.console.out)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise StepFailed(
            DOCTOR, f"{len(failed)} checks failed: {', '.join(failed)}", "fix each as its line says"
        )
    setup.console.done(DOCTOR, f"all {len(checks)} checks passed")


# --------------------------------------------------------------------------- 10. try


def trial(setup: Setup) -> None:
    """With --try: the example pipeline, and one run whose request shows in Slack."""
    if not setup.args.trial:
        return
    if setup.sandbox is not None:
        _sandbox_trial(setup)
    else:
        from cli.setup_trial import aws_trial

        aws_trial(setup)


def _sandbox_trial(setup: Setup) -> None:
    from sandbox.client import SandboxClient, request_message

    client = SandboxClient(setup.args.sandbox)
    url = setup.args.sandbox.rstrip("/")
    topic = setup.outputs.get("ApprovalTopicArn") or "(ApprovalTopicArn)"
    shown = _shown(example_command(setup, topic))
    where = f"#{setup.channel_name} at {url}/ (the sandbox's Slack)"
    who = ", ".join(setup.approvers) + ", or you (the trial rule)"
    open_ = [
        a for a in client.approvals() if a["pipeline"] == SANDBOX_EXAMPLE and not a.get("outcome")
    ]
    if open_:
        setup.console.done(
            TRIAL, f"found an open request of {SANDBOX_EXAMPLE} in {where}: Approve as {who}"
        )
        return
    if setup.dry_run:
        setup.console.would(TRIAL, f"start one run of {SANDBOX_EXAMPLE} (on AWS: {shown})")
        return
    run = client.start_run(SANDBOX_EXAMPLE)
    execution = run["pipelineExecutionId"]
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while True:
        record = next(
            (a for a in client.approvals() if a["pipeline_execution_id"] == execution), None
        )
        message = record and request_message(client.messages(), record["approval_id"])
        if message:
            break
        if time.monotonic() >= deadline:
            raise StepFailed(
                TRIAL,
                f"no request in Slack {REQUEST_TIMEOUT:g} s after starting {SANDBOX_EXAMPLE}",
                f"see approval-gate pending --sandbox {url}",
            )
        time.sleep(POLL)
    setup.console.done(
        TRIAL,
        f"not deployed on the sandbox ({shown}); started one run of {SANDBOX_EXAMPLE}: its "
        f"request is in {where}: Approve as {who}",
    )
