"""Health checks (DESIGN §8.3, issue 21): read the policy's CloudWatch alarms and invoke its
check functions, and say which fail.

No Slack and no table here: :func:`run_checks` answers one :class:`CheckResult` per alarm
and per function, in the order the policy lists them, and never raises. Every failure to
find out counts as failing (fail closed): an alarm CloudWatch does not know, an alarm it
could not be asked about, a check function that timed out, raised or answered anything but
``{passed: bool, summary: str, url?: str}``.

Alarms are read with one DescribeAlarms per batch of up to 100 names, and one paged
DescribeAlarms per name prefix (``prod-api-*``); metric and composite alarms alike.
"""

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Self
from urllib.parse import quote

from approval_gate.clock import Clock, iso, parse_iso, utc_now
from approval_gate.i18n import ntr, tr
from approval_gate.rules import Checks

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

ALARM = "alarm"
FUNCTION = "function"
#: A check function's answer is awaited this long (the Lambda client's read timeout).
FUNCTION_TIMEOUT = 5
#: The most names DescribeAlarms takes in one call, and the most alarms it answers per page.
ALARMS_PER_CALL = 100
#: A prefix matching more alarms than this fails: the request could not show them anyway.
MAX_PAGES = 10
#: The longest summary kept from an alarm's StateReason or a function's answer.
MAX_SUMMARY = 200
#: States of a result that is no CloudWatch state: the alarm was not found, or not read;
#: a check function passed, failed, or gave no usable answer.
MISSING, UNREADABLE = "MISSING", "UNREADABLE"
PASSED, FAILED, ERROR = "PASSED", "FAILED", "ERROR"
_ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]  # without it, only metric alarms answer
#: What a check function gets (DESIGN §8.3), taken from the request.
PAYLOAD_KEYS = ("approval_id", "pipeline", "stage", "action", "pipeline_execution_id")

Invoke = Callable[[str, dict[str, Any]], Any]


class CheckResult(NamedTuple):
    """One alarm's or one check function's result, as of `at`."""

    name: str  # the alarm's name; the function's name (and :qualifier), not its whole ARN
    kind: str  # ALARM | FUNCTION
    passed: bool
    state: str  # OK | ALARM | INSUFFICIENT_DATA | MISSING | UNREADABLE; PASSED | FAILED | ERROR
    summary: str
    at: datetime
    url: str | None = None  # the alarm in the console; the link a function answered

    def item(self) -> dict[str, Any]:
        """How the approvals table keeps it: the record, and the link (for the message)."""
        return {**self.record(), **({"url": self.url} if self.url else {})}

    @classmethod
    def from_item(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            passed=bool(data["passed"]),
            state=str(data["state"]),
            summary=str(data["summary"]),
            at=parse_iso(str(data["at"])),
            url=data.get("url"),
        )

    def record(self) -> dict[str, Any]:
        """The decision record's entry (DESIGN §8.3); the link stays in the messages."""
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "state": self.state,
            "summary": self.summary,
            "at": iso(self.at),
        }


class CheckFunctionTimeout(TimeoutError):
    """A check function stopped by its own Lambda timeout (Lambda's error message)."""

    def seconds(self) -> str:
        import re

        found = re.search(r"timed out after (\d+(?:\.\d+)?) seconds", str(self))
        return f"{float(found[1]):g}" if found else str(FUNCTION_TIMEOUT)


class CheckFunctionError(Exception):
    """A check function raised (Lambda answered FunctionError); the error's type."""

    def __init__(self, error_type: str) -> None:
        super().__init__(error_type)
        self.error_type = error_type


def run_checks(
    checks: Checks,
    *,
    cloudwatch: Any,
    invoke: Invoke,
    request: Mapping[str, Any],
    clock: Clock,
    language: str,
) -> tuple[CheckResult, ...]:
    """Every alarm's, then every function's result, in the order the policy lists them;
    the functions are invoked at once. The gate's own summaries (an alarm not found, a
    function that timed out) are in ``language``, the rule's: people read them.

    An alarm listed twice (by name and through a prefix, say) gives one result, the first.
    """
    results: list[CheckResult] = []
    if checks.alarms:
        results.extend(_alarm_results(checks, cloudwatch, clock, language))
    payload = {key: request.get(key) for key in PAYLOAD_KEYS}
    payload["revisions"] = list(request.get("revisions") or [])
    if len(checks.functions) == 1:
        results.append(_function_result(checks.functions[0], invoke, payload, clock, language))
    elif checks.functions:
        # At once, so 20 slow functions take one timeout (5 s), not twenty: the asking
        # function has 30 s in all. boto3 clients are thread-safe.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(checks.functions)) as pool:
            results.extend(
                pool.map(
                    lambda arn: _function_result(arn, invoke, payload, clock, language),
                    checks.functions,
                )
            )
    return tuple(results)


