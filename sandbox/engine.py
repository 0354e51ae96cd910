"""The sandbox: the real template, state machine and handlers on moto, in one process.

`Sandbox` reads template.yaml, creates its resources in moto (table, topic, secret,
functions, state machine), imports each handler with that function's environment, and
wires a fake Slack and a fake CodePipeline in. The HTTP front (`sandbox.server`) exposes it.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import gc
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox import patches
from sandbox.aws_endpoint import LOOPBACK_PASSTHROUGH, AwsEndpoint
from sandbox.fake_codepipeline import FakeCodePipeline
from sandbox.fake_slack import FakeSlack, manifest_bot_scopes
from sandbox.faults import Faults, FunctionTimedOut, InjectedFunctionError
from sandbox.template import (
    FunctionSpec,
    Resolver,
    function_specs,
    load_template,
    parameter_defaults,
    resources_of_type,
)

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
DEFAULT_SIGNING_SECRET = "sandbox-signing-secret"
BOT_TOKEN = "xoxb-sandbox-bot-token"
SERVICE_LOGGER = "approval-gate"
#: The Slack client timeout (seconds) the handlers get through SLACK_TIMEOUT_VARIABLE, shorter
#: than a ``timeout`` fault's default hold (``sandbox.faults.DEFAULT_DELAY``), so the gate
#: sees an injected timeout sooner than with its production 5 s. Not shorter: the sandbox's
#: fake Slack shares one busy interpreter and can answer a carried-out post after a second,
#: which the gate would take for a failure and post again (docs/reliability.md).
SLACK_CLIENT_TIMEOUT = 3
#: How long a background invocation waits for the API requests in flight (Sandbox.invoke).
BACKGROUND_YIELD = 1.0
#: How long after the last answer background work still waits: Slack's requests come in
#: bursts (a channel of approvers clicking), and under load they reach the sandbox a few
#: milliseconds apart; a gap between two of them must not let a workflow step in.
BACKGROUND_QUIET = 0.05
#: How long a workflow carrying a decision keeps its turn, at most (Sandbox.background_gate):
#: reporting and closing take tens of milliseconds; a retry's back-off can take seconds.
DECISION_TURN = 0.5
#: Entries one PutEvents call takes (EventBridge's limit).
PUT_EVENTS_LIMIT = 10
SLACK_TIMEOUT_VARIABLE = "APPROVAL_GATE_SLACK_TIMEOUT"
#: CloudWatch alarm states (SetAlarmState's StateValue).
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
#: What a check function answers until told otherwise (``POST /_sandbox/checks/{name}``).
DEFAULT_CHECK_ANSWER: dict[str, Any] = {"passed": True, "summary": "ok"}
#: A check function's configured timeout (seconds): the gate waits 5 s for an answer.
CHECK_FUNCTION_TIMEOUT = 5
_CHECK_FUNCTION_ARN = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]{1,64})(?::[A-Za-z0-9$_-]+)?$"
)
_LOG = logging.getLogger("approval_gate.sandbox")

_counter = iter(range(1, 1_000_000))
_DISCARD = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
_environ_lock = threading.Lock()


@dataclass(frozen=True)
class LambdaContext:
    """The few attributes of Lambda's context object that the handlers and Powertools read.

    ``get_remaining_time_in_millis`` counts down from the function's configured timeout, as
    Lambda's does: what the gate decides from it (whether a Retry-After can still be waited
    out) is decided here on the time really left.
    """

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    timeout_ms: int = 30_000
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        spent_ms = (time.monotonic() - self.started) * 1000
        return max(0, int(self.timeout_ms - spent_ms))


class CapturedLogs(io.TextIOBase):
    """Where the functions' log lines go instead of stdout, kept for tests to read.

    Powertools' Logger binds its handler to stdout when created, so redirecting stdout
    catches nothing: the sandbox points that handler's stream here instead.
    """

    def __init__(self, echo: bool) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=50_000)
        self.echo = echo
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *complete, self._partial = (self._partial + text).split("\n")
            self.lines.extend(line for line in complete if line)
        if self.echo:
            sys.stderr.write(text)
        return len(text)


def layer_paths(template: dict[str, Any], layer_refs: list[Any] | None = None) -> list[str]:
    """Where built layers' code is importable from, as the Lambda runtime's /opt/python.

    A layer built with `sam build` (BuildMethod set) packages its ContentUri folder as
    python/<folder name>, so its parent folder goes on sys.path. With `layer_refs`, only
    those layers ({"Ref": name}); without, every built layer of the template.
    """
    layers = resources_of_type(template, "AWS::Serverless::LayerVersion")
    if layer_refs is not None:
        names = [ref.get("Ref") for ref in layer_refs if isinstance(ref, dict)]
        layers = {name: layers[name] for name in names if name in layers}
    paths = []
    for resource in layers.values():
        if (resource.get("Metadata") or {}).get("BuildMethod"):
            content = (ROOT / resource["Properties"]["ContentUri"]).resolve()
            paths.append(str(content.parent))
    return paths


def policy_in_language(text: str, language: str) -> str:
    """The policy document ``text`` with ``defaults.language`` set to ``language`` (DESIGN
    §8.5): every rule that sets no language of its own speaks it. The document is loaded
    and written again as YAML, so its comments are not kept. A text that is not a YAML
    mapping comes back unchanged, for the policy's loader to say what is wrong with it."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if document is None:
        document = {}
    if not isinstance(document, dict):
        return text
    defaults = document.get("defaults")
    if defaults is not None and not isinstance(defaults, dict):
        return text
    document["defaults"] = {**(defaults or {}), "language": language}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def make_domain_importable(template_file: Path = ROOT / "template.yaml") -> None:
    """Put the template's built layers on sys.path, as Lambda puts /opt/python."""
    for path in layer_paths(load_template(template_file)):
        if path not in sys.path:
            sys.path.insert(0, path)


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """os.environ set to `variables` on top of the process's own, only while importing."""
    with _environ_lock:
        saved = dict(os.environ)
        os.environ.update(variables)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


