"""Faults injected on purpose into the calls the gate makes: to Slack, CodePipeline,
DynamoDB and Step Functions, and into its Lambda functions' invocations.

One :class:`Faults` per sandbox is shared by the fake Slack, the fake CodePipeline, the
AWS fault hook (patch 23: the gate's own DynamoDB and Step Functions calls) and the
sandbox's Lambda invoker (``POST /_sandbox/faults``, DESIGN §6 and §8.6, docs/sandbox.md).
A fault is a ``(service, method, kind)`` with a ``rate`` and a ``seed``. When a fake
receives a call it asks :meth:`Faults.choose`, which counts the call and draws, for each
matching fault, a number in [0, 1) from a SHA-256 of ``(seed, service, method, kind, n,
body)``, where ``n`` is how many times this identical request has arrived (this one
included). The fault fires when the draw is below its rate. So a replay with the same
seed fails the same calls, and a retried identical request is drawn afresh (with
``n + 1``) and may succeed.

What each kind answers is here too (:meth:`Fault.slack_reply`, :meth:`Fault.aws_error`,
:meth:`Fault.lose_answer`), so this module is the whole contract; the fakes only ask and
record. Most kinds answer instead of the call; the ``*_after_effect`` kinds (``AFTER_EFFECT``)
let the fake carry the call out first and then lose its answer, as a client timeout or a
dropped connection does after Slack or AWS did the work. DynamoDB's ``index_lag`` does not
fail a call: the index query it hits does not yet see the items written less than
``delay`` seconds before. Lambda's ``error`` fails an invocation before the handler runs
(the function raised); ``timeout`` lets the handler run to its end and then fails the
invocation as Lambda fails a function that ran past its timeout (every effect taken, the
answer lost). Only the calls the gate makes reach :meth:`Faults.choose`: the Web API
methods (``FakeSlack.api``), the CodePipeline operations (``FakeCodePipeline.call``), the
DynamoDB and Step Functions calls made while one of the gate's functions runs, and the
functions' invocations. The sandbox's own helpers (starting runs, console decisions, the
page, response URLs, CodeCommit's ``GetCommit``, its views of the table and executions)
and Step Functions' own service integrations never fail.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from sandbox.services import (
    CODEPIPELINE_OPERATIONS,
    DYNAMODB_OPERATIONS,
    LAMBDA_OPERATIONS,
    SLACK_METHODS,
    STEPFUNCTIONS_OPERATIONS,
    FakeAwsError,
    Reply,
)

__all__ = [
    "AFTER_EFFECT",
    "ANY_METHOD",
    "KINDS",
    "AnswerLost",
    "Fault",
    "FaultError",
    "Faults",
    "FunctionTimedOut",
    "InjectedFunctionError",
    "draw",
]

#: A fault for every method of its service.
ANY_METHOD = "*"
#: The kinds each service knows, in the order faults of one method are tried.
KINDS: dict[str, tuple[str, ...]] = {
    "slack": (
        "rate_limited",
        "server_error",
        "timeout",
        "channel_not_found",
        "message_not_found",
        "timeout_after_effect",
        "reset_after_effect",
    ),
    "codepipeline": (
        "throttled",
        "invalid_token",
        "already_completed",
        "timeout_after_effect",
        "reset_after_effect",
    ),
    "dynamodb": ("throttled", "index_lag"),
    "stepfunctions": ("throttled",),
    "lambda": ("error", "timeout"),
}
#: Kinds whose call is carried out before the answer is lost.
AFTER_EFFECT = frozenset({"timeout_after_effect", "reset_after_effect"})
METHODS: dict[str, frozenset[str]] = {
    "slack": SLACK_METHODS,
    "codepipeline": CODEPIPELINE_OPERATIONS,
    "dynamodb": DYNAMODB_OPERATIONS,
    "stepfunctions": STEPFUNCTIONS_OPERATIONS,
    "lambda": LAMBDA_OPERATIONS,
}
#: ``Retry-After`` of a ``rate_limited`` answer, in seconds (Slack sends whole seconds).
DEFAULT_RETRY_AFTER = 1
#: The HTTP status of a ``server_error``: 503 (``service_unavailable``) or 500.
DEFAULT_STATUS = 503
#: How long a ``timeout`` holds its answer, in seconds. It must exceed the Slack client
#: timeout the sandbox gives the handlers (``sandbox.engine.SLACK_CLIENT_TIMEOUT``).
DEFAULT_DELAY = 3.5
#: How long a CodePipeline ``timeout_after_effect`` holds the call before botocore's read
#: timeout fires. The fake is called in process (moto's patched operations: no socket, so
#: no read timeout of botocore's ever elapses): the fault waits ``delay`` seconds, standing
#: for the 60 s botocore waits by default, then raises the ReadTimeoutError botocore would.
DEFAULT_AWS_DELAY = 1.0
#: How long DynamoDB's index lags behind the table (``index_lag``), and how long a function
#: with a Lambda ``timeout`` fault runs before Lambda fails it (its configured timeout,
#: scaled down), in seconds.
DEFAULT_INDEX_LAG = 1.0
DEFAULT_FUNCTION_TIMEOUT = 1.0
MAX_DELAY = 30.0
MAX_RETRY_AFTER = 60
#: The option each kind takes, and its default.
OPTIONS: dict[str, tuple[str, int | float]] = {
    "rate_limited": ("retry_after", DEFAULT_RETRY_AFTER),
    "server_error": ("status", DEFAULT_STATUS),
    "timeout": ("delay", DEFAULT_DELAY),
    "timeout_after_effect": ("delay", DEFAULT_DELAY),
    "index_lag": ("delay", DEFAULT_INDEX_LAG),
}
#: Where a service's kind has another default than ``OPTIONS`` gives.
SERVICE_DEFAULTS: dict[tuple[str, str], float] = {
    ("codepipeline", "timeout_after_effect"): DEFAULT_AWS_DELAY,
    ("lambda", "timeout"): DEFAULT_FUNCTION_TIMEOUT,
}
#: What a CodePipeline fault raises: the AWS error code and its message.
AWS_ERRORS: dict[str, tuple[str, str]] = {
    "throttled": ("ThrottlingException", "Rate exceeded"),
    "invalid_token": (
        "InvalidApprovalTokenException",
        "The approval action cannot be found or the token is not valid",
    ),
    "already_completed": (
        "ApprovalAlreadyCompletedException",
        "The approval action has already completed",
    ),
}
#: What DynamoDB answers a throttled request: an on-demand table past its partition's
#: throughput (``ProvisionedThroughputExceededException``), or a table scaling up
#: (``ThrottlingException``); the n-th identical request gets the first when n is odd.
DYNAMODB_THROTTLES: tuple[tuple[str, str], tuple[str, str]] = (
    (
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    ("ThrottlingException", "Throughput exceeds the current capacity of your table or index."),
)
#: Kinds that only one operation can answer: CodePipeline's models list the approval's
#: errors for PutApprovalResult alone, so such a fault set on ``*`` fires only there.
ONLY_ON: dict[str, str] = {
    "invalid_token": "PutApprovalResult",
    "already_completed": "PutApprovalResult",
    "index_lag": "Query",
}
_REQUIRED = ("service", "method", "kind", "rate", "seed")
_OPTIONAL = tuple(name for name, _ in OPTIONS.values())


class AnswerLost(ConnectionResetError):
    """A Slack call was carried out and its connection must now be dropped without an
    answer (``reset_after_effect``): the HTTP server closes the socket on seeing it."""


class InjectedFunctionError(RuntimeError):
    """What a function with a Lambda ``error`` fault raises, before its handler runs."""


class FunctionTimedOut(Exception):
    """A function ran past its timeout (Lambda ``timeout``): Lambda answers an error
    without an ``errorType``, which Step Functions reports as ``Lambda.Unknown``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Task timed out after {seconds:.2f} seconds")
        self.seconds = seconds


