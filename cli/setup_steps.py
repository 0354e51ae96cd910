"""`approval-gate setup`'s first six steps: prerequisites, the Slack tokens, the Slack
secret, the channel, the approvers and the policy file (the rest: cli.setup_deploy).

Each step looks first for its work already done (in AWS, in Slack, in the file) and then
says ``✓ … found``; otherwise it does the work (``✓``), or under ``--dry-run`` says what
it would do (``→``). A step that cannot go on raises StepFailed with the fix. Nothing here
shows a token: Slack failures are shown by their error code, and the secret's values are
compared, never printed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.setup import DEFAULT_STACK, Console, StepFailed

#: The repository's root: make build, template.yaml and examples/ are there.
ROOT = Path(__file__).resolve().parent.parent
SAM_TOOL = ROOT / ".tools" / "sam" / "bin" / "sam"
SECRET_NAME = "approval-gate/slack"  # noqa: S105 - a name, no secret
TOKEN_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CONFIG_TOKEN")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
#: Slack's Web API base URL on AWS (None: slack.com); tests point it at a stand-in.
SLACK_API_URL: str | None = None
#: Slack pages conversations.list; setup asks for this many a page.
CHANNELS_PAGE = 200


@dataclass
class Setup:
    """What the steps learn, for the ones after them. The tokens stay here, out of repr."""

    args: argparse.Namespace
    console: Console
    env: Mapping[str, str] = field(repr=False)
    stack: str
    session: Any = None
    endpoint_url: str | None = None
    region: str | None = None
    #: The sandbox (a cli.target.Deployment); None for AWS.
    sandbox: Any = None
    slack_api_url: str | None = None
    bot_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    config_token: str | None = field(default=None, repr=False)
    team_id: str | None = None
    app_id: str | None = None
    bot_name: str = "approval-gate"
    slack: Any = None
    secret_arn: str | None = None
    channel: str | None = None
    channel_name: str | None = None
    approvers: dict[str, str] = field(default_factory=dict)
    #: The gate's stack outputs once deployed (the sandbox: its own URLs).
    outputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, args: argparse.Namespace, console: Console, env: Mapping[str, str]) -> Setup:
        return cls(args=args, console=console, env=env, stack=args.stack or DEFAULT_STACK)

    @property
    def dry_run(self) -> bool:
        return bool(self.args.dry_run)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def child_env(self) -> dict[str, str]:
        """The environment of a child process: this one's, without any Slack token."""
        return {k: v for k, v in self.env.items() if k not in TOKEN_VARIABLES}


# --------------------------------------------------------------------------- 1. prerequisites

PREREQUISITES = "prerequisites"