class Sandbox:
    """One running sandbox. Only one may run per process (moto patches are global)."""

    def __init__(
        self,
        *,
        policy_file: Path,
        base_url: str,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        slack_fixture: dict[str, Any] | None = None,
        template_file: Path = ROOT / "template.yaml",
        echo_logs: bool = False,
        language: str | None = None,
    ) -> None:
        #: The policy in force: a copy of the given file, which ``set_policy`` replaces
        #: (``POST /_sandbox/policy``) without touching the original. With ``language``
        #: (the CLI's ``--language``), the copy is the file's document with
        #: ``defaults.language`` set to it (:func:`policy_in_language`).
        source = Path(policy_file).resolve()
        #: The file the sandbox was started with (its errors name it, not the copy).
        self.policy_source = source
        self._policy_dir = Path(tempfile.mkdtemp(prefix="approval-gate-policy-"))
        self.policy_file = self._policy_dir / "policy.yaml"
        if language is None:
            shutil.copyfile(source, self.policy_file)
        else:
            text = source.read_text(encoding="utf-8")
            self.policy_file.write_text(policy_in_language(text, language), encoding="utf-8")
        self.base_url = base_url.rstrip("/")
        self.signing_secret = signing_secret
        self.template_file = template_file
        self.template = load_template(template_file)
        make_domain_importable(template_file)
        #: The faults both fakes inject (``POST /_sandbox/faults``).
        self.faults = Faults()
        #: The app installed from its manifest: the token has the manifest's bot scopes.
        self.slack = FakeSlack(
            bot_token=BOT_TOKEN, faults=self.faults, scopes=manifest_bot_scopes()
        )
        self.slack.permalink_base = self.base_url
        self.codepipeline = FakeCodePipeline(region=REGION, account=ACCOUNT, faults=self.faults)
        self.logs = CapturedLogs(echo_logs)
        self._slack_fixture = slack_fixture
        self._mock: Any = None
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._functions: dict[str, FunctionSpec] = {}
        self._physical: dict[str, str] = {}
        self._arns: dict[str, str] = {}
        self.routes: dict[tuple[str, str], str] = {}
        self.topic_arn = ""
        self.table_name = ""
        self.state_machine_arn = ""
        self.secret_arn = ""
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        gate_lock = threading.Lock()
        self._foreground = threading.Condition(gate_lock)
        self._serving = 0
        self._last_answered = float("-inf")
        self._thread = threading.local()
        #: Functions an EventBridge rule invokes (the status feed), and how many invocations
        #: of the others (workflow steps, SNS) are running now.
        self._event_driven: set[str] = set()
        self._steps_running = 0
        #: Decisions take turns (background_gate): the executions that took one, those
        #: waiting for theirs in the order they came, and the one holding it, since when.
        self._turns: set[str] = set()
        self._executions: set[str] = set()  # running now (Sandbox._execution)
        self._turn_queue: collections.deque[threading.Event] = collections.deque()
        self._turn_free = threading.Condition(gate_lock)  # only the head of the queue waits
        self._turn_holder: str | None = None
        self._turn_since = float("-inf")
        #: Every SNS message and EventBridge event delivered to a function, oldest first
        #: (``GET /_sandbox/events``).
        self._deliveries: list[dict[str, Any]] = []
        self._deliveries_lock = threading.Lock()
        #: Every function invocation, oldest first (``invocations``), bounded.
        self._invocations: collections.deque[dict[str, Any]] = collections.deque(maxlen=200_000)
        #: The health checks' stand-ins (DESIGN §8.3): the alarms created for the policy,
        #: and the check functions by name.
        self._alarms: set[str] = set()
        #: One alarm change at a time: each event's previousState is the state it replaced.
        self._alarm_changes = threading.Lock()
        self._check_functions: dict[str, CheckFunction] = {}
        self._role = ""
        #: moto in server mode on the same backends, for tools outside the process
        #: (``GET /_sandbox/aws``); the template parameters as resolved.
        self.aws_endpoint = AwsEndpoint()
        self._parameters: dict[str, Any] = {}

    # --- life -----------------------------------------------------------------------

    def start(self) -> Sandbox:
        patches.apply()
        for name in ("moto", "botocore", "urllib3", "werkzeug"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self._mock = mock_aws(
            config={
                "stepfunctions": {"execute_state_machine": True},
                # boto3 clients in this process pointed at the endpoint reach its server.
                "core": {"passthrough": {"urls": [LOOPBACK_PASSTHROUGH], "services": []}},
            }
        )
        self._mock.start()
        try:
            self.aws_endpoint.start()
        except Exception:
            self._mock.stop()
            self._mock = None
            raise
        patches.set_lambda_invoker(self.invoke)
        patches.set_background_gate(self.background_gate, self._execution)
        patches.set_codepipeline(self.codepipeline.call)
        patches.set_codecommit(self.codepipeline.call)
        patches.set_delivery_recorder(self._record_delivery)
        patches.set_aws_faults(self.faults.choose)
        from approval_gate.policy import load_policy_file

        policy = load_policy_file(self.policy_file)
        self._seed_workspace(policy)
        self._create_resources()
        self.set_up_checks(policy)
        self.codepipeline.publish = self._publish_approval
        self.codepipeline.notify_elsewhere = self._notify_elsewhere
        self.codepipeline.gate_topic_arn = self.topic_arn
        self.codepipeline.emit = self._emit_pipeline_events
        # What exists now (modules, botocore's service models, moto, the resources) lives
        # as long as the sandbox: keep the collector from scanning it again and again. Each
        # full collection otherwise walked the whole start-up heap (~0.3 s) while a click
        # waited. `stop` hands it back.
        gc.freeze()
        return self

    def stop(self) -> None:
        self.wait_for_events()  # none delivered into the next sandbox
        patches.set_lambda_invoker(None)
        patches.set_background_gate(None)
        patches.set_codepipeline(None)
        patches.set_codecommit(None)
        patches.set_delivery_recorder(None)
        patches.set_aws_faults(None)
        self._redirect_logs(_DISCARD)
        self.aws_endpoint.stop()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._clients.clear()
        shutil.rmtree(self._policy_dir, ignore_errors=True)
        gc.unfreeze()

    def client(self, service: str) -> Any:
        """A boto3 client of the sandbox's moto, one per service (clients are thread-safe;
        making one costs tens of milliseconds)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service,
                    region_name=REGION,
                    aws_access_key_id="sandbox",
                    aws_secret_access_key="sandbox",
                )
            return self._clients[service]

    def reset(self) -> None:
        """Forget Slack's messages and calls, the pipeline's runs and results, the faults,
        and the events delivered."""
        self.wait_for_events()
        self.faults.reset()
        self.slack.reset()
        self.codepipeline.reset()
        with self._deliveries_lock:
            self._deliveries.clear()
            self._invocations.clear()
        for check in list(self._check_functions.values()):
            check.reset()
        for name in sorted(self._alarms):  # quietly: back as created, not a state change
            with contextlib.suppress(ClientError):  # one a test deleted stays deleted
                self.client("cloudwatch").set_alarm_state(
                    AlarmName=name, StateValue="OK", StateReason="Sandbox: the policy names it"
                )

    # --- resources from the template ----------------------------------------------------

    def set_policy(self, text: str) -> Any:
        """Put a policy document (YAML or JSON) in force for requests from now on: the
        start function reads it again; its users and groups join the fake workspace.
        ValueError (with the validator's words) when it is not a valid policy."""
        from approval_gate.policy import PolicyError, load_policy, shipped_policy

        try:
            policy = load_policy(text)
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        self.policy_file.write_text(text, encoding="utf-8")
        shipped_policy.cache_clear()  # the start function's loaded policy
        self._seed_workspace(policy)
        self.set_up_checks(policy)
        return policy

    def _seed_workspace(self, policy: Any = None) -> None:
        from approval_gate.policy import load_policy_file, policy_ids

        users, groups = policy_ids(policy or load_policy_file(self.policy_file))
        for user in sorted(users):
            self.slack.add_user(user)
        for group in sorted(groups):
            self.slack.add_group(group, users=sorted(users))
        if self._slack_fixture:
            self.slack.load_fixture(self._slack_fixture)

    def _resolver(self) -> Resolver:
        parameters = parameter_defaults(self.template)
        parameters["SlackSecretArn"] = self.secret_arn
        self._parameters = dict(parameters)
        return Resolver(
            parameters=parameters,
            ref=lambda name: self._physical[name],
            get_att=lambda name, attribute: self._arns[name],
            pseudo={
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::StackName": "approval-gate-sandbox",
                "AWS::URLSuffix": "amazonaws.com",
            },
        )

    def _create_resources(self) -> None:
        secrets = self.client("secretsmanager")
        self.secret_arn = secrets.create_secret(
            Name="approval-gate/slack",
            SecretString=json.dumps(
                {
                    "bot_token": self.slack.bot_token,
                    "signing_secret": self.signing_secret,
                    "team_id": self.slack.team_id,
                    "app_id": self.slack.app_id,
                }
            ),
        )["ARN"]
        resolver = self._resolver()

        for name, resource in resources_of_type(self.template, "AWS::DynamoDB::Table").items():
            self._create_table(name, resolver.resolve(resource["Properties"]))
        for name in resources_of_type(self.template, "AWS::SNS::Topic"):
            arn = self.client("sns").create_topic(Name=f"approval-gate-{name}")["TopicArn"]
            self._physical[name] = arn
            self._arns[name] = arn
        self.topic_arn = self._arns["ApprovalTopic"]  # where CodePipeline notifies

        role = self._role = self.client("iam").create_role(
            RoleName="approval-gate-sandbox",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        specs = function_specs(self.template, ROOT)
        lambda_client = self.client("lambda")
        for spec in specs:
            arn = lambda_client.create_function(
                FunctionName=spec.logical_id,
                Runtime="python3.12",
                Role=role,
                Handler=spec.handler,
                Code={"ZipFile": _placeholder_zip()},
                Timeout=spec.timeout,
            )["FunctionArn"]
            self._physical[spec.logical_id] = spec.logical_id
            self._arns[spec.logical_id] = arn
            self._functions[spec.logical_id] = spec

        for name, resource in resources_of_type(
            self.template, "AWS::Serverless::StateMachine"
        ).items():
            props = resource["Properties"]
            definition = (ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
            for key, value in resolver.resolve(props.get("DefinitionSubstitutions") or {}).items():
                definition = definition.replace("${" + key + "}", str(value))
            arn = self.client("stepfunctions").create_state_machine(
                name=name, definition=definition, roleArn=role, type=props.get("Type", "STANDARD")
            )["stateMachineArn"]
            self._physical[name] = arn
            self._arns[name] = arn
            self.state_machine_arn = self.state_machine_arn or arn

        for spec in specs:
            self._import_handler(spec, resolver)
            for name, event in spec.events.items():
                props = event.get("Properties") or {}
                if event.get("Type") == "SNS":
                    self.client("sns").subscribe(
                        TopicArn=resolver.resolve(props["Topic"]),
                        Protocol="lambda",
                        Endpoint=self._arns[spec.logical_id],
                    )
                elif event.get("Type") == "HttpApi":
                    self.routes[(props["Method"].upper(), props["Path"])] = spec.logical_id
                elif event.get("Type") == "EventBridgeRule":
                    self._event_driven.add(spec.logical_id)
                    events = self.client("events")
                    rule = f"{spec.logical_id}-{name}"
                    events.put_rule(Name=rule, EventPattern=json.dumps(props["Pattern"]))
                    self._physical[f"{spec.logical_id}{name}"] = rule  # SAM's logical id
                    events.put_targets(
                        Rule=rule, Targets=[{"Id": "1", "Arn": self._arns[spec.logical_id]}]
                    )

    def _create_table(self, name: str, props: dict[str, Any]) -> None:
        table_name = f"approval-gate-{name}"
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
        self._physical[name] = table_name
        self._arns[name] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"
        self.table_name = self.table_name or table_name

    def _import_handler(self, spec: FunctionSpec, resolver: Resolver) -> None:
        environment = {k: str(v) for k, v in resolver.resolve(spec.environment).items()}
        environment.update(
            {
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
                "APPROVAL_GATE_SLACK_API_URL": f"{self.base_url}/slack/api/",
                SLACK_TIMEOUT_VARIABLE: str(SLACK_CLIENT_TIMEOUT),
                "APPROVAL_GATE_POLICY_FILE": str(self.policy_file),
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": "ApprovalGate",
            }
        )
        for path in layer_paths(self.template, spec.layers):
            if path not in sys.path:
                sys.path.insert(0, path)
        module_file, _, function = spec.handler.rpartition(".")
        source = spec.code_dir / f"{module_file.replace('.', '/')}.py"
        unique = f"approval_gate_sandbox_{spec.logical_id}_{next(_counter)}"
        module_spec = importlib.util.spec_from_file_location(unique, source)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        with _environment(environment):
            module_spec.loader.exec_module(module)
        self._handlers[spec.logical_id] = getattr(module, function)
        self._redirect_logs(self.logs)

    @staticmethod
    def _redirect_logs(stream: Any) -> None:
        for handler in logging.getLogger(SERVICE_LOGGER).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(stream)

    # --- calling functions -------------------------------------------------------------

    def begin_serving(self) -> Callable[[], None]:
        """Count an API Gateway request (Slack waiting on the line) in flight until the
        function returned is called — once its answer has been sent, not merely built."""
        with self._foreground:
            self._serving += 1
        answered = threading.Event()

        def done() -> None:
            with self._foreground:
                if answered.is_set():
                    return
                answered.set()
                self._serving -= 1
                self._last_answered = time.monotonic()
                self._foreground.notify_all()

        return done

    def start_run(self, pipeline: str, body: dict[str, Any]) -> Any:
        """A pipeline run started from the HTTP front (`FakeCodePipeline.start_run`, which
        starts runs one at a time). It waits at the background gate once, before its turn
        to start; what it invokes while it starts (SNS → `start_approval`) does not wait
        again: a start waiting for clicks while it holds the line would hold every start
        behind it, up to BACKGROUND_YIELD each."""
        self._let_requests_through()
        self._thread.passed = True
        try:
            return self.codepipeline.start_run(pipeline, body)
        finally:
            self._thread.passed = False

    @contextmanager
    def serving_on_this_thread(self) -> Iterator[None]:
        """The request's own thread: what it invokes never waits on requests in flight."""
        self._thread.serving = True
        try:
            yield
        finally:
            self._thread.serving = False

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Mark an API Gateway request in flight on this thread for the block's duration."""
        done = self.begin_serving()
        try:
            with self.serving_on_this_thread():
                yield
        finally:
            done()

    def background_gate(self, decision: bool = False, execution: str | None = None) -> None:
        """Hold background work (workflow steps, SNS, EventBridge) until its turn. On AWS
        each Lambda runs in its own execution environment, so a workflow's steps never slow
        a click's answer, nor each other; here they all share one interpreter (one core's
        worth of Python), so the sandbox chooses the order: API requests first (Slack waits
        on the line, three seconds at most; see `_let_requests_through`).

        An `execution` carrying a decision (`decision`: the task a click resumed, patch 12,
        or the PutApprovalResult task, patch 3) then takes a turn, in the order they came,
        and keeps it to its end (reporting to CodePipeline, closing the request in Slack),
        or for DECISION_TURN seconds if it runs longer (a retry's back-off): a burst of
        clicks is finished one decision at a time, each in tens of milliseconds, rather
        than all at once, each as slow as the whole burst."""
        self._let_requests_through()
        if not decision or execution is None:
            return
        mine = threading.Event()
        with self._foreground:
            if execution in self._turns or execution not in self._executions:
                return  # it has taken its turn, or it has ended (a stale task's thread)
            self._turns.add(execution)
            self._turn_queue.append(mine)
            if len(self._turn_queue) == 1:
                mine.set()
        mine.wait()  # until it heads the queue: each waits once, and wakes alone
        with self._foreground:
            while self._turn_holder is not None:
                left = self._turn_since + DECISION_TURN - time.monotonic()
                if left <= 0:
                    break
                self._turn_free.wait(left)
            self._turn_queue.popleft()
            if execution in self._executions:  # not ended while it waited
                self._turn_holder, self._turn_since = execution, time.monotonic()
            if self._turn_queue:
                self._turn_queue[0].set()

    @contextmanager
    def _execution(self, execution: str) -> Iterator[None]:
        """Around a workflow execution (patch 12): the turn it took, if any, passes on when
        it ends. Only a running execution takes a turn: a holder that had ended would hold
        every decision and the status feed up to their bounds, for good."""
        with self._foreground:
            self._executions.add(execution)
        try:
            yield
        finally:
            with self._foreground:
                self._executions.discard(execution)
                self._turns.discard(execution)
                if self._turn_holder == execution:
                    self._turn_holder = None
                    self._turn_free.notify()
                    self._foreground.notify_all()

    def _let_requests_through(self, after_steps: bool = False) -> None:
        """Background work waits until no API request is being served and none was answered
        in the last BACKGROUND_QUIET seconds (the rest of a burst may be on its way). With
        `after_steps` (the status feed, which EventBridge invokes) it also waits until no
        workflow step or SNS-started function is running: the approval path first, the
        feed's eventual updates after. Either way it waits at most BACKGROUND_YIELD seconds
        (no starvation)."""
        if getattr(self._thread, "serving", False) or getattr(self._thread, "passed", False):
            return
        deadline = time.monotonic() + BACKGROUND_YIELD
        with self._foreground:
            while (now := time.monotonic()) < deadline:
                if self._serving or (after_steps and self._approval_work()):
                    self._foreground.wait(deadline - now)
                    continue
                quiet_left = self._last_answered + BACKGROUND_QUIET - now
                if quiet_left <= 0:
                    return
                self._foreground.wait(min(quiet_left, deadline - now))

    def _approval_work(self) -> bool:
        """A workflow step or an SNS-started function running, or a decision under way
        (call with the gate's lock held)."""
        return bool(self._steps_running or self._turn_holder is not None or self._turn_queue)

    def invoke(self, function_name: str, event: Any) -> Any:
        """Call a function's real handler, as Lambda would (patch 1 routes here)."""
        if function_name in self._check_functions:
            # Part of the work of whoever invokes it (a gate function that took its turn),
            # so it does not wait at the background gate again.
            return self._run_function(function_name, event)
        event_driven = function_name in self._event_driven
        self._let_requests_through(after_steps=event_driven)
        # A workflow step or an SNS-started function, not one a request runs on its thread.
        step = not event_driven and not getattr(self._thread, "serving", False)
        if not step:
            return self._run_function(function_name, event)
        with self._foreground:
            self._steps_running += 1
        try:
            return self._run_function(function_name, event)
        finally:
            with self._foreground:
                self._steps_running -= 1
                self._foreground.notify_all()

    def _run_function(self, function_name: str, event: Any) -> Any:
        """One invocation: its Lambda fault if one fires (``error``: raised before the
        handler runs; ``timeout``: the handler runs with ``delay`` seconds as its timeout,
        then the invocation fails as Lambda fails a function past its timeout), its
        duration recorded (``invocations``), and the gate's AWS calls made meanwhile open
        to the DynamoDB and Step Functions faults (patch 23)."""
        spec = self._functions[function_name]
        fault = self.faults.choose("lambda", "Invoke", {"function": function_name, "event": event})
        timeout_s = float(fault.option or spec.timeout) if fault else float(spec.timeout)
        context = LambdaContext(
            function_name=function_name,
            invoked_function_arn=self._arns[function_name],
            memory_limit_in_mb=spec.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            timeout_ms=int(timeout_s * 1000),
        )
        started_at = datetime.now(UTC)
        try:
            if fault is not None and fault.kind == "error":
                raise InjectedFunctionError(f"{function_name} raised (injected fault)")
            with patches.gate_calls(function_name):
                result = self._handlers[function_name](event, context)
            if fault is not None and fault.kind == "timeout":
                left = context.get_remaining_time_in_millis() / 1000
                if left > 0:  # it hangs until Lambda stops it
                    time.sleep(left)
                raise FunctionTimedOut(timeout_s)
            return result
        finally:
            self._record_invocation(function_name, context, started_at, fault)

    def _record_invocation(
        self,
        function_name: str,
        context: LambdaContext,
        started_at: datetime,
        fault: Any = None,
    ) -> None:
        duration_ms = (time.monotonic() - context.started) * 1000
        with self._deliveries_lock:
            self._invocations.append(
                {
                    "function": function_name,
                    "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "duration_ms": round(duration_ms, 3),
                    "memory_mb": context.memory_limit_in_mb,
                    "fault": fault.kind if fault is not None else None,
                }
            )

    def invocations(self) -> list[dict[str, Any]]:
        """Every function invocation so far, oldest first: ``{function, started_at,
        duration_ms, memory_mb, fault}`` (``fault``: the Lambda fault it met, if any; the
        duration measured in this one shared process, for
        estimates such as the bench's Lambda GB-seconds, not for billing)."""
        with self._deliveries_lock:
            return list(self._invocations)

    def _record_delivery(self, source: str, target: str, event: Any) -> None:
        """An SNS message or EventBridge event about to reach a function (patches 1b, 6)."""
        with self._deliveries_lock:  # the time taken in the lock: oldest first, by `at` too
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            self._deliveries.append({"source": source, "target": target, "event": event, "at": at})

    def deliveries(self) -> list[dict[str, Any]]:
        """Every SNS message and EventBridge event delivered to a function, oldest first:
        ``{source: sns | eventbridge, target: logical id, event, at}``."""
        with self._deliveries_lock:
            return copy.deepcopy(self._deliveries)

    def _publish_approval(self, message: str) -> None:
        self.client("sns").publish(TopicArn=self.topic_arn, Message=message)

    def _notify_elsewhere(self, topic_arn: str, message: str) -> None:
        """A run's ``notification_arn``: its approval notifies that topic, not the gate's.
        A topic moto does not have gets nothing (nobody would read it either way)."""
        with contextlib.suppress(ClientError):
            self.client("sns").publish(TopicArn=topic_arn, Message=message)

    def _emit_pipeline_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """CodePipeline state-change events on the default bus, in order, as CodePipeline
        sends them. Each entry is its own event to the rules and the status feed; they go
        ten to a PutEvents call (its limit), which costs the sandbox a fifth of one call
        per event (~0.2 against ~1 ms) and changes nothing the feed sees."""
        entries = [
            {
                "Source": "aws.codepipeline",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "Resources": [f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{detail['pipeline']}"],
            }
            for detail_type, detail in events
        ]
        for start in range(0, len(entries), PUT_EVENTS_LIMIT):
            self.client("events").put_events(Entries=entries[start : start + PUT_EVENTS_LIMIT])

    # --- health checks (DESIGN §8.3, §8.6): alarms and check functions ---------------------

    def set_up_checks(self, policy: Any) -> None:
        """Every alarm and check function the policy's rules name exists (``checks``)."""
        from approval_gate.policy import policy_checks

        alarms, functions = policy_checks(policy)
        self.ensure_alarms(alarms)
        self.ensure_check_functions(functions)

    def ensure_alarms(self, entries: Iterable[str]) -> list[str]:
        """Create in moto's CloudWatch, state OK, the alarm of each policy entry (a name, or a
        prefix ``name-*``: see ``sandbox_alarm_name``) the sandbox has not created yet;
        those it has keep their state. Answers the entries' alarm names, sorted."""
        cloudwatch = self.client("cloudwatch")
        names = sorted({sandbox_alarm_name(entry) for entry in entries})
        for name in names:
            if name in self._alarms:
                continue
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                AlarmDescription="The sandbox's stand-in for an alarm the policy names",
                Namespace="ApprovalGate/Sandbox",
                MetricName="Health",
                Dimensions=[{"Name": "Alarm", "Value": name}],
                Statistic="Maximum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
            # moto creates alarms OK already (AWS: INSUFFICIENT_DATA); say so, whatever it does.
            cloudwatch.set_alarm_state(
                AlarmName=name, StateValue="OK", StateReason="Sandbox: the policy names it"
            )
            self._alarms.add(name)
        return names

    def set_alarm(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sandbox/alarms/{name}``: ``{state, reason?}`` sets the alarm; when its
        state changes, CloudWatch's "CloudWatch Alarm State Change" event goes to the default
        bus (as CloudWatch, none when the state stays). KeyError: no such alarm in moto's
        CloudWatch; ValueError: a body CloudWatch would refuse."""
        unknown = sorted(set(body) - {"state", "reason"})
        if unknown:
            raise ValueError(f"unknown field: {unknown[0]}")
        state = body.get("state")
        if state not in ALARM_STATES:
            raise ValueError(f"state must be one of {', '.join(ALARM_STATES)}")
        reason = body.get("reason", f"Sandbox: set to {state}")
        if not isinstance(reason, str) or not reason or len(reason) > 1023:
            raise ValueError("reason must be a text of 1 to 1023 characters")
        cloudwatch = self.client("cloudwatch")
        with self._alarm_changes:
            found = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
            if not found:
                raise KeyError(name)
            before = found[0]
            cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
            after = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
            changed = before["StateValue"] != state
            if changed:
                entry = alarm_state_change_entry(before, after)
                self.client("events").put_events(Entries=[entry])
        return {
            "alarm": name,
            "state": state,
            "previous_state": before["StateValue"],
            "emitted": changed,
        }

    def ensure_check_functions(
        self, arns: Iterable[str], timeout: int = CHECK_FUNCTION_TIMEOUT
    ) -> list[str]:
        """Create in moto's Lambda, with a stand-in handler (``CheckFunction``), each check
        function the policy names by ARN and the sandbox has not created yet. An ARN outside
        the sandbox's account and region, or naming one of the gate's own functions, is
        logged and left out (the gate then finds no such function). Answers their names."""
        lambda_client = self.client("lambda")
        names = []
        for arn in sorted(set(arns)):
            match = _CHECK_FUNCTION_ARN.match(arn)
            if match is None or (match["region"], match["account"]) != (REGION, ACCOUNT):
                _LOG.warning("check function %s is not in %s/%s: not created", arn, ACCOUNT, REGION)
                continue
            name = match["name"]
            names.append(name)
            if name in self._check_functions:
                continue
            if name in self._functions:
                _LOG.warning("check function %s is one of the gate's functions: left as is", arn)
                continue
            created = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=self._role,
                Handler="app.handler",
                Code={"ZipFile": _placeholder_zip()},
                Timeout=timeout,
            )["FunctionArn"]
            self._functions[name] = FunctionSpec(
                logical_id=name,
                code_dir=ROOT,
                handler="app.handler",
                environment={},
                events={},
                timeout=timeout,
                layers=[],
            )
            self._arns[name] = created
            check = CheckFunction(name)
            self._handlers[name] = check
            self._check_functions[name] = check
        return names

    def check_function(self, name: str) -> CheckFunction:
        """The stand-in of the check function ``name``; KeyError if the sandbox has none."""
        return self._check_functions[name]

    # --- views for the HTTP front ---------------------------------------------------------

    def aws(self) -> dict[str, Any]:
        """``GET /_sandbox/aws``: where tools outside the process find the sandbox's AWS
        APIs (``endpoint_url``, moto's server on the same backends), what the template
        created (``resources``: logical id -> table name, topic or state machine ARN,
        function or EventBridge rule name), the template parameters as resolved
        (``SlackSecretArn`` is the secret the sandbox created), the fake Slack's Web API
        base URL, and the policy document in force (its text, YAML or JSON, which
        ``approval_gate.policy.load_policy`` loads)."""
        return {
            "endpoint_url": self.aws_endpoint.url,
            "region": REGION,
            "resources": dict(sorted(self._physical.items())),
            "parameters": dict(sorted(self._parameters.items())),
            "slack_api_url": f"{self.base_url}/slack/api/",
            "policy": self.policy_file.read_text(encoding="utf-8"),
        }

    def approvals(self) -> list[dict[str, Any]]:
        """The decision record of every approval, oldest first."""
        from approval_gate.store import ApprovalStore

        store = ApprovalStore(self.table_name, self.client("dynamodb"))
        records = [approval.decision_record() for approval in store.all()]
        return sorted(records, key=lambda record: record["requested_at"])

    def fallback_notifications(self) -> list[dict[str, Any]]:
        """What the gate sent to the FallbackTopic (Slack could not be asked), oldest first."""
        from moto.sns.models import sns_backends

        topic = sns_backends[ACCOUNT][REGION].topics.get(self._arns.get("FallbackTopic", ""))
        sent = topic.sent_notifications if topic is not None else []
        return [{"subject": subject, "message": message} for _, message, subject, *_ in sent]

    def executions(self) -> list[dict[str, Any]]:
        """Every execution of the approval workflow, newest first (all pages)."""
        pages = self.client("stepfunctions").get_paginator("list_executions")
        return [
            execution
            for page in pages.paginate(stateMachineArn=self.state_machine_arn)
            for execution in page["executions"]
        ]

    def wait_for_events(self, timeout: float = 30.0) -> bool:
        """True once every EventBridge event put so far has reached its function (bounded)."""
        return patches.wait_for_events(timeout)

    def wait_for_executions(self, timeout: float = 30.0) -> bool:
        """True once no execution is running and every EventBridge event put so far has
        been delivered (bounded wait, for clean shutdowns)."""
        deadline = time.monotonic() + timeout
        if not self.wait_for_events(timeout):
            return False
        # Only the running ones, one at most: listing them all each round costs more (moto
        # serialises every execution) the more have run.
        sfn = self.client("stepfunctions")
        while time.monotonic() < deadline:
            running = sfn.list_executions(
                stateMachineArn=self.state_machine_arn, statusFilter="RUNNING", maxResults=1
            )["executions"]
            if not running:
                return True
            time.sleep(0.05)
        return False


def _placeholder_zip() -> bytes:
    """moto wants code to create a function; the real handler runs in-process instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def sandbox_alarm_name(entry: str) -> str:
    """The alarm the sandbox creates for a policy's ``checks.alarms`` entry: the name
    itself, or for a prefix (a trailing ``*``) one alarm under it, the prefix with
    ``-sandbox`` appended (``prod-api-*``: ``prod-api-sandbox``)."""
    if not entry.endswith("*"):
        return entry
    prefix = entry[:-1]
    return f"{prefix}sandbox" if prefix.endswith("-") else f"{prefix}-sandbox"


def _alarm_time(moment: datetime) -> str:
    """CloudWatch's event timestamps: ``2026-12-06T01:12:18.513+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _alarm_state(alarm: dict[str, Any]) -> dict[str, Any]:
    state = {
        "value": alarm["StateValue"],
        "reason": alarm.get("StateReason", ""),
        "timestamp": _alarm_time(alarm["StateUpdatedTimestamp"]),
    }
    if alarm.get("StateReasonData"):
        state["reasonData"] = alarm["StateReasonData"]
    return state


def alarm_state_change_entry(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The PutEvents entry of CloudWatch's "CloudWatch Alarm State Change" event for a
    metric alarm (DescribeAlarms' descriptions before and after the change), its detail
    shaped as CloudWatch's user guide shows it ("Alarm events and EventBridge")."""
    name = after["AlarmName"]
    metric = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, after["AlarmArn"])),
        "metricStat": {
            "metric": {
                "dimensions": {d["Name"]: d["Value"] for d in after.get("Dimensions", [])},
                "name": after.get("MetricName", ""),
                "namespace": after.get("Namespace", ""),
            },
            "period": after.get("Period", 60),
            "stat": after.get("Statistic", "Maximum"),
        },
        "returnData": True,
    }
    detail = {
        "alarmName": name,
        "state": _alarm_state(after),
        "previousState": _alarm_state(before),
        "configuration": {"description": after.get("AlarmDescription", ""), "metrics": [metric]},
    }
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Detail": json.dumps(detail),
        "Resources": [after["AlarmArn"]],
    }


class CheckFunction:
    """A check function's stand-in (DESIGN §8.3), the handler of a real function in moto's
    Lambda: it answers what it was told (``configure``; ``{passed: true, summary: "ok"}``
    until then) and keeps every payload it received, oldest first."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._answer: dict[str, Any] = dict(DEFAULT_CHECK_ANSWER)
        self._calls: list[Any] = []

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """What it does from now on: ``{error: "..."}`` raises that error; ``{timeout:
        true}`` runs past its timeout; any other object is its answer, verbatim (so a
        malformed answer such as ``{"passed": "yes"}`` can be tried). ValueError for an
        ``error`` or ``timeout`` it cannot take."""
        if "error" in body and (set(body) != {"error"} or not isinstance(body["error"], str)):
            raise ValueError("error must be a text, alone")
        if "timeout" in body and (set(body) != {"timeout"} or body["timeout"] is not True):
            raise ValueError("timeout must be true, alone")
        with self._lock:
            self._answer = copy.deepcopy(body)
        return self.snapshot()

    def reset(self) -> None:
        with self._lock:
            self._answer = dict(DEFAULT_CHECK_ANSWER)
            self._calls.clear()

    def snapshot(self) -> dict[str, Any]:
        """``{answer, calls}``: what it does now, and the payloads it received."""
        with self._lock:
            return {"answer": copy.deepcopy(self._answer), "calls": copy.deepcopy(self._calls)}

    def __call__(self, event: Any, context: LambdaContext) -> Any:
        with self._lock:
            self._calls.append(copy.deepcopy(event))
            answer = copy.deepcopy(self._answer)
        if "error" in answer:
            raise CheckFunctionError(answer["error"])
        if answer.get("timeout") is True and set(answer) == {"timeout"}:
            time.sleep(context.get_remaining_time_in_millis() / 1000)
            raise FunctionTimedOut(context.timeout_ms / 1000)
        return answer


class CheckFunctionError(RuntimeError):
    """What a check function told to fail (``{error: "..."}``) raises."""
