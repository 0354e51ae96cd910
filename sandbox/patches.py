# mypy: disable-error-code="method-assign,attr-defined,typeddict-item"
"""Small, named corrections to moto 5.2.5, so the real state machine runs in-process.

Each patch says which moto behaviour it corrects. ``tests/sandbox/test_patches.py`` holds a
test per patch that fails if moto changes underneath it: moto is pinned exactly
(``requirements/dev.txt``) because these reach into its internals.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import jsonata
from botocore.exceptions import BotoCoreError
from moto.awslambda import models as lambda_models
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk_task,
)
from moto.stepfunctions.parser.asl.eval import states as sfn_states
from moto.stepfunctions.parser.asl.eval import variable_store as sfn_variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

#: Called as ``invoke(function_name, event) -> result``; raises to report a function error.
LambdaInvoker = Callable[[str, Any], Any]

_applied = False
_apply_lock = threading.Lock()
_invoker: LambdaInvoker | None = None
#: Called as ``record(source, function_name, event)`` with each SNS message (patch 1b) and
#: EventBridge event (patch 6) just before it reaches the function, as the function gets it.
DeliveryRecorder = Callable[[str, str, Any], None]
_recorder: DeliveryRecorder | None = None
_background_gate: Callable[..., None] | None = None
_execution_scope: Callable[[str], AbstractContextManager[None]] | None = None


def set_background_gate(
    gate: Callable[..., None] | None,
    execution_scope: Callable[[str], AbstractContextManager[None]] | None = None,
) -> None:
    """``gate()`` is called before each aws-sdk task (patch 3) and by each task its token
    resumes (patch 12), so the sandbox can hold background work while it answers an API
    request; ``gate(decision=True, execution=arn)`` marks an execution carrying an
    approver's decision, which takes its turn with the others until it ends
    (``execution_scope(arn)`` is entered around each execution). See
    Sandbox.background_gate."""
    global _background_gate, _execution_scope
    _background_gate = gate
    _execution_scope = execution_scope


def set_lambda_invoker(invoker: LambdaInvoker | None) -> None:
    """Route every moto Lambda invocation to ``invoker`` (patch 1)."""
    global _invoker
    _invoker = invoker


def set_delivery_recorder(recorder: DeliveryRecorder | None) -> None:
    """Tell ``recorder`` of every SNS message and EventBridge event delivered to a function
    (``GET /_sandbox/events``); ``None`` stops."""
    global _recorder
    _recorder = recorder


def _delivering(source: str, function_name: str, payload: str) -> None:
    """Record a delivery: the event parsed from the very JSON the function is invoked with."""
    recorder = _recorder
    if recorder is not None:
        recorder(source, function_name, json.loads(payload))


def apply() -> None:
    """Apply every patch once per process; later calls do nothing."""
    global _applied
    with _apply_lock:
        if _applied:
            return
        _patch_in_process_lambda()
        _patch_sns_envelope()
        _patch_heartbeat_error_name()
        _patch_aws_sdk_integrations()
        _patch_jsonata()
        _patch_dynamodb_atomicity()
        _patch_dynamodb_plain_json()
        _patch_asl_parser_lock()
        _patch_task_callbacks_skip_unstarted()
        _patch_parse_once_per_definition()
        _patch_resumed_tasks_wait_at_the_gate()
        _patch_method_names_once_per_class()
        _patch_update_expressions_parsed_once()
        _patch_early_callback_reaches_the_heartbeat_wait()
        _patch_dynamodb_items_untracked()
        _patch_unsigned_while_a_sandbox_runs()
        _patch_task_clients_reused()
        _patch_update_validation_types_cached()
        _patch_condition_parsed_once_per_request()
        _patch_start_execution_once_per_name()
        _patch_codepipeline()
        _patch_eventbridge_to_lambda()
        _patch_log_keys_per_container()
        _patch_aws_faults()
        _patch_describe_alarms_pages()
        _patch_index_pages_sized_by_projection()
        _applied = True


# --- Patch 1: in-process Lambda --------------------------------------------------------
# moto runs Lambda code in a Docker container (LambdaFunction._invoke_lambda). No Docker
# engine runs here, so call the real handler in this process instead. The return shape is
# moto's: (payload as JSON text, errored, log text). moto then marks an error `Handled`
# (X-Amz-Function-Error); Lambda's Python runtime reports an exception the handler raised,
# and a timeout, as `Unhandled`, and so does the sandbox.


def _invoke_lambda_in_process(self: Any, event: Any = None) -> tuple[str, bool, str]:
    if _invoker is None:
        raise RuntimeError("the sandbox has no Lambda invoker; call set_lambda_invoker")
    if isinstance(event, str):
        event = json.loads(event) if event else {}
    try:
        result = _invoker(self.function_name, event)
    except Exception as exc:  # reported to the caller as a function error, as Lambda does
        payload: dict[str, Any] = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        if getattr(exc, "seconds", None) is not None:  # sandbox.faults.FunctionTimedOut
            # A function past its timeout: Lambda's payload has a message and no type.
            payload = {"errorMessage": f"{uuid.uuid4()} Error: {exc}"}
        return json.dumps(payload), True, ""
    return json.dumps(result), False, ""


def _patch_in_process_lambda() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as service_lambda,
    )

    lambda_models.LambdaFunction._invoke_lambda = _invoke_lambda_in_process
    moto_invoke = lambda_models.LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> Any:
        answer = moto_invoke(self, body, request_headers, response_headers)
        if "x-amz-function-error" in response_headers:
            response_headers["x-amz-function-error"] = "Unhandled"
        return answer

    lambda_models.LambdaFunction.invoke = invoke
    # A function error whose payload names no errorType (a timeout, running out of memory)
    # is `Lambda.Unknown` to Step Functions (AWS documents it: "Handle Lambda service
    # exceptions"); moto names it `Exception`.
    task = service_lambda.StateTaskServiceLambda
    original_from_error = task._from_error

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        failure = original_from_error(self, env, ex)
        if isinstance(ex, lambda_eval_utils.LambdaFunctionErrorException):
            try:
                typed = "errorType" in json.loads(ex.payload)
            except (TypeError, ValueError):
                typed = False
            if not typed:
                failure.error_name = CustomErrorName("Lambda.Unknown")  # type: ignore[misc]
                details: Any = failure.event_details
                details["taskFailedEventDetails"]["error"] = "Lambda.Unknown"
        return failure

    task._from_error = _from_error


# --- Patch 1b: SNS → Lambda envelope ----------------------------------------------------
# moto hands a subscribed function an envelope with fixed placeholders (Timestamp 1970,
# one MessageId for every message, TopicArn "arn:aws:sns:EXAMPLE"). Build the envelope
# AWS documents, with the real topic, a fresh id and the time of publication.


def sns_event(topic_arn: str, message: str, subject: str | None = None) -> dict[str, Any]:
    """The SNS → Lambda envelope AWS documents, for one message published now."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "EventSource": "aws:sns",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": now,
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def _send_sns_message(
    self: Any,
    function_name: str,
    message: str,
    subject: str | None = None,
    qualifier: str | None = None,
) -> None:
    func = self._lambdas.get_function_by_name_or_arn_with_qualifier(function_name, qualifier)
    topic_arn = _publishing.topic.arn if _publishing.topic is not None else ""
    payload = json.dumps(sns_event(topic_arn, message, subject))
    _delivering("sns", func.function_name, payload)
    _invoke_async(func, payload)  # patch 24: retried as Lambda retries