def prerequisites(setup: Setup) -> None:
    """AWS credentials (sts get-caller-identity); for AWS, python3.12 and SAM CLI too."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from cli.errors import explain

    if setup.args.sandbox:
        from cli.target import describe_sandbox

        try:
            setup.sandbox = describe_sandbox(setup.args.sandbox)
        except Exception as exc:
            raise StepFailed(
                PREREQUISITES, str(explain(exc) or exc), "start it: approval-gate sandbox"
            ) from None
        setup.session = setup.sandbox.session
        setup.endpoint_url = setup.sandbox.endpoint_url
        setup.slack_api_url = setup.sandbox.slack_api_url
    else:
        try:
            setup.session = boto3.Session(
                profile_name=setup.args.profile, region_name=setup.args.region
            )
        except BotoCoreError as exc:
            raise StepFailed(PREREQUISITES, str(explain(exc)), "check --profile") from None
        setup.slack_api_url = SLACK_API_URL
    setup.region = setup.session.region_name
    if not setup.region:
        raise StepFailed(PREREQUISITES, "no AWS region", "give --region, or set AWS_REGION")
    try:
        who = setup.client("sts").get_caller_identity()
    except NoCredentialsError:
        raise StepFailed(
            PREREQUISITES,
            "no AWS credentials",
            "aws configure (or aws sso login) and pass --profile, or set the AWS_* variables",
        ) from None
    except (ClientError, BotoCoreError) as exc:
        raise StepFailed(
            PREREQUISITES, f"sts get-caller-identity: {explain(exc)}", "check the credentials"
        ) from None
    where = f"AWS account {who.get('Account')}, region {setup.region}"
    if setup.sandbox is not None:
        setup.console.done(PREREQUISITES, f"the sandbox at {setup.args.sandbox}: {where} (moto)")
        return
    if shutil.which("python3.12") is None:
        raise StepFailed(
            PREREQUISITES,
            f"{where}; no python3.12 on PATH (sam build needs the Lambda runtime's Python)",
            "install Python 3.12 (pyenv install 3.12, brew install python@3.12, or apt-get "
            "install python3.12) so that python3.12 runs, then run setup again",
        )
    sam = shutil.which("sam") or (str(SAM_TOOL) if SAM_TOOL.exists() else None)
    tools = f"python3.12, SAM CLI {sam}" if sam else "python3.12; SAM CLI: make build installs it"
    setup.console.done(PREREQUISITES, f"{where}; {tools}")


# --------------------------------------------------------------------------- 2. Slack tokens

TOKENS = "Slack tokens"
#: What to do about a bot token auth.test refuses (no secret in it).
REFUSED_BOT_FIX = (
    "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…, Slack app → OAuth & "
    "Permissions); nothing was stored"
)


def _token(setup: Setup, variable: str, question: str, what: str) -> str:
    value = (setup.env.get(variable) or "").strip()
    if not value:
        value = setup.console.ask(question, secret=True) or ""
    if not value:
        raise StepFailed(
            TOKENS,
            f"no {what}",
            f"set {variable} (read it with read -rs {variable}; export {variable}), or run "
            "setup in a terminal to be asked",
        )
    return value


def slack_tokens(setup: Setup) -> None:
    """The bot token and signing secret; auth.test and the manifest's scopes."""
    from slack_sdk import WebClient

    from cli.doctor_slack import BAD_TOKEN, SLACK_TIMEOUT, granted_scopes, manifest_scopes
    from cli.doctor_slack import slack_error as error_of

    setup.bot_token = _token(
        setup, "SLACK_BOT_TOKEN", "Slack Bot User OAuth Token (xoxb-…)", "Slack bot token"
    )
    setup.signing_secret = _token(
        setup, "SLACK_SIGNING_SECRET", "Slack app's Signing Secret", "Slack signing secret"
    )
    setup.config_token = (setup.env.get("SLACK_CONFIG_TOKEN") or "").strip() or None
    options: dict[str, Any] = {"token": setup.bot_token, "timeout": SLACK_TIMEOUT}
    if setup.slack_api_url:
        options["base_url"] = setup.slack_api_url
    client = WebClient(**options)
    try:
        answer = client.auth_test()
    except Exception as exc:
        error = error_of(exc)
        fix = REFUSED_BOT_FIX if error in BAD_TOKEN else "check that Slack can be reached from here"
        raise StepFailed(TOKENS, f"auth.test answered {error}", fix) from None
    granted = granted_scopes(answer.headers) or []
    missing = [scope for scope in manifest_scopes() if scope not in granted]
    if missing:
        raise StepFailed(
            TOKENS,
            f"the bot token lacks {', '.join(missing)}",
            f"add {', '.join(missing)} under OAuth & Permissions → Bot Token Scopes (as "
            "slack-app-manifest.yaml lists them), reinstall the app, run setup again",
        )
    setup.slack = client
    setup.team_id = str(answer.get("team_id") or "") or None
    setup.bot_name = str(answer.get("user") or setup.bot_name)
    try:  # auth.test does not name the app; its bot does (bots.info, users:read)
        setup.app_id = str(client.bots_info(bot=answer.get("bot_id"))["bot"]["app_id"]) or None
    except Exception:
        setup.app_id = None
    setup.console.done(
        TOKENS,
        f"bot @{setup.bot_name} of {answer.get('team') or '?'} ({setup.team_id}, app "
        f"{setup.app_id or '?'}): every scope of slack-app-manifest.yaml; signing secret given"
        + ("; configuration token given" if setup.config_token else ""),
    )


# --------------------------------------------------------------------------- 3. the secret

SECRET = "Slack secret"  # noqa: S105 - a step's name