class FaultError(ValueError):
    """A fault description the sandbox refuses; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.message, "field": self.field}


@dataclass(frozen=True)
class Fault:
    """One active fault. ``option`` is the kind's option (see ``OPTIONS``), if it has one."""

    service: str
    method: str
    kind: str
    rate: float
    seed: int | str
    option: int | float | None = None
    #: How many times the identical request that met this fault had arrived (1 first).
    attempt: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "service": self.service,
            "method": self.method,
            "kind": self.kind,
            "rate": self.rate,
            "seed": self.seed,
        }
        if self.kind in OPTIONS:
            shown[OPTIONS[self.kind][0]] = self.option
        return shown

    def slack_reply(self) -> Reply:
        """The Web API's answer ``(status, headers, body)``; the call is not carried out.

        A ``timeout`` holds the answer ``delay`` seconds first: a client whose timeout is
        shorter gives up before it comes.
        """
        if self.kind == "rate_limited":
            headers = {"Retry-After": str(self.option)}
            return 429, headers, {"ok": False, "error": "ratelimited"}
        if self.kind == "server_error":
            error = "internal_error" if self.option == 500 else "service_unavailable"
            return int(self.option or DEFAULT_STATUS), {}, {"ok": False, "error": error}
        if self.kind == "timeout":
            time.sleep(float(self.option or DEFAULT_DELAY))
            return 504, {}, {"ok": False, "error": "timeout"}
        return 200, {}, {"ok": False, "error": self.kind}

    @property
    def after_effect(self) -> bool:
        """Is the call carried out before its answer is lost (``AFTER_EFFECT``)?"""
        return self.kind in AFTER_EFFECT

    def lose_answer(self, service: str, reply: Reply | None = None) -> Reply:
        """Lose the answer of a call already carried out (an ``AFTER_EFFECT`` kind).

        Slack: ``timeout_after_effect`` holds the real answer ``delay`` seconds (past the
        client's timeout) and returns it; ``reset_after_effect`` raises
        :class:`AnswerLost`, so the server drops the connection unanswered. CodePipeline
        (in process): raises what botocore raises, ``ReadTimeoutError`` after ``delay``
        seconds or ``ConnectionClosedError`` at once; botocore's retries then see them as
        they see the real ones.
        """
        if service == "slack":
            if self.kind == "reset_after_effect":
                raise AnswerLost("the connection was reset after the call took effect")
            time.sleep(float(self.option or DEFAULT_DELAY))
            assert reply is not None
            return reply
        endpoint = "https://codepipeline.us-east-1.amazonaws.com/"
        if self.kind == "reset_after_effect":
            raise ConnectionClosedError(endpoint_url=endpoint)
        time.sleep(float(self.option or DEFAULT_AWS_DELAY))
        raise ReadTimeoutError(endpoint_url=endpoint)

    def aws_error(self, service: str = "codepipeline") -> FakeAwsError:
        """The error the AWS service answers: CodePipeline's (patch 4 turns it into what
        botocore raises), DynamoDB's or Step Functions' (patch 23 answers it on the wire)."""
        if service == "dynamodb":
            code, message = DYNAMODB_THROTTLES[(self.attempt + 1) % 2]
        else:
            code, message = AWS_ERRORS[self.kind]
        return FakeAwsError(code, message)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def draw(seed: int | str, service: str, method: str, kind: str, n: int, body: Any) -> float:
    """The number in [0, 1) a fault compares with its rate, for the n-th identical request.

    The first 8 bytes of SHA-256 over the canonical JSON of
    ``[seed, service, method, kind, n, body]`` (keys sorted, no spaces, UTF-8; a lone
    surrogate, which only a malformed request carries, as its surrogatepass bytes), read as a
    big-endian integer and divided by 2**64.
    """
    text = _canonical([seed, service, method, kind, n, body])
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse(body: Any) -> Fault:
    """A fault from a ``POST /_sandbox/faults`` body; :class:`FaultError` names the bad field."""
    if not isinstance(body, dict):
        raise FaultError("body", "the body must be a JSON object")
    for name in body:
        if name not in _REQUIRED and name not in _OPTIONAL:
            raise FaultError(str(name), f"unknown field: {name}")
    for name in _REQUIRED:
        if name not in body:
            raise FaultError(name, f"{name} is required")
    service = body["service"]
    if not isinstance(service, str) or service not in KINDS:
        raise FaultError("service", f"service must be one of {', '.join(KINDS)}")
    method = body["method"]
    if not isinstance(method, str) or (method != ANY_METHOD and method not in METHODS[service]):
        known = ", ".join(sorted(METHODS[service]))
        raise FaultError("method", f"method must be '*' or one of the {service} methods: {known}")
    kind = body["kind"]
    if kind not in KINDS[service]:
        kinds = ", ".join(KINDS[service])
        raise FaultError("kind", f"kind must be one of {kinds} for {service}")
    if kind in ONLY_ON and method not in (ANY_METHOD, ONLY_ON[kind]):
        raise FaultError("method", f"kind {kind} applies to '*' or {ONLY_ON[kind]} only")
    rate = body["rate"]
    if not _is_number(rate) or not math.isfinite(rate) or not 0 <= rate <= 1:
        raise FaultError("rate", "rate must be a number from 0 to 1")
    seed = body["seed"]
    if not isinstance(seed, int | str) or isinstance(seed, bool):
        raise FaultError("seed", "seed must be an integer or a string")
    option_name, default = OPTIONS.get(kind, ("", None))
    for name in _OPTIONAL:
        if name in body and name != option_name:
            owners = " or ".join(k for k, (n, _) in OPTIONS.items() if n == name)
            raise FaultError(name, f"{name} applies to kind {owners} only")
    default = SERVICE_DEFAULTS.get((service, kind), default)
    option: Any = body.get(option_name, default) if option_name else None
    if option_name == "retry_after" and (
        not isinstance(option, int)
        or isinstance(option, bool)
        or not 0 <= option <= MAX_RETRY_AFTER
    ):
        raise FaultError(
            "retry_after", f"retry_after must be whole seconds from 0 to {MAX_RETRY_AFTER}"
        )
    if option_name == "status" and (
        not isinstance(option, int) or isinstance(option, bool) or option not in (500, 503)
    ):
        raise FaultError("status", "status must be 500 or 503")
    if option_name == "delay" and (
        not _is_number(option) or not math.isfinite(option) or not 0 < option <= MAX_DELAY
    ):
        raise FaultError("delay", f"delay must be seconds, more than 0 and at most {MAX_DELAY:g}")
    return Fault(service, method, kind, float(rate), seed, option)