def failing(results: Iterable[CheckResult]) -> tuple[CheckResult, ...]:
    return tuple(result for result in results if not result.passed)


def summary_of_failing(results: Iterable[CheckResult], limit: int = 300, *, language: str) -> str:
    """One plain line naming the failing checks, at most `limit` characters:
    ``prod-api-5xx ALARM: Threshold Crossed …; change-ticket-check: no ticket``; "and 2
    more" in ``language``."""
    parts = []
    for result in failing(results):
        shown = f"{result.name} {result.state}" if result.state in _ALARM_STATES else result.name
        parts.append(f"{shown}: {_cut(result.summary, 80)}")
    line = ""
    for index, part in enumerate(parts):
        more = len(parts) - index - 1
        candidate = f"{line}; {part}" if line else part
        tail = f"; {_more(more, language)}" if more else ""
        if len(candidate) + len(tail) > limit:
            if line:  # it fitted with this tail, counting the part that does not fit
                return f"{line}; {_more(len(parts) - index, language)}"
            return _cut(part, limit - len(tail)) + tail
        line = candidate
    return line


def _more(count: int, language: str) -> str:
    # Translators: ends a list of failing health checks cut short: "…; and 2 more".
    return ntr(language, "and %(count)d more", "and %(count)d more", count)


def lambda_invoker(client: Any) -> Invoke:
    """`invoke(arn, payload)` through a boto3 Lambda client: a RequestResponse Invoke that
    answers the function's parsed JSON, or raises CheckFunctionError when it raised.

    Build the client with :func:`check_function_client_config`: a 5 s read timeout and no
    retries (a retried timeout would wait 5 s again, and a check need not be idempotent).
    """

    def invoke(arn: str, payload: dict[str, Any]) -> Any:
        response = client.invoke(
            FunctionName=arn,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            try:
                error = json.loads(body)
                error_type = error.get("errorType") or response["FunctionError"]
                message = str(error.get("errorMessage") or "")
            except (ValueError, AttributeError):
                error_type, message = response["FunctionError"], ""
            if error_type == "Sandbox.Timedout" or "Task timed out" in message:
                # Its own timeout (≤ 5 s) came first: Lambda says so in the error.
                raise CheckFunctionTimeout(message)
            raise CheckFunctionError(str(error_type))
        return json.loads(body)

    return invoke


def check_function_client_config() -> Any:
    """The botocore Config of the Lambda client that invokes check functions."""
    from botocore.config import Config

    return Config(
        read_timeout=FUNCTION_TIMEOUT,
        connect_timeout=FUNCTION_TIMEOUT,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )


#: Runs an approval's health checks (its rules' `checks`) now: its results.
Checker = Callable[[Any], tuple[CheckResult, ...]]


def aws_checker(clock: Clock = utc_now, region: str | None = None) -> Checker:
    """The checker the workflow's functions use: CloudWatch and Lambda clients made on the
    first approval that has checks (most policies have none, and pay nothing for them), in
    the function's region, read now: at import, from the function's environment."""
    import os

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    clients: dict[str, Any] = {}

    def check(approval: Any) -> tuple[CheckResult, ...]:
        if not clients:
            import boto3

            clients["cloudwatch"] = boto3.client("cloudwatch", region_name=region)
            clients["lambda"] = boto3.client(
                "lambda", region_name=region, config=check_function_client_config()
            )
        return run_checks(
            approval.rules.checks,
            cloudwatch=clients["cloudwatch"],
            invoke=lambda_invoker(clients["lambda"]),
            request={
                **{key: getattr(approval, key) for key in PAYLOAD_KEYS},
                "revisions": [revision.record() for revision in approval.revisions],
            },
            clock=clock,
            language=approval.rules.language,
        )

    return check


# --------------------------------------------------------------------------- alarms

_ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


def _alarm_results(
    checks: Checks, cloudwatch: Any, clock: Clock, language: str
) -> list[CheckResult]:
    names = [name for name in checks.alarms if not name.endswith("*")]
    found: dict[str, dict[str, Any]] = {}
    unreadable: dict[str, str] = {}  # name or prefix* -> the error's code
    for start in range(0, len(names), ALARMS_PER_CALL):
        batch = names[start : start + ALARMS_PER_CALL]
        try:
            alarms = _describe(cloudwatch, AlarmNames=batch)
        except Exception as exc:  # fail closed: every alarm it covered fails
            unreadable.update(dict.fromkeys(batch, _error_code(exc)))
            LOG.warning("could not read the alarms", extra={"error": _error_code(exc)})
            continue
        found.update((alarm["AlarmName"], alarm) for alarm in alarms)
    by_prefix: dict[str, list[dict[str, Any]]] = {}
    for pattern in checks.alarms:
        if pattern.endswith("*") and pattern not in by_prefix:
            try:
                by_prefix[pattern] = _describe(cloudwatch, AlarmNamePrefix=pattern[:-1])
            except Exception as exc:  # fail closed
                unreadable[pattern] = _error_code(exc)
                LOG.warning(
                    "could not read the alarms",
                    extra={"prefix": pattern[:-1], "error": _error_code(exc)},
                )

    now = clock()
    region = getattr(getattr(cloudwatch, "meta", None), "region_name", None)
    results: list[CheckResult] = []
    seen: set[str] = set()
    for pattern in checks.alarms:
        if pattern in unreadable:
            if pattern.endswith("*"):
                # Translators: a health check's summary; %(error)s: CloudWatch's error code.
                why = tr(
                    language, "could not read the alarms: %(error)s", error=unreadable[pattern]
                )
            else:
                # Translators: a health check's summary; %(error)s: CloudWatch's error code.
                why = tr(language, "could not read the alarm: %(error)s", error=unreadable[pattern])
            results.append(CheckResult(pattern, ALARM, False, UNREADABLE, why, now))
        elif not pattern.endswith("*"):
            alarm = found.get(pattern)
            if alarm is None:
                LOG.warning("a checked alarm does not exist", extra={"alarm": pattern})
                # Translators: a health check's summary: CloudWatch has no alarm of that name.
                why = tr(language, "no such alarm")
                results.append(CheckResult(pattern, ALARM, False, MISSING, why, now))
            elif pattern not in seen:
                results.append(_alarm_result(alarm, checks, now, region))
            seen.add(pattern)
        elif not by_prefix[pattern]:
            LOG.warning("no checked alarm starts with the prefix", extra={"prefix": pattern[:-1]})
            # Translators: a health check's summary; %(prefix)s: the start of alarm names.
            why = tr(language, "no alarm starts with %(prefix)s", prefix=pattern[:-1])
            results.append(CheckResult(pattern, ALARM, False, MISSING, why, now))
        else:
            for alarm in by_prefix[pattern]:
                if alarm["AlarmName"] not in seen:
                    seen.add(alarm["AlarmName"])
                    results.append(_alarm_result(alarm, checks, now, region))
    return results


def _describe(cloudwatch: Any, **selection: Any) -> list[dict[str, Any]]:
    """Every alarm DescribeAlarms answers for the selection, metric and composite, by name;
    through every page (a prefix may match hundreds). Raises what the client raises."""
    alarms: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = cloudwatch.describe_alarms(
            **selection,
            AlarmTypes=_ALARM_TYPES,
            MaxRecords=ALARMS_PER_CALL,
            **({"NextToken": token} if token else {}),
        )
        alarms.extend(page.get("MetricAlarms", ()))
        alarms.extend(page.get("CompositeAlarms", ()))
        token = page.get("NextToken")
        if not token:
            return sorted(alarms, key=lambda alarm: str(alarm["AlarmName"]))
    raise TooManyAlarms(f"more than {MAX_PAGES * ALARMS_PER_CALL} alarms match")


class TooManyAlarms(Exception):
    """A prefix matches more alarms than a request can show: name a narrower one."""


def _alarm_result(
    alarm: Mapping[str, Any], checks: Checks, now: datetime, region: str | None
) -> CheckResult:
    name = str(alarm["AlarmName"])
    state = str(alarm.get("StateValue", "INSUFFICIENT_DATA"))
    reason = _cut(str(alarm.get("StateReason") or state), MAX_SUMMARY)
    passed = state not in checks.alarm_states
    # Since when it is in that state: an event about an older change is then not applied
    # over it (live_checks), and the request can say since when a check blocks.
    since = alarm.get("StateUpdatedTimestamp")
    at = since if isinstance(since, datetime) and since <= now else now
    return CheckResult(name, ALARM, passed, state, reason, at, alarm_console_url(name, region))


def alarm_console_url(name: str, region: str | None) -> str | None:
    if not region:
        return None
    if region.startswith("cn-"):
        host = f"{region}.console.amazonaws.cn"
    elif region.startswith("us-gov-"):
        host = f"{region}.console.amazonaws-us-gov.com"
    else:
        host = f"{region}.console.aws.amazon.com"
    return f"https://{host}/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(name, safe='')}"


# --------------------------------------------------------------------------- functions


def _function_result(
    arn: str, invoke: Invoke, payload: dict[str, Any], clock: Clock, language: str
) -> CheckResult:
    name = arn.split(":function:", 1)[-1]
    try:
        answer = invoke(arn, payload)
    except Exception as exc:  # fail closed: any error fails the check
        why = _why_no_answer(exc, "en")  # logs stay English; people read the rule's language
        LOG.warning("a check function gave no answer", extra={"function": arn, "why": why})
        why = _why_no_answer(exc, language)
        return CheckResult(name, FUNCTION, False, ERROR, why, clock())
    problem = _junk(answer, "en")
    if problem is not None:
        LOG.warning("a check function answered junk", extra={"function": arn, "why": problem})
        shown = _cut(json.dumps(answer, default=str), 80)
        # Translators: a check function's summary; %(answer)s: what it answered (JSON).
        junk = tr(language, "answered junk: %(answer)s", answer=shown)
        return CheckResult(name, FUNCTION, False, ERROR, junk, clock())
    passed: bool = answer["passed"]
    # Translators: a check function's summary when it gave none: it passed, or it failed.
    said = tr(language, "passed") if passed else tr(language, "failed")
    summary = _cut(answer["summary"], MAX_SUMMARY) or said
    return CheckResult(
        name, FUNCTION, passed, PASSED if passed else FAILED, summary, clock(), answer.get("url")
    )


def _junk(answer: Any, language: str) -> str | None:
    """Why the answer is not ``{passed: bool, summary: str, url?: str}``; None if it is.
    Other keys are let through (a function may say more than the gate reads)."""
    if not isinstance(answer, dict):
        # Translators: what is wrong with a check function's answer.
        return tr(language, "not a JSON object")
    if not isinstance(answer.get("passed"), bool):
        # Translators: "passed" is the answer's key, kept as it is.
        return tr(language, "%(key)s is not true or false", key="passed")
    if not isinstance(answer.get("summary"), str):
        # Translators: "summary" is the answer's key, kept as it is.
        return tr(language, "%(key)s is not a string", key="summary")
    url = answer.get("url")
    if url is not None and not (
        isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 2000
    ):
        # Translators: "url" is the answer's key, kept as it is.
        return tr(language, "%(key)s is not an http(s) link", key="url")
    return None


def _why_no_answer(exc: Exception, language: str) -> str:
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    if isinstance(exc, CheckFunctionTimeout):
        # Translators: a check function's summary; %(seconds)s: a number of seconds.
        return tr(language, "timed out after %(seconds)s s", seconds=exc.seconds())
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError | TimeoutError):
        # Translators: a check function's summary; %(seconds)s: a number of seconds.
        return tr(language, "timed out after %(seconds)s s", seconds=str(FUNCTION_TIMEOUT))
    if isinstance(exc, CheckFunctionError):
        # Translators: a check function's summary; %(error)s: the error's type.
        return tr(language, "raised: %(error)s", error=_cut(exc.error_type, 80))
    if isinstance(exc, ValueError):  # json.loads of the payload
        # Translators: a check function's summary: its answer was not JSON.
        return tr(language, "answered junk: not JSON")
    # Translators: a check function's summary; %(error)s: Lambda's error code.
    return tr(language, "could not be invoked: %(error)s", error=_error_code(exc))


def _error_code(exc: Exception) -> str:
    if isinstance(exc, TooManyAlarms):
        return str(exc)
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def _cut(text: str, limit: int) -> str:
    """One line of at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