def _secret_id(setup: Setup) -> str:
    """The sandbox's secret; the stack's (its SlackSecretArn) when it exists; else the name."""
    from botocore.exceptions import ClientError

    from cli.target import SLACK_SECRET_PARAMETER

    if setup.sandbox is not None:
        return setup.sandbox.parameters[SLACK_SECRET_PARAMETER]
    try:
        stacks = setup.client("cloudformation").describe_stacks(StackName=setup.stack)["Stacks"]
    except ClientError:
        return SECRET_NAME
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue") for p in stacks[0].get("Parameters", ())
    }
    return parameters.get(SLACK_SECRET_PARAMETER) or SECRET_NAME


def slack_secret(setup: Setup) -> None:
    """Create the secret, or update it only when its values differ (never shown)."""
    from botocore.exceptions import ClientError

    secrets = setup.client("secretsmanager")
    wanted = {"bot_token": setup.bot_token, "signing_secret": setup.signing_secret}
    wanted.update({k: v for k, v in (("team_id", setup.team_id), ("app_id", setup.app_id)) if v})
    secret_id = _secret_id(setup)
    try:
        found = secrets.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        if setup.dry_run:
            setup.secret_arn = f"(the ARN of the new secret {secret_id})"
            setup.console.would(SECRET, f"create the secret {secret_id} (values not shown)")
            return
        setup.secret_arn = secrets.create_secret(
            Name=secret_id,
            Description="Approval Gate: Slack app credentials",
            SecretString=json.dumps(wanted),
        )["ARN"]
        setup.console.done(SECRET, f"created {setup.secret_arn}")
        return
    setup.secret_arn = str(found["ARN"])
    try:
        current = json.loads(found.get("SecretString") or "")
    except ValueError:
        current = None
    merged = {**current, **wanted} if isinstance(current, dict) else wanted
    if merged == current:
        setup.console.done(SECRET, f"found {setup.secret_arn} with the same values")
    elif setup.dry_run:
        setup.console.would(SECRET, f"update {setup.secret_arn}: its values differ (not shown)")
    else:
        secrets.put_secret_value(SecretId=setup.secret_arn, SecretString=json.dumps(merged))
        setup.console.done(SECRET, f"updated {setup.secret_arn}: its values differed")


# --------------------------------------------------------------------------- 4. the channel

CHANNEL = "channel"


def _ask(setup: Setup, step: str, given: str | None, question: str, flag: str) -> str:
    value = (given or "").strip() or (setup.console.ask(question) or "")
    if not value:
        raise StepFailed(step, f"no {step} given", f"pass {flag} (no terminal to ask in)")
    return value


def channel(setup: Setup) -> None:
    """The channel by name (``#`` optional) or id; the bot must be a member."""
    from cli.doctor_slack import slack_error

    name = _ask(setup, CHANNEL, setup.args.channel, "Slack channel for requests", "--channel NAME")
    name = name.lstrip("#").strip()
    found: dict[str, Any] | None = None
    cursor = ""
    try:
        while found is None:
            page = setup.slack.conversations_list(
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=CHANNELS_PAGE,
                cursor=cursor or None,
            )
            found = next(
                (c for c in page["channels"] if name in (c.get("name"), c.get("id"))), None
            )
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
    except Exception as exc:
        raise StepFailed(
            CHANNEL, f"conversations.list answered {slack_error(exc)}", "run setup again"
        ) from None
    invite = f"/invite @{setup.bot_name} in #{name}"
    if found is None:
        raise StepFailed(
            CHANNEL,
            f"the bot sees no channel #{name}",
            f"check the name; a private channel: {invite} first; then run setup again",
        )
    setup.channel, setup.channel_name = str(found["id"]), str(found.get("name") or name)
    if not found.get("is_member"):
        raise StepFailed(
            CHANNEL,
            f"the bot is not a member of #{setup.channel_name} ({setup.channel})",
            f"/invite @{setup.bot_name} in #{setup.channel_name}, then run setup again",
        )
    setup.console.done(CHANNEL, f"#{setup.channel_name} is {setup.channel}, the bot a member")


# --------------------------------------------------------------------------- 5. approvers

APPROVERS = "approvers"