class _Publishing(threading.local):
    topic: Any = None


_publishing = _Publishing()


def _patch_sns_envelope() -> None:
    from moto.sns import models as sns_models

    original_publish = sns_models.Topic.publish

    def publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        _publishing.topic = self
        try:
            return original_publish(self, *args, **kwargs)
        finally:
            _publishing.topic = None

    sns_models.Topic.publish = publish
    lambda_models.LambdaBackend.send_sns_message = _send_sns_message


# --- Patch 2: heartbeat error name -------------------------------------------------------
# moto reports a missed heartbeat as `States.Timeout`; AWS reports `States.HeartbeatTimeout`
# (and a catcher or retrier on `States.Timeout` also matches it). Without this, the
# reminder loop's `States.HeartbeatTimeout` catcher never fires locally.


def _patch_heartbeat_error_name() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name import (
        error_equals_decl,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import (
        StateTask,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    heartbeat = StatesErrorName(typ=StatesErrorNameType.StatesHeartbeatTimeout)
    timeout = StatesErrorName(typ=StatesErrorNameType.StatesTimeout)
    original_from_error = StateTask._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, HeartbeatTimeoutError):
            return FailureEvent(
                env=env,
                error_name=heartbeat,
                event_type=HistoryEventType.TaskTimedOut,
                event_details=EventDetails(
                    taskTimedOutEventDetails=TaskTimedOutEventDetails(
                        resourceType=self._get_sfn_resource_type(),
                        resource=self._get_sfn_resource(),
                        error=heartbeat.error_name,
                    )
                ),
            )
        return original_from_error(self, env, ex)

    decl = error_equals_decl.ErrorEqualsDecl
    original_eval = decl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if error_name == heartbeat and timeout in self.error_names:
            env.stack.pop()
            env.stack.append(True)
            return
        original_eval(self, env)

    StateTask._from_error = from_error
    decl._eval_body = eval_body


# --- Patch 3: aws-sdk service integrations ----------------------------------------------
# moto's `aws-sdk:<service>:<action>` tasks (a) skip the request normalisation AWS applies,
# so PascalCase arguments never get checked against the API's shape, (b) name errors with
# the lower-case service (`codepipeline.X`) where AWS uses the service id
# (`CodePipeline.InvalidApprovalTokenException`), and (c) hand back boto's datetimes,
# which the interpreter cannot serialise. We normalise the request against the botocore
# model, name errors by the service id, and turn datetimes into ISO text.

_service_models: dict[str, Any] = {}
_service_models_lock = threading.Lock()


def _service_model(service: str) -> Any:
    """botocore's model of a service, loaded once (a botocore session costs ~40 ms)."""
    with _service_models_lock:
        if service not in _service_models:
            _service_models[service] = botocore.session.get_session().get_service_model(service)
        return _service_models[service]


def _service_id(service: str) -> str:
    return str(_service_model(service).service_id).replace(" ", "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


#: The aws-sdk task that hands a decision to CodePipeline (Sandbox.background_gate).
_REPORTS_DECISION = ("codepipeline", "putApprovalResult")


def _arn(env: Any) -> str:
    """The ARN of the execution a state is evaluated in (a task with a timeout runs on a
    thread of its own, so the thread does not tell)."""
    return str(env.states.context_object.context_object_data["Execution"]["Id"])


def _patch_aws_sdk_integrations() -> None:
    cls = aws_sdk_task.StateTaskServiceAwsSdk

    def normalise_parameters(
        self: Any,
        parameters: dict,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        service = self._get_boto_service_name(boto_service_name)
        action = service_action_name or self.resource.api_action
        model = _service_model(service)
        operation = action[0].upper() + action[1:]
        shape = model.operation_model(operation).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    def normalise_service_error_name(service_name: str) -> str:
        return _service_id(service_name)

    original_eval = cls._eval_service_task

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        if _background_gate is not None:
            # Slack's requests first, then decisions (Sandbox.background_gate).
            resource = (self.resource.api_name, self.resource.api_action)
            _background_gate(decision=resource == _REPORTS_DECISION, execution=_arn(env))
        original_eval(self, env, *args, **kwargs)
        env.stack.append(_jsonable(env.stack.pop()))

    original_from_error = cls._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        # The call failed on the client side (a read timeout, a dropped connection) without
        # an answer from the service: moto names that States.Runtime, which no Retry may
        # match; Step Functions names such an SDK failure `<Service>.SdkClientException`
        # (as in its Lambda integration's Lambda.SdkClientException), which States.ALL does.
        if isinstance(ex, BotoCoreError):
            service = _service_id(self._get_boto_service_name())
            error = f"{service}.SdkClientException"
            return self._get_task_failure_event(env=env, error=error, cause=str(ex))
        return original_from_error(self, env, ex)

    cls._normalise_parameters = normalise_parameters
    cls._normalise_service_error_name = staticmethod(normalise_service_error_name)
    cls._eval_service_task = eval_service_task
    cls._from_error = from_error


# --- Patch 4: CodePipeline and its CodeCommit source --------------------------------------
# moto implements neither GetPipelineState, PutApprovalResult nor ListActionExecutions, and
# its GetPipelineExecution answers "Succeeded" with no artifact revisions; its ListPipelines
# and GetPipeline know only pipelines created with CreatePipeline. Route these
# operations to the sandbox's fake pipeline (set_codepipeline), which answers them as
# CodePipeline does and records every call. moto's CodeCommit has no GetCommit (the only
# place a commit's author is found): route it too (set_codecommit), to the fake pipeline's
# source repositories.

#: Called as ``handle(operation, params) -> response``; raises an error with ``code``.
CodePipelineHandler = Callable[[str, dict], dict]
#: The same shape, for CodeCommit operations.
CodeCommitHandler = Callable[[str, dict], dict]
_codepipeline: CodePipelineHandler | None = None
_codecommit: CodeCommitHandler | None = None
_CODECOMMIT_OPERATIONS = ("GetCommit",)


def set_codepipeline(handler: CodePipelineHandler | None) -> None:
    global _codepipeline
    _codepipeline = handler


def set_codecommit(handler: CodeCommitHandler | None) -> None:
    """Route CodeCommit's GetCommit to ``handler`` (patch 4); ``None`` unsets it."""
    global _codecommit
    _codecommit = handler


def _json_operation(
    name: str, handler: Callable[[], Callable[[str, dict], dict] | None], missing: str
) -> Callable[[Any], str]:
    """A moto response method answering ``name`` with ``handler()``: JSON body in, JSON out,
    an error's ``code`` out as the AWS error code (moto's ``JsonRESTError``)."""
    from moto.core.exceptions import JsonRESTError

    def respond(self: Any) -> str:
        handle = handler()
        if handle is None:
            raise JsonRESTError("ValidationException", missing)
        params = json.loads(self.body or "{}")
        try:
            return json.dumps(handle(name, params))
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code is None:
                raise
            raise JsonRESTError(code, str(exc)) from None

    return respond


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _patch_codepipeline() -> None:
    from moto.codecommit.responses import CodeCommitResponse
    from moto.codepipeline.responses import CodePipelineResponse

    from sandbox.services import CODEPIPELINE_OPERATIONS

    for name in sorted(CODEPIPELINE_OPERATIONS):
        operation = _json_operation(name, lambda: _codepipeline, "the sandbox has no pipelines")
        setattr(CodePipelineResponse, _snake(name), operation)
    for name in _CODECOMMIT_OPERATIONS:
        operation = _json_operation(name, lambda: _codecommit, "the sandbox has no repositories")
        setattr(CodeCommitResponse, _snake(name), operation)


# --- Patch 5: JSONata -------------------------------------------------------------------
# moto leaves its JSONata evaluator as `None` (LocalStack runs a JVM for it), so any
# JSONata state fails. Plug in jsonata-python. moto also writes string variables into the
# expression as `"value"` without escaping, so a quote or newline in a value (a reason, a
# commit message) breaks the expression. And writing every value ($states with the whole
# input, each variable) into the expression as a literal makes the parser re-read that
# JSON as JSONata on every evaluation, most of a state's time here. So each declaration
# binds the variable to a placeholder, `$name:=$__sb_<hex of name>;`, and the values go to
# the evaluator as bindings (kept per thread: moto composes and evaluates an expression on
# one thread, one expression at a time).

_jsonata_bindings = threading.local()


def _bindings() -> dict[str, Any]:
    if not hasattr(_jsonata_bindings, "values"):
        _jsonata_bindings.values = {}
    values: dict[str, Any] = _jsonata_bindings.values
    return values


def _eval_jsonata(expression: str) -> Any:
    try:
        return jsonata.Jsonata(expression).evaluate(None, _bindings())
    except Exception as exc:
        raise moto_jsonata.JSONataException("UNKNOWN", str(exc)) from exc


def _encode_variable_declarations(bindings: dict[str, Any]) -> str:
    values = _bindings()
    parts = []
    for name, value in bindings.items():
        placeholder = "__sb_" + name.encode().hex()
        values[placeholder] = value
        parts.append(f"{name}:=${placeholder};")
    return "".join(parts)


def _patch_jsonata() -> None:
    moto_jsonata._eval_jsonata = _eval_jsonata
    for module in (moto_jsonata, sfn_states, sfn_variable_store):
        module.encode_jsonata_variable_declarations = _encode_variable_declarations


# --- Patch 6: EventBridge → Lambda ---------------------------------------------------------
# moto's EventBridge rules deliver to logs, archives, SQS and event buses, and raise
# NotImplementedError for a Lambda target. Deliver a matching event to the function as
# EventBridge does: asynchronously (PutEvents answers at once), one event after another on
# a delivery thread, and leave every other target to moto. A function error is logged and
# the event dropped (EventBridge would retry, then dead-letter). `wait_for_events()` waits
# until every event put so far has been delivered; the sandbox does so before it stops.
# moto's event carries `time` as epoch seconds and an `ingestion-time` of its own; the
# function gets the event AWS documents (CodePipeline's user guide, "Monitoring
# CodePipeline events"): `time` in ISO 8601 to the second ("2026-12-06T00:53:17Z"), and no
# `ingestion-time`.

#: The members of an event EventBridge delivers to a target, in the documented order.
_EVENT_MEMBERS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)


def delivered_event(event: dict[str, Any]) -> dict[str, Any]:
    """moto's event as EventBridge hands it to a target: ISO `time`, no `ingestion-time`."""
    delivered = {key: event[key] for key in _EVENT_MEMBERS if key in event}
    moment = event.get("time")
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        delivered["time"] = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return delivered


_targets_lock = threading.Lock()
_LOG = logging.getLogger("approval_gate.sandbox.events")


class _EventDelivery:
    """A FIFO of (function, event) delivered by one daemon thread."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Any, str]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, function: Any, event: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._deliver, name="sandbox-eventbridge", daemon=True
                )
                self._thread.start()
        self._queue.put((function, event))

    def _deliver(self) -> None:
        while True:
            function, event = self._queue.get()
            try:
                _delivering("eventbridge", function.function_name, event)
                _invoke_async(function, event)  # patch 24: retried as Lambda retries
            except Exception:  # the sandbox's own fault, not a function error
                _LOG.exception("an EventBridge target could not be invoked; the event is dropped")
            finally:
                self._queue.task_done()

    def wait(self, timeout: float) -> bool:
        """True once every event put so far has been delivered (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


_events = _EventDelivery()


def wait_for_events(timeout: float = 30.0) -> bool:
    """Wait until the EventBridge events put so far have reached their functions, and no
    failed asynchronous invocation is still due a retry (patch 24)."""
    deadline = time.monotonic() + timeout
    return _events.wait(timeout) and wait_for_retries(max(0.0, deadline - time.monotonic()))


def _patch_eventbridge_to_lambda() -> None:
    from moto.awslambda.utils import get_backend
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        to_lambda = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        others = [t for t in self.targets if t not in to_lambda]
        if to_lambda and self.event_pattern.matches_event(original_event):
            for target in to_lambda:
                arn = parse_arn(target["Arn"])
                function = get_backend(arn.account, arn.region).get_function(target["Arn"])
                _events.put(function, json.dumps(delivered_event(original_event)))
        if others:
            with _targets_lock:
                saved, self.targets = self.targets, others
                try:
                    original(self, original_event, transform_input)
                finally:
                    self.targets = saved

    Rule.send_to_targets = send_to_targets


# --- Patch 7: DynamoDB atomicity --------------------------------------------------------
# moto's conditional writes are not atomic across threads: two racing conditional
# UpdateItems can both succeed. Serialise every DynamoDB request (operation and answer)
# with one lock, so a race test proves what it claims.

_dynamodb_lock = threading.RLock()
_DYNAMODB_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
)


def _patch_dynamodb_atomicity() -> None:
    from moto.dynamodb.responses import DynamoHandler

    # The answer is built from the live item after the backend call returns: hold the lock
    # over the whole request, or a concurrent write changes the item mid-serialisation
    # ("dictionary changed size during iteration").
    handle = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _dynamodb_lock:
            return handle(self)

    DynamoHandler.call_action = call_action
    for name in _DYNAMODB_OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _dynamodb_lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


# --- Patch 8: DynamoDB answers without the shape walk --------------------------------------
# moto 5.2.5 serialises every DynamoDB answer by walking the operation's output shape,
# member by member, for each attribute value: ~60% of an item read or write here, and what
# made a click take tens of milliseconds in the sandbox. DynamoDB's wire format is the
# result itself as JSON (moto's DynamoResult already holds plain dicts), so send that. Any
# result that is not plain JSON, and every error, still goes through moto's serialiser.

_DYNAMODB_CONTENT_TYPE = "application/x-amz-json-1.0"
#: moto's own DynamoResult.execute_result (the test compares against it).
moto_dynamodb_execute_result: Any = None


def _patch_dynamodb_plain_json() -> None:
    global moto_dynamodb_execute_result
    from moto.dynamodb.responses import DynamoResult

    original = moto_dynamodb_execute_result = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        if isinstance(result, dict):
            try:
                body = json.dumps(result)
            except (TypeError, ValueError):
                return original(self, context)
            return 200, {"Content-Type": _DYNAMODB_CONTENT_TYPE}, body
        return original(self, context)

    DynamoResult.execute_result = execute_result


# --- Patch 9: one ASL parse at a time ------------------------------------------------------
# moto's ASL preprocessor keeps its query-language scope stack in a class attribute
# (`Preprocessor._query_language_per_scope = []`), shared by every parse. Executions that
# start together parse the definition on their own threads at once, corrupt that stack and
# die with IndexError before their first state (seen with 100 runs started at once).
# Parse under one lock.

_parse_lock = threading.Lock()


def _patch_asl_parser_lock() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.parse

    def parse(definition: str) -> Any:
        with _parse_lock:
            return original(definition)

    AmazonStateLanguageParser.parse = staticmethod(parse)


# --- Patch 10: task callbacks while another execution starts ------------------------------
# moto's SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat look for the token in every
# RUNNING execution through `execution.exec_worker.env`, which stays None until that
# execution's thread has parsed the definition. A callback sent while any other execution
# is starting fails with an internal error (the click's decision is written but never
# delivered). Skip executions that have not started evaluating: they hold no task token yet.

_callbacks = threading.local()


def _patch_task_callbacks_skip_unstarted() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend as Backend

    get_executions = Backend._get_executions

    def _get_executions(self: Any, *args: Any, **kwargs: Any) -> Any:
        executions = get_executions(self, *args, **kwargs)
        if getattr(_callbacks, "active", False):
            executions = [
                e for e in executions if e.exec_worker is not None and e.exec_worker.env is not None
            ]
        return executions

    Backend._get_executions = _get_executions
    for name in ("send_task_success", "send_task_failure", "send_task_heartbeat"):
        method = getattr(Backend, name)

        def callback(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            _callbacks.active = True
            try:
                return __method(self, *args, **kwargs)
            finally:
                _callbacks.active = False

        setattr(Backend, name, callback)


# --- Patch 11: one parse per definition -----------------------------------------------------
# moto parses the state machine's definition again for every execution
# (`ExecutionWorker._get_evaluation_entrypoint`): ANTLR's Python runtime takes ~35 ms for
# approval.asl.json, the largest single cost of an approval in the sandbox. Parse each
# definition once and give every execution its own deep copy of the program (~2 ms), so no
# execution shares a component with another, as with a fresh parse.


@functools.lru_cache(maxsize=64)
def _parsed_program(definition: str) -> Any:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    return AmazonStateLanguageParser.parse(definition)[0]  # under patch 9's lock


_parse_once_lock = threading.Lock()
#: moto's own ExecutionWorker._get_evaluation_entrypoint (the test reads it).
moto_get_evaluation_entrypoint: Any = None


def _patch_parse_once_per_definition() -> None:
    global moto_get_evaluation_entrypoint
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    moto_get_evaluation_entrypoint = ExecutionWorker._get_evaluation_entrypoint

    def _get_evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        # lru_cache does not hold back a second caller while the first computes: executions
        # starting together would each parse. The lock makes them wait for the one parse.
        with _parse_once_lock:
            program = _parsed_program(definition)
        return copy.deepcopy(program)

    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint


# --- Patch 12: a workflow resumed by a click waits at the gate, then takes its turn --------
# Not a moto defect: the sandbox's scheduling (see Sandbox.background_gate). When a click's
# SendTaskSuccess lands, moto wakes the waiting execution on its own thread at once, and its
# next steps (output processing, JSONata, transitions) compete with the click's answer, and
# with every other click being answered, for the one interpreter. On AWS the workflow never
# shares a CPU with the click's Lambda: a resumed task first passes the background gate
# (held at most BACKGROUND_YIELD seconds while requests are in flight). From there the
# execution carries a decision: the rest of it (reporting to CodePipeline, closing the
# request in Slack) takes its turn with the other decisions, until the execution ends.


def _patch_resumed_tasks_wait_at_the_gate() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackOutcomeFailure,
        CallbackOutcomeSuccess,
    )
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    cls = callback_task.StateTaskServiceCallback
    wait_for_token = cls._eval_wait_for_task_token

    def _eval_wait_for_task_token(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = wait_for_token(self, env, *args, **kwargs)
        # Resumed by SendTaskSuccess or SendTaskFailure: a decision. Not a heartbeat or
        # timeout (a reminder, the deadline: their next steps pass the gate as any other).
        resumed = isinstance(outcome, (CallbackOutcomeSuccess, CallbackOutcomeFailure))
        if resumed and _background_gate is not None:
            _background_gate(decision=True, execution=_arn(env))
        return outcome

    cls._eval_wait_for_task_token = _eval_wait_for_task_token

    execution_logic = ExecutionWorker._execution_logic

    def _execution_logic(self: Any) -> None:
        scope = _execution_scope
        if scope is None:
            execution_logic(self)
            return
        with scope(self._evaluation_details.execution_details.arn):
            execution_logic(self)

    ExecutionWorker._execution_logic = _execution_logic


# --- Patch 13: a response class's method names, looked up once -----------------------------
# moto's BaseResponse.call_action lists the response class's methods with inspect.getmembers
# on every request (hundreds of members for DynamoDB), to check the action is implemented.
# A class's methods do not change while the sandbox runs: list them once per class.


def _patch_method_names_once_per_class() -> None:
    from moto.core import responses

    responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        responses.method_names_from_class
    )


# --- Patch 14: DynamoDB update expressions parsed once ---------------------------------------
# moto parses a request's UpdateExpression twice (in the response handler and again in the
# backend), and its validators rebuild their processing map at every node of the parsed
# expression: together about a tenth of a click's time here. The gate sends the same few
# expressions again and again: keep each parsed expression (the validator works on a deep
# copy of it, so the kept one is never changed) and each validator's map.


def _validator_map(traverser: Any) -> dict[type, Any]:
    """A validator's processing map ({node class: its bound processor}), built once."""
    found: dict[type, Any] | None = traverser.__dict__.get("_sandbox_map")
    if found is None:
        found = traverser.__dict__["_sandbox_map"] = traverser._processing_map()
    return found


def _patch_update_expressions_parsed_once() -> None:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    make = UpdateExpressionParser.make.__func__

    @functools.lru_cache(maxsize=512)
    def parsed(expression: str) -> Any:
        return make(UpdateExpressionParser, expression)

    UpdateExpressionParser.make = classmethod(lambda cls, expression: parsed(expression))

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        return tuple(_validator_map(self))

    def process(self: Any, node: Any) -> Any:
        for node_type, processor in _validator_map(self).items():
            if isinstance(node, node_type):
                return processor(node)
        return None

    DepthFirstTraverser.nodes_to_be_processed = nodes_to_be_processed
    DepthFirstTraverser.process = process


# --- Patch 15: a callback that comes before the heartbeat wait is set up -------------------
# A waitForTaskToken task with HeartbeatSeconds registers its token, invokes the function
# (ours posts the request to Slack), and only then sets up the heartbeat endpoint its wait
# listens on (`CallbackEndpoint.setup_heartbeat_endpoint`). A SendTaskSuccess landing in
# between (an approver quick to click, a busy sandbox) stores the outcome but wakes nobody:
# the task then waits out the whole heartbeat interval (hours with a real policy) before it
# looks. On AWS the token works from the moment the task starts. A heartbeat endpoint set up
# after the outcome came is told at once.

#: moto's own CallbackEndpoint.setup_heartbeat_endpoint (the test compares against it).
moto_setup_heartbeat_endpoint: Any = None


def _patch_early_callback_reaches_the_heartbeat_wait() -> None:
    global moto_setup_heartbeat_endpoint
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    setup = moto_setup_heartbeat_endpoint = CallbackEndpoint.setup_heartbeat_endpoint

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = setup(self, heartbeat_seconds)
        # notify() sets the outcome, then reads the endpoint; here the endpoint is set, then
        # the outcome read: whichever runs second sees the other, and a second notify is
        # harmless (it sets an event).
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint


# --- Patch 16: DynamoDB items are not kept after their last use ------------------------------
# Every moto model registers each instance it creates in a class-wide list (BaseModel.__new__
# → `instances_tracked`, for moto server's dashboard), and keeps it until the mock is reset.
# For DynamoDB's Item that includes the deep copies each read and write makes: ~85 Items and
# ~3,800 attribute objects per approval here, never freed. The sandbox's heap grew by ~5,000
# objects per approval, so each garbage collection took longer as a run went on (one full
# pass: ~0.6 s at 100 approvals), stalling whatever was being answered. The sandbox does not
# serve that dashboard: an Item is created as a plain object, so it goes when nothing uses it.


def _patch_dynamodb_items_untracked() -> None:
    from moto.dynamodb.models.dynamo_type import Item

    def untracked(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    Item.__new__ = untracked


# --- Patch 17: requests to the sandbox go unsigned -----------------------------------------
# Not a moto defect: botocore signs every request (SigV4: a canonical request and a chain of
# HMACs), about a tenth of a DynamoDB read's time here, and moto never checks a signature.
# It reads only the access key from it, to pick the account, and the sandbox runs one
# account, moto's default (`ACCOUNT`). While a sandbox runs (its Lambda invoker is set),
# requests are not signed; otherwise botocore signs as usual. A request to an endpoint URL
# (the sandbox's moto server, `GET /_sandbox/aws`) is signed all the same: it leaves the
# process, and moto's server finds the service and region in its Authorization header.


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


def _patch_unsigned_while_a_sandbox_runs() -> None:
    from botocore.signers import RequestSigner

    sign = RequestSigner.sign

    def sign_outside_the_sandbox(self: Any, *args: Any, **kwargs: Any) -> None:
        request = kwargs.get("request", args[1] if len(args) > 1 else None)
        host = urlsplit(str(getattr(request, "url", ""))).hostname
        if _invoker is None or host in _LOOPBACK_HOSTS:
            sign(self, *args, **kwargs)

    RequestSigner.sign = sign_outside_the_sandbox


# --- Patch 18: one boto3 client per service for Step Functions' tasks -------------------------
# moto's interpreter builds a new boto3 client (`boto_client_for`) for every Lambda invoke
# and every aws-sdk task it runs: ~6 ms each, about three per approval, and more than the
# whole GetItem a click makes. Its arguments never vary but for the region and service
# (the credentials are fixed placeholders), and boto3 clients are thread-safe: each
# (region, service) gets one client, kept while the process lives.

#: moto's own boto_client_for (the test compares against it).
moto_boto_client_for: Any = None


def _patch_task_clients_reused() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (  # noqa: F401
        lambda_eval_utils,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (  # noqa: F401
        state_task_service_aws_sdk,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    global moto_boto_client_for
    make = moto_boto_client_for = boto_client.boto_client_for
    clients: dict[tuple[str, str, bool], Any] = {}
    lock = threading.Lock()

    def reused(region: str, service: str, state_credentials: Any = None) -> Any:
        # In-process (moto's stubber on) or against a moto server: different endpoints.
        key = (region, service, bool(boto_client.botocore_stubber.enabled))
        with lock:
            found = clients.get(key)
            if found is None:
                found = clients[key] = make(region, service, state_credentials)
        return found

    boto_client.boto_client_for = reused  # modules imported from now on
    for module in list(sys.modules.values()):  # and those that imported it by name already
        if getattr(module, "boto_client_for", None) is make:
            module.boto_client_for = reused


# --- Patch 19: update-expression validation without the repeated work ---------------------
# moto validates every UpdateExpression with ten walks over a deep copy of the parsed
# expression: ~45 % of an UpdateItem here, and UpdateItem is most of what a click and a
# status-feed event cost (the feed alone writes ~1,850 times per 50 approvals).
# - At every node of every walk it asks `isinstance` against abstract classes, several
#   times. Whether a node is a Node, and which processor takes it (the first key of the
#   walker's processing map that its class is a subclass of, as moto's `process` picks),
#   depend only on the two classes: each pair is answered once.
# - Three of the walks read only the expression, the attribute names and the table's key
#   (one SET/ADD/REMOVE/DELETE clause each, no overlapping paths, no key attribute
#   updated); ActionCountValidator alone re-walks the whole tree at every node. They only
#   raise, never change the tree: once they have passed for an expression, names and key,
#   they are not run for it again (a failure is never kept, so it is refused every time).
# - The copy is made by walking the tree (a node's attributes are its type name, its
#   children and its parent) instead of `copy.deepcopy`; what is not a node or a plain
#   value is still deep-copied. The walks, their order and what each does are moto's.

#: moto's own DepthFirstTraverser.traverse_node_recursively (the test reads it).
moto_traverse_node_recursively: Any = None
_PLAIN = (str, int, float, bool, type(None))
#: (parsed expression's id, names, key attributes) -> the parsed expression (kept alive so
#: its id is not reused while the entry stands).
_static_checks_passed: dict[tuple[int, tuple[tuple[str, str], ...], tuple[str, ...]], Any] = {}


def _patch_update_validation_types_cached() -> None:
    global moto_traverse_node_recursively
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    moto_traverse_node_recursively = DepthFirstTraverser.traverse_node_recursively
    is_node: dict[type, bool] = {}
    handled_as: dict[tuple[type, type], type | None] = {}

    def node_class(kind: type) -> bool:
        found = is_node.get(kind)
        if found is None:
            found = is_node[kind] = issubclass(kind, Node)
        return found

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        if not node_class(kind):
            return node
        parent = node.parent
        if node.children is not None:
            for index, child in enumerate(node.children):
                self.pre_processing_of_child(node, index)
                self.traverse_node_recursively(child, index)
        key = (type(self), kind)
        try:
            handler_type = handled_as[key]
        except KeyError:
            handler_type = handled_as[key] = next(
                (t for t in self.nodes_to_be_processed() if issubclass(kind, t)), None
            )
        if handler_type is not None:
            node = _validator_map(self)[handler_type](node)
            node.parent = parent
            if parent:
                parent.children[child_id] = node
        return node

    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively

    def copy_tree(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if type(value) in _PLAIN:
            return value
        if not node_class(type(value)):
            return copy.deepcopy(value, memo)
        memo = {} if memo is None else memo
        found = memo.get(id(value))
        if found is not None:
            return found
        new = object.__new__(type(value))
        memo[id(value)] = new
        state = {}
        for name, attribute in value.__dict__.items():
            if name == "children" and type(attribute) is list:
                state[name] = [copy_tree(child, memo) for child in attribute]
            else:
                state[name] = copy_tree(attribute, memo)
        new.__dict__.update(state)
        return new

    # Validator.__init__'s copy of the parsed expression (and a DynamoType's, as before).
    setattr(validators, "deepcopy", copy_tree)  # noqa: B010 - moto's module-level name

    static = (
        validators.ActionCountValidator,
        validators.OverlappingPathsValidator,
        validators.UpdateHashRangeKeyValidator,
    )
    init = validators.UpdateExpressionValidator.__init__

    def __init__(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        init(self, expression, *args, **kwargs)
        self._sandbox_parsed = expression

    def validate(self: Any) -> Any:
        names = self.expression_attribute_names or {}
        key = (
            id(self._sandbox_parsed),
            tuple(sorted(names.items())),
            tuple(self.table.table_key_attrs),
        )
        passed = _static_checks_passed.get(key) is self._sandbox_parsed
        node = self.node_to_validate
        for processor in self.processors:
            if passed and isinstance(processor, static):
                continue
            node = processor.traverse(node)
        if not passed:  # every walk passed, the three among them
            if len(_static_checks_passed) > 1024:
                _static_checks_passed.clear()
            _static_checks_passed[key] = self._sandbox_parsed
        return node

    validators.UpdateExpressionValidator.__init__ = __init__
    validators.UpdateExpressionValidator.validate = validate


# --- Patch 20: a request's condition parsed once ---------------------------------------------
# moto parses a conditional write's ConditionExpression twice: the response handler parses
# it to check every attribute name and value is used, then the backend parses it again, from
# the same expression, names and values, to evaluate it (~10 % of an UpdateItem each). The
# parsed condition is only read, never changed: the backend's parse, in the same thread
# with the very same name and value maps, takes the one just made.

_last_condition = threading.local()


def _patch_condition_parsed_once_per_request() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parse = ConditionExpressionParser.parse

    def parse_once(self: Any) -> Any:
        names, values = self.expression_attribute_names, self.expression_attribute_values
        last = getattr(_last_condition, "parsed", None)
        _last_condition.parsed = None
        if (
            last is not None
            and last[0] == self.condition_expression
            and last[1] is names
            and last[2] is values
        ):
            self.expr_attr_names_found.extend(last[4])
            self.expr_attr_values_found.extend(last[5])
            return last[3]
        op = parse(self)
        _last_condition.parsed = (
            self.condition_expression,
            names,
            values,
            op,
            tuple(self.expr_attr_names_found),
            tuple(self.expr_attr_values_found),
        )
        return op

    ConditionExpressionParser.parse = parse_once


# --- Patch 21: one execution per name, however many start at once ---------------------------
# Step Functions starts an execution name once: a second StartExecution with the same name
# and input while it runs answers with the running execution (what start_approval relies
# on when SNS delivers one notification twice). moto checks the name, deep-copies the state
# machine, then appends the execution: two starts of one name inside that window both pass
# the check and both run. Starts of the same (state machine, name) now take turns, so the
# second sees the first; other names still start side by side.

_starting: set[tuple[str, str]] = set()
_starting_changed = threading.Condition()
#: moto's own StepFunctionsParserBackend.start_execution (the test shows it still races).
moto_start_execution: Any = None


def _patch_start_execution_once_per_name() -> None:
    global moto_start_execution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    start: Any = StepFunctionsParserBackend.start_execution
    moto_start_execution = start

    def start_execution(
        self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        if not name:  # moto names it afresh: nothing to take turns over
            return start(self, state_machine_arn, name, *args, **kwargs)
        key = (state_machine_arn, name)
        with _starting_changed:
            while key in _starting:
                _starting_changed.wait()
            _starting.add(key)
        try:
            return start(self, state_machine_arn, name, *args, **kwargs)
        finally:
            with _starting_changed:
                _starting.discard(key)
                _starting_changed.notify_all()

    StepFunctionsParserBackend.start_execution = start_execution


# --- Patch 22: each function logs as itself (Powertools, not moto) ---------------------------
# Every handler's Logger(service=...) shares one stdlib logger, so in one process they share
# one LambdaPowertoolsFormatter and its one dict of keys (`log_format`): what one function's
# `inject_lambda_context` or `append_keys` puts there shows on every other function's lines,
# and functions run at once here, on threads. On AWS each function runs in its own
# containers, one invocation at a time per container, and a warm container keeps its keys.
# So each decorated handler now keeps a pool of "containers" (its own copy of the keys per
# formatter): an invocation takes an idle one (a new one, copied from the keys set at import,
# when none is idle: a cold start), works on it alone, and gives it back. A warm container
# still carries the previous invocation's keys, as on AWS (clear_state is the product's
# answer to that); production is unaffected, each Lambda being its own process.

#: The running invocation's container: formatter -> its keys. None outside an invocation.
_container_keys: ContextVar[dict[Any, dict[str, Any]] | None] = ContextVar(
    "sandbox_container_keys", default=None
)
#: Powertools' own Logger.inject_lambda_context (the test compares against it).
powertools_inject_lambda_context: Any = None


def _patch_log_keys_per_container() -> None:
    global powertools_inject_lambda_context
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
    from aws_lambda_powertools.logging.logger import Logger

    def get_keys(self: Any) -> dict[str, Any]:
        shared: dict[str, Any] = self.__dict__["log_format"]
        container = _container_keys.get()
        if container is None:
            return shared
        own = container.get(self)
        if own is None:
            own = container[self] = dict(shared)
        return own

    def set_keys(self: Any, keys: dict[str, Any]) -> None:
        container = _container_keys.get()
        if container is None:
            self.__dict__["log_format"] = keys
        else:
            container[self] = keys

    LambdaPowertoolsFormatter.log_format = property(get_keys, set_keys)  # type: ignore[assignment]
    inject = powertools_inject_lambda_context = Logger.inject_lambda_context

    def inject_lambda_context(self: Any, lambda_handler: Any = None, **options: Any) -> Any:
        decorated = inject(self, lambda_handler, **options)
        if lambda_handler is None:  # called with options: Powertools calls back with both
            return decorated
        idle: list[dict[Any, dict[str, Any]]] = []
        lock = threading.Lock()

        @functools.wraps(lambda_handler)
        def in_a_container(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                container = idle.pop() if idle else {}
            token = _container_keys.set(container)
            try:
                return decorated(event, context, *args, **kwargs)
            finally:
                _container_keys.reset(token)
                with lock:
                    idle.append(container)

        return in_a_container

    Logger.inject_lambda_context = inject_lambda_context  # type: ignore[assignment]


# --- Patch 23: faults in the gate's own DynamoDB and Step Functions calls ------------------
# Not a correction of moto: the hook through which the sandbox's fault model (sandbox.faults,
# POST /_sandbox/faults) fails the calls the gate's functions make. Each call botocore sends
# while a function runs (Sandbox._run_function marks the thread with `gate_calls`) meets
# the faults of its service: `throttled` answers the error the service answers on the wire
# (botocore's retries then see it as they see the real one); DynamoDB's `index_lag` lets the
# query run and then removes from its answer the items first written less than `delay`
# seconds before (a global secondary index is eventually consistent: on AWS a query right
# after a write may miss it). Later writes to an item show at once: the gate's index query
# reads keys only, and those never change. Step Functions' own service integrations and
# the sandbox's views run on no function's thread and never fail.

FaultChooser = Callable[[str, str, Any], Any]
_fault_chooser: FaultChooser | None = None
_FAULTED_SERVICES = {"dynamodb": "dynamodb", "sfn": "stepfunctions"}
_first_written: dict[tuple[str, str], float] = {}
_first_written_lock = threading.Lock()


class _GateCalls(threading.local):
    function: str | None = None


_gate_thread = _GateCalls()


def set_aws_faults(chooser: FaultChooser | None) -> None:
    """``chooser(service, operation, body)`` returns the fault a gate's call meets, or None
    (``Faults.choose``); ``None`` stops injecting."""
    global _fault_chooser
    _fault_chooser = chooser
    with _first_written_lock:
        _first_written.clear()


class gate_calls:
    """Mark this thread as running ``function`` (its AWS calls are the gate's)."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.saved: str | None = None

    def __enter__(self) -> None:
        self.saved, _gate_thread.function = _gate_thread.function, self.function

    def __exit__(self, *exc: object) -> None:
        _gate_thread.function = self.saved


def _item_key(table: str, key: dict[str, Any]) -> tuple[str, str]:
    return table, json.dumps(key, sort_keys=True)


def _table_keys(table: str, item: dict[str, Any]) -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends

    for backends in dynamodb_backends.values():
        for backend in backends.values():
            found = backend.tables.get(table)
            if found is not None:
                names = [found.hash_key_attr] + (
                    [found.range_key_attr] if found.range_key_attr else []
                )
                return {name: item.get(name) for name in names}
    return {}


def _note_write(operation: str, body: dict[str, Any]) -> None:
    """Remember when each item was first written (any writer: the index lags for all)."""
    table = body.get("TableName", "")
    if operation == "PutItem":
        key = _table_keys(table, body.get("Item") or {})
    elif operation == "UpdateItem":
        key = body.get("Key") or {}
    else:
        return
    if key:
        with _first_written_lock:
            _first_written.setdefault(_item_key(table, key), time.monotonic())


def _lagging(body: dict[str, Any], answer: bytes, delay: float) -> bytes:
    """The query's answer without the items first written less than ``delay`` s ago."""
    table = body.get("TableName", "")
    result = json.loads(answer)
    now = time.monotonic()
    kept = []
    for item in result.get("Items", []):
        with _first_written_lock:
            written = _first_written.get(_item_key(table, _table_keys(table, item)))
        if written is None or now - written >= delay:
            kept.append(item)
    result["Items"] = kept
    result["Count"] = len(kept)
    return json.dumps(result).encode()


def _aws_error_response(request: Any, code: str, message: str) -> Any:
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    body = json.dumps({"__type": f"com.amazonaws.service#{code}", "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return AWSResponse(request.url, 400, headers, MockRawResponse(body))


def _patch_aws_faults() -> None:
    from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

    original = BotocoreStubber.__call__

    def faulted(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        chooser = _fault_chooser
        _, _, rest = event_name.partition(".")
        prefix, _, operation = rest.partition(".")
        service = _FAULTED_SERVICES.get(prefix)
        if chooser is None or service is None or not self.enabled:
            return original(self, event_name, request, **kwargs)
        body = json.loads(request.body or b"{}")
        if service == "dynamodb":
            _note_write(operation, body)
        fault = chooser(service, operation, body) if _gate_thread.function else None
        if fault is not None and fault.kind == "throttled":
            error = fault.aws_error(service)
            return _aws_error_response(request, error.code, error.message)
        response = original(self, event_name, request, **kwargs)
        lag = float(fault.option or 0) if fault is not None and fault.kind == "index_lag" else 0
        if lag and body.get("IndexName") and response is not None and response.status_code == 200:
            lagged = _lagging(body, response.content, lag)
            return type(response)(response.url, 200, response.headers, MockRawResponse(lagged))
        return response

    BotocoreStubber.__call__ = faulted


# --- Patch 24: failed asynchronous invocations retried as Lambda retries them ----------------
# moto invokes an SNS subscriber and an EventBridge target once and drops a function error.
# Lambda retries an asynchronous invocation that failed (the template's
# MaximumRetryAttempts: 2), waiting about one minute, then two, then sends the event to the
# on-failure destination. The sandbox retries twice too, after ASYNC_RETRY_DELAYS (scaled
# down), and logs what it would dead-letter. A retry runs on a timer thread, as Lambda's
# does, and `wait_for_events` waits for retries still due.

ASYNC_RETRY_DELAYS = (0.5, 1.0)
_retries_due = 0
_retries_lock = threading.Condition()


def _invoke_async(function: Any, payload: str, attempt: int = 0) -> None:
    """Invoke ``function`` as an asynchronous invocation; on a function error, retry later."""
    headers: dict[str, str] = {}
    answer = function.invoke(payload, {"x-amz-invocation-type": "Event"}, headers)
    if "x-amz-function-error" not in headers:
        return
    if attempt >= len(ASYNC_RETRY_DELAYS):
        error = json.loads(answer) if isinstance(answer, str | bytes) else {}
        _LOG.warning(
            "an asynchronous invocation of %s failed %d times (last: %s); Lambda would "
            "send it to the on-failure destination (dead-letter queue)",
            function.function_name,
            attempt + 1,
            error.get("errorType", "Lambda.Unknown"),
        )
        return
    global _retries_due
    with _retries_lock:
        _retries_due += 1

    def retry() -> None:
        global _retries_due
        try:
            _invoke_async(function, payload, attempt + 1)
        finally:
            with _retries_lock:
                _retries_due -= 1
                _retries_lock.notify_all()

    timer = threading.Timer(ASYNC_RETRY_DELAYS[attempt], retry)
    timer.daemon = True
    timer.start()


def wait_for_retries(timeout: float) -> bool:
    """True once no asynchronous retry is due (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    with _retries_lock:
        while _retries_due:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _retries_lock.wait(left)
    return True


# --- Patch 25: DescribeAlarms answers a page at a time ---------------------------------------
# moto's DescribeAlarms ignores MaxRecords and NextToken: it answers every matching alarm in
# one go, in the order they were created, and never a NextToken. CloudWatch answers at most
# MaxRecords alarms a call (1 to 100, 50 when not given) and a NextToken while more remain;
# the gate pages with it. The answer moto filtered is now sorted by name and cut into
# pages; a NextToken says after which name the next page begins (so an alarm created
# between two calls neither repeats nor shifts one already read). A MaxRecords out of
# range is CloudWatch's ValidationError; a NextToken it did not hand out, InvalidNextToken.

#: Alarms one DescribeAlarms call answers when MaxRecords is not given, and at most.
DESCRIBE_ALARMS_PAGE = 50
DESCRIBE_ALARMS_MAX = 100
_NEXT_TOKEN_MARK = "after:"
#: moto's own CloudWatchResponse.describe_alarms (the test shows it still answers all at once).
moto_describe_alarms: Any = None


def _alarms_token(name: str) -> str:
    return base64.urlsafe_b64encode((_NEXT_TOKEN_MARK + name).encode()).decode()


def _alarms_after(token: str) -> str | None:
    """The alarm name a NextToken of ours resumes after; None for any other token."""
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeError):
        return None
    return text[len(_NEXT_TOKEN_MARK) :] if text.startswith(_NEXT_TOKEN_MARK) else None


def _patch_describe_alarms_pages() -> None:
    global moto_describe_alarms
    from moto.cloudwatch.exceptions import CloudWatchException, ValidationError
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    class InvalidNextToken(CloudWatchException):
        code = "InvalidNextToken"

    describe = moto_describe_alarms = CloudWatchResponse.describe_alarms

    def describe_alarms(self: Any) -> Any:
        size = self._get_param("MaxRecords")
        size = DESCRIBE_ALARMS_PAGE if size is None else int(size)
        if not 1 <= size <= DESCRIBE_ALARMS_MAX:
            raise ValidationError(
                "1 validation error detected: "
                f"Value '{size}' at 'maxRecords' failed to satisfy constraint: "
                f"Member must have value between 1 and {DESCRIBE_ALARMS_MAX}"
            )
        token = self._get_param("NextToken")
        after = None
        if token:
            after = _alarms_after(str(token))
            if after is None:
                raise InvalidNextToken("The next token specified is invalid.")
        answer: Any = describe(self).result
        alarms = sorted([*answer["MetricAlarms"], *answer["CompositeAlarms"]], key=_alarm_name)
        if after is not None:
            alarms = [alarm for alarm in alarms if alarm.name > after]
        page, rest = alarms[:size], alarms[size:]
        result: dict[str, Any] = {
            "MetricAlarms": [alarm for alarm in page if alarm.rule is None],
            "CompositeAlarms": [alarm for alarm in page if alarm.rule is not None],
        }
        if rest:
            result["NextToken"] = _alarms_token(page[-1].name)
        return ActionResult(result)

    CloudWatchResponse.describe_alarms = describe_alarms


def _alarm_name(alarm: Any) -> str:
    return str(alarm.name)


# --- Patch 26: an index query's 1 MB page holds the index's items ---------------------------
# DynamoDB stops a Query page at 1 MB of the items it read: for a secondary index, the
# index's items, which hold only the projected attributes. moto weighs each table item
# whole before projecting it, so a keys-only index pages as often as the table would
# (`approval-gate audit` over 10,000 approvals: about 30 pages, each a sort of every item,
# where DynamoDB answers in one or two). While moto runs a query on an index that projects
# less than ALL, an item's size is its projection's.

_index_query = threading.local()


def _patch_index_pages_sized_by_projection() -> None:
    from moto.dynamodb.models.dynamo_type import Item, bytesize
    from moto.dynamodb.models.table import Table

    query, size = Table.query, Item.size

    def index_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's backend passes index_name as the eighth argument (after self).
        name = args[7] if len(args) > 7 else kwargs.get("index_name")
        index = self.get_index(name) if name else None
        if index is None or (index.projection or {}).get("ProjectionType", "ALL") == "ALL":
            return query(self, *args, **kwargs)
        _index_query.index = index
        try:
            return query(self, *args, **kwargs)
        finally:
            _index_query.index = None

    def projected_size(self: Any) -> int:
        index = getattr(_index_query, "index", None)
        if index is None:
            return size(self)
        # What index.project keeps, weighed as Item.size weighs it (without building it).
        kept = {*index.table_key_attrs, *(key["AttributeName"] for key in index.schema)}
        if index.projection.get("ProjectionType") == "INCLUDE":
            kept.update(index.projection.get("NonKeyAttributes", ()))
        return sum(
            bytesize(name) + value.size() for name, value in self.attrs.items() if name in kept
        )

    Table.query = index_query
    Item.size = projected_size