class Faults:
    """The active faults, the choice of calls to fail, and counts. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str, str], Fault] = {}
        #: How many times each identical request arrived: sha256(service, method, body) -> n.
        self._seen: dict[bytes, int] = {}
        self._calls: Counter[tuple[str, str]] = Counter()
        self._injected: Counter[tuple[str, str, str]] = Counter()

    def configure(self, body: Any) -> dict[str, Any]:
        """Apply a ``POST /_sandbox/faults`` body: add or replace that fault, or remove it
        with rate 0. Raises :class:`FaultError` (and changes nothing) for a bad body.
        Returns :meth:`snapshot`."""
        fault = parse(body)
        key = (fault.service, fault.method, fault.kind)
        with self._lock:
            if fault.rate == 0:
                self._active.pop(key, None)
            else:
                self._active[key] = fault
        return self.snapshot()

    def set(
        self,
        service: str,
        method: str,
        kind: str,
        rate: float,
        seed: int | str,
        *,
        retry_after: int | None = None,
        status: int | None = None,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """The Python form of ``POST /_sandbox/faults``; options left ``None`` are not sent."""
        body: dict[str, Any] = {
            "service": service,
            "method": method,
            "kind": kind,
            "rate": rate,
            "seed": seed,
        }
        options = {"retry_after": retry_after, "status": status, "delay": delay}
        body.update({k: v for k, v in options.items() if v is not None})
        return self.configure(body)

    def active(self) -> list[dict[str, Any]]:
        """The active faults, in the order first set."""
        with self._lock:
            return [fault.to_dict() for fault in self._active.values()]

    def snapshot(self) -> dict[str, Any]:
        """``{faults, injected, calls}``: the active faults; faults injected so far by
        service -> method -> kind; calls seen so far by service -> method."""
        with self._lock:
            faults = [fault.to_dict() for fault in self._active.values()]
            injected: dict[str, dict[str, dict[str, int]]] = {}
            for (service, method, kind), count in sorted(self._injected.items()):
                injected.setdefault(service, {}).setdefault(method, {})[kind] = count
            calls: dict[str, dict[str, int]] = {}
            for (service, method), count in sorted(self._calls.items()):
                calls.setdefault(service, {})[method] = count
        return {"faults": faults, "injected": injected, "calls": calls}

    def reset(self) -> None:
        """Forget the faults, the counts and how often each request arrived."""
        with self._lock:
            self._active.clear()
            self._seen.clear()
            self._calls.clear()
            self._injected.clear()

    def choose(self, service: str, method: str, body: Any) -> Fault | None:
        """Count one call the gate made and return the fault it meets, if any.

        Faults named for ``method`` are tried before ``*`` ones, each group in the order of
        ``KINDS``; each draws on its own (its kind is in the hash) and the first that fires
        wins.
        """
        canonical = json.loads(_canonical(body))
        identity = _canonical([service, method, canonical]).encode("utf-8", "surrogatepass")
        request = hashlib.sha256(identity).digest()
        with self._lock:
            n = self._seen.get(request, 0) + 1
            self._seen[request] = n
            self._calls[(service, method)] += 1
            candidates = [
                self._active[(service, named, kind)]
                for named in (method, ANY_METHOD)
                for kind in KINDS[service]
                if (service, named, kind) in self._active and ONLY_ON.get(kind, method) == method
            ]
            for fault in candidates:
                if draw(fault.seed, service, method, fault.kind, n, canonical) < fault.rate:
                    self._injected[(service, method, fault.kind)] += 1
                    return replace(fault, attempt=n)
        return None