def approvers(setup: Setup) -> None:
    """Each email to its Slack user (users.lookupByEmail)."""
    from cli.doctor_slack import slack_error

    given = _ask(
        setup,
        APPROVERS,
        setup.args.approvers,
        "Approvers' Slack emails, comma-separated",
        "--approvers EMAIL,...",
    )
    emails = list(dict.fromkeys(e.strip() for e in given.split(",") if e.strip()))
    for email in emails:
        try:
            user = setup.slack.users_lookupByEmail(email=email)["user"]
        except Exception as exc:
            error = slack_error(exc)
            if error == "users_not_found":
                raise StepFailed(
                    APPROVERS,
                    f"no Slack user has the email {email}",
                    "check it (the person's Slack profile shows it), then run setup again",
                ) from None
            raise StepFailed(
                APPROVERS, f"users.lookupByEmail answered {error} for {email}", "run setup again"
            ) from None
        setup.approvers[email] = str(user["id"])
    setup.console.done(APPROVERS, ", ".join(f"{e} is {u}" for e, u in setup.approvers.items()))


# --------------------------------------------------------------------------- 6. the policy

POLICY = "policy"


def policy(setup: Setup) -> None:
    """Write the policy for that channel and those approvers (the sandbox: put it in force)."""
    from approval_gate.policy import PolicyError, load_policy

    from cli.setup_policy import FOREIGN, FOUND, plan_policy

    assert setup.channel is not None and setup.channel_name is not None
    path = Path(setup.args.policy_file)
    if setup.sandbox is not None:
        from cli.target import sandbox_aws

        current: str | None = sandbox_aws(setup.args.sandbox).get("policy")
        where = "the sandbox's policy in force"
    else:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        where = str(path)
    plan = plan_policy(
        current,
        channel=setup.channel,
        channel_name=setup.channel_name,
        approvers=setup.approvers,
        trial=setup.args.trial,
        language=setup.args.language,
    )
    if plan.action == FOREIGN:
        raise StepFailed(
            POLICY,
            f"{where}: {plan.why}; setup does not overwrite it",
            "edit it yourself (the channel, the approvers), or pass --policy-file",
        )
    trial = (
        f"; rule {_trial_rule()} lets the trial run's author approve it (you start that run, "
        "and four-eyes would refuse your own Approve): for the trial only"
        if setup.args.trial
        else ""
    )
    if plan.action == FOUND:
        setup.console.done(POLICY, f"{where}: found, {plan.why}{trial}")
        return
    try:
        load_policy(plan.text)
    except PolicyError as exc:  # the channel or an id Slack gave is not one the policy takes
        raise StepFailed(
            POLICY, f"the policy setup wrote does not load: {exc}", "report it"
        ) from None
    if setup.dry_run:
        setup.console.would(POLICY, f"write {where} ({plan.why}) for {setup.channel}{trial}")
        return
    if setup.sandbox is not None:
        _put_in_force(setup, plan.text, trial)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan.text, encoding="utf-8")
    setup.console.done(
        POLICY,
        f"wrote {path} ({plan.why} before) for #{setup.channel_name}{trial}; review it: it "
        "stays a file under version control",
    )


def _trial_rule() -> str:
    from cli.setup_policy import TRIAL_MATCH

    return f'match "{TRIAL_MATCH}", allow_self_approval true'


def _put_in_force(setup: Setup, text: str, trial: str) -> None:
    """The sandbox: the policy to a temporary file, then in force (POST /_sandbox/policy)."""
    import tempfile

    from sandbox.client import SandboxClient

    with tempfile.NamedTemporaryFile(
        "w", prefix="approval-gate-setup-policy-", suffix=".yaml", delete=False, encoding="utf-8"
    ) as handle:
        handle.write(text)
    status, answer = SandboxClient(setup.args.sandbox).post_text("/_sandbox/policy", text)
    if status != 200:
        raise StepFailed(POLICY, f"the sandbox refused the policy: {answer}", "report it")
    setup.console.done(
        POLICY,
        f"wrote {handle.name} for #{setup.channel_name} and put it in force in the sandbox "
        f"(POST /_sandbox/policy){trial}; review it: on AWS it stays a file under version "
        "control",
    )


def steps() -> list[Callable[[Setup], None]]:
    from cli import setup_deploy as deploy

    return [
        prerequisites,
        slack_tokens,
        slack_secret,
        channel,
        approvers,
        policy,
        deploy.build_and_deploy,
        deploy.interactivity,
        deploy.doctor,
        deploy.trial,
    ]
