"""The pipeline status feed: CodePipeline's EventBridge events → one Slack message per
execution, updated in place, with how each stage and action ended in its thread."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from approval_gate.closing import INDEX_LAG_WAITS
from approval_gate.feed import (
    FEED_PREFIX,
    FeedStore,
    InvalidEvent,
    PipelineEvent,
    feed_view,
    handle_event,
    parse_event,
    receive,
)
from approval_gate.policy import Policy, PolicyError, load_policy
from approval_gate.slack import RateLimitWithinTime, rate_limit_waits
from approval_gate.store import APPROVED, DECIDED_ELSEWHERE, PENDING, ApprovalStore
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from tests.unit.conftest import TABLE
from tests.unit.events import load_event
from tests.unit.fakes import (
    APPROVAL_ID,
    EXECUTION_ID,
    FIXED,
    REPO,
    TASK_TOKEN,
    RecordingSlack,
    clock_at,
    create_approvals_table,
    make_approval,
)

#: One successful run of prod-web (Source, Build, Approval, Deploy), in the order
#: CodePipeline sent it: tests/events/codepipeline_<name>.json.
SUCCESSFUL_RUN = (
    "pipeline_started",
    "stage_source_started",
    "action_source_started",
    "action_source_succeeded",
    "stage_source_succeeded",
    "stage_build_started",
    "action_build_started",
    "action_build_succeeded",
    "stage_build_succeeded",
    "stage_approval_started",
    "action_approval_started",
    "action_approval_succeeded",
    "stage_approval_succeeded",
    "stage_deploy_started",
    "action_deploy_started",
    "action_deploy_succeeded",
    "stage_deploy_succeeded",
    "pipeline_succeeded",
)
#: The same execution, had its build failed instead.
FAILED_BUILD = (
    *SUCCESSFUL_RUN[:7],
    "action_build_failed",
    "stage_build_failed",
    "pipeline_failed",
)
#: One thread message per stage, when it ends: the stage's outcome, then its actions'.
SUCCESS_THREAD = [
    "✅ Stage Source succeeded\n✅ Action Source/Source succeeded",
    "✅ Stage Build succeeded\n✅ Action Build/CodeBuild succeeded",
    "✅ Stage Approval succeeded\n✅ Action Approval/ProductionGate approved",
    "✅ Stage Deploy succeeded\n✅ Action Deploy/DeployToECS succeeded",
]
COMMIT = "3f9c2e1d7b4a5c6e8f9012345678901234abcdef"
COMMIT_URL = f"https://github.com/example-org/web/commit/{COMMIT}"
BUILD_ERROR = "Build failed: exit status 2 in phase BUILD"
BUILD_LOGS = (
    "https://us-east-2.console.aws.amazon.com/cloudwatch/home?region=us-east-2"
    "#logsV2:log-groups/log-group/prod-web-build"
)
POLICY = """
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE]}
"""
NOW = FIXED + timedelta(minutes=30)


def sample(name: str, *, execution_id: str = EXECUTION_ID, **detail: Any) -> dict[str, Any]:
    """A sample event, optionally for another execution or with detail fields changed."""
    event = load_event(f"codepipeline_{name}")
    event["detail"]["execution-id"] = execution_id
    event["detail"].update(detail)
    return event


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    """The same change sent again under a new event id (CodePipeline re-emitting it)."""
    again = copy.deepcopy(event)
    again["id"] = str(uuid.uuid4())
    return again


# --------------------------------------------------------------------------- fakes


class FeedSlack(RecordingSlack):
    """RecordingSlack, safe across threads, optionally slow, failing once per method, or
    rate limited (`ratelimited`: which writes answer 429, as the client raises it once it
    gave up waiting)."""

    def __init__(
        self, delay: float = 0.0, fail: Iterable[str] = (), ratelimited: Iterable[str] = ()
    ) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self.delay = delay
        self.fail = set(fail)
        self.ratelimited = set(ratelimited)
        #: For each 429 answered: would the gate's client have waited out its Retry-After
        #: where the call was made (the function having the time)?
        self.would_wait: list[bool] = []

    def _record(self, method: str, kwargs: dict[str, Any]) -> None:
        with self._lock:
            super()._record(method, copy.deepcopy(kwargs))

    def _limit(self, which: str) -> None:
        if which in self.ratelimited:
            handler = RateLimitWithinTime(lambda: 25.0, timeout=1.0)
            request = HttpRequest(method="POST", url="https://slack.com/api/x", headers={})
            limited = HttpResponse(status_code=429, headers={"Retry-After": ["1"]}, body={})
            self.would_wait.append(
                handler.can_retry(state=RetryState(), request=request, response=limited)
            )
            raise SlackApiError("ratelimited", {"ok": False, "error": "ratelimited"})

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        time.sleep(self.delay)
        which = "thread" if "thread_ts" in kwargs else "post"
        self._limit(which)
        if which in self.fail:
            self.fail.discard(which)
            raise SlackApiError("server_error", {"ok": False, "error": "server_error"})
        with self._lock:
            return super().chat_postMessage(**kwargs)

    def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        self._limit("update")
        if "update" in self.fail:
            self.fail.discard("update")
            raise SlackApiError("server_error", {"ok": False, "error": "server_error"})
        return super().chat_update(**kwargs)

    def posts(self) -> list[dict[str, Any]]:
        return [kw for m, kw in self.calls if m == "chat_postMessage" and "thread_ts" not in kw]

    def thread(self) -> list[str]:
        return [kw["text"] for m, kw in self.calls if m == "chat_postMessage" and "thread_ts" in kw]

    def updates(self) -> list[dict[str, Any]]:
        return [kw for m, kw in self.calls if m == "chat_update"]

    def shown(self) -> tuple[str, list[dict[str, Any]]]:
        """What the message shows now: the last post or update of it."""
        last = [kw for m, kw in self.calls if m == "chat_update" or "thread_ts" not in kw][-1]
        return last["text"], last["blocks"]


class FakeCodePipeline:
    """GetPipelineExecution and ListActionExecutions, recorded; failing when told."""

    def __init__(self, *, fail: bool = False, approval_summary: str | None = None) -> None:
        self.fail = fail
        self.approval_summary = approval_summary
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _maybe_fail(self, operation: str) -> None:
        if self.fail:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, operation)

    def get_pipeline_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get_pipeline_execution", kwargs))
        self._maybe_fail("GetPipelineExecution")
        return {
            "pipelineExecution": {
                "pipelineName": kwargs["pipelineName"],
                "pipelineExecutionId": kwargs["pipelineExecutionId"],
                "status": "InProgress",
                "artifactRevisions": [
                    {
                        "name": "SourceArtifact",
                        "revisionId": COMMIT,
                        "revisionSummary": (
                            '{"ProviderType":"GitHub","CommitMessage":"Fix the checkout total\\n'
                            '\\nRounding was off by a cent."}'
                        ),
                        "revisionUrl": COMMIT_URL,
                    }
                ],
                "trigger": {
                    "triggerType": "StartPipelineExecution",
                    "triggerDetail": "arn:aws:sts::123456789012:assumed-role/Admin/jane",
                },
            }
        }

    def list_action_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list_action_executions", kwargs))
        self._maybe_fail("ListActionExecutions")
        execution = kwargs["filter"]["pipelineExecutionId"]
        approval_result: dict[str, Any] = {"externalExecutionId": "token-is-not-shown"}
        if self.approval_summary:
            approval_result["externalExecutionSummary"] = self.approval_summary
        return {
            "actionExecutionDetails": [
                {
                    "pipelineExecutionId": execution,
                    "stageName": "Build",
                    "actionName": "CodeBuild",
                    "status": "Failed",
                    "lastUpdateTime": datetime(2026, 12, 1, 17, 2, 30, tzinfo=UTC),
                    "output": {
                        "executionResult": {
                            "externalExecutionId": "prod-web-build:6c1f0a1e",
                            "externalExecutionSummary": BUILD_ERROR,
                            "externalExecutionUrl": BUILD_LOGS,
                        }
                    },
                },
                {
                    "pipelineExecutionId": execution,
                    "stageName": "Approval",
                    "actionName": "ProductionGate",
                    "status": "Failed",
                    "output": {"executionResult": approval_result},
                },
            ]
        }

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


class RecordingSfnFailures:
    """Step Functions' SendTaskFailure, recorded."""

    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        self.failures.append(kwargs)
        return {}


@dataclass
class Feed:
    """Everything handle_event needs, with the fakes to look at afterwards."""

    store: FeedStore
    approvals: ApprovalStore
    policy: Policy
    slack: FeedSlack
    codepipeline: FakeCodePipeline
    sfn: RecordingSfnFailures
    #: The waits settle_elsewhere asked for while the execution index may lag (not slept).
    waits: list[float] = field(default_factory=list)

    def send(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            handle_event(
                parse_event(event),
                store=self.store,
                approvals=self.approvals,
                slack=self.slack,
                policy=self.policy,
                codepipeline=self.codepipeline,
                sfn=self.sfn,
                clock=clock_at(NOW),
                sleep=self.waits.append,
            )
            for event in events
        ]

    def run(self, names: Iterable[str], **kwargs: Any) -> list[dict[str, Any]]:
        return self.send(*(sample(name, **kwargs) for name in names))


def make_feed(dynamodb: Any, table: str = TABLE, policy: str = POLICY, **fakes: Any) -> Feed:
    return Feed(
        store=FeedStore(table, dynamodb),
        approvals=ApprovalStore(table, dynamodb),
        policy=load_policy(policy),
        slack=fakes.get("slack") or FeedSlack(),
        codepipeline=fakes.get("codepipeline") or FakeCodePipeline(),
        sfn=RecordingSfnFailures(),
    )


@pytest.fixture
def feed(dynamodb: Any) -> Feed:
    return make_feed(dynamodb)


# --------------------------------------------------------------------------- a whole run


def test_a_successful_run_is_one_message_updated_to_succeeded_with_its_thread(feed):
    results = feed.run(SUCCESSFUL_RUN)

    (post,) = feed.slack.posts()
    assert post["channel"] == "C0DEPLOYS"
    assert results[0]["posted"] is True and not any(r["posted"] for r in results[1:])
    assert {u["ts"] for u in feed.slack.updates()} == {"1796144403.000100"}
    text, blocks = feed.slack.shown()
    assert text == "✅ prod-web succeeded in 26m 32s"
    assert blocks == feed_view(feed.store.get(EXECUTION_ID), "en").blocks
    assert blocks[1]["text"]["text"] == "✅ Source  →  ✅ Build  →  ✅ Approval  →  ✅ Deploy"
    context = [element["text"] for element in blocks[2]["elements"]]
    assert context[0] == f"Commit `3f9c2e1` <{COMMIT_URL}|Fix the checkout total>"
    assert context[1] == "Trigger: started by `assumed-role/Admin/jane`"
    assert context[2].startswith("Started <!date^1796144400^") and "`b7a0e5f2`" in context[2]
    assert feed.slack.thread() == SUCCESS_THREAD
    threaded = [kw for m, kw in feed.slack.calls if "thread_ts" in kw]
    assert {(kw["channel"], kw["thread_ts"]) for kw in threaded} == {
        ("C0DEPLOYS", "1796144403.000100")
    }
    # Revision and trigger are read once, when the message is first posted. The approval's
    # end reads nobody's decision: no open approval was left to settle (the gate decided).
    assert feed.codepipeline.methods() == ["get_pipeline_execution"]


def test_a_four_stage_run_costs_two_slack_writes_per_stage_and_two_per_run(feed):
    results = feed.run(SUCCESSFUL_RUN)

    # The message posted at the start and moved on as each stage starts (showing the
    # previous stage's end too), one thread message per stage, the final update.
    assert len(feed.slack.calls) <= 2 * 4 + 2
    assert [r["updated"] for r in results if r["updated"]] == [True] * 5
    assert [r["threaded"] for r in results].count(True) == 4
    ended = ("stage_source_succeeded", "stage_build_succeeded", "stage_approval_succeeded")
    assert all(
        not r["updated"] and r["threaded"]
        for name, r in zip(SUCCESSFUL_RUN, results, strict=True)
        if name in ended
    )


def test_a_stage_s_end_after_the_next_stage_s_start_updates_the_message_itself(feed):
    feed.run(SUCCESSFUL_RUN[:8])
    feed.run(["stage_approval_started"])

    (result,) = feed.run(["stage_build_succeeded"])

    assert result["updated"] is True
    assert feed.slack.shown()[1][1]["text"]["text"] == "✅ Source  →  ✅ Build  →  ▶️ Approval"


def test_a_stage_s_end_racing_the_next_stage_s_start_leaves_both_in_the_message(dynamodb):
    for round_ in range(4):
        slack = FeedSlack(delay=0.02)
        feed = make_feed(dynamodb, slack=slack)
        execution = str(uuid.UUID(int=round_ + 100))
        feed.run(SUCCESSFUL_RUN[:8], execution_id=execution)
        racing = [
            sample(name, execution_id=execution)
            for name in ("stage_build_succeeded", "stage_approval_started")
        ]
        start = threading.Barrier(len(racing))

        def deliver(event: dict[str, Any], feed: Feed = feed, start: Any = start) -> Any:
            start.wait()
            return feed.send(event)[0]

        with ThreadPoolExecutor(len(racing)) as pool:
            list(pool.map(deliver, racing))

        shown = slack.shown()[1][1]["text"]["text"]
        assert shown == "✅ Source  →  ✅ Build  →  ▶️ Approval", f"round {round_}"


def test_an_action_that_changes_nothing_on_screen_does_not_touch_the_message(feed):
    feed.run(SUCCESSFUL_RUN[:2])
    before = len(feed.slack.calls)

    (result,) = feed.run(["action_source_started"])

    assert result["updated"] is False and result["threaded"] is False
    assert len(feed.slack.calls) == before


def test_while_running_the_message_shows_where_the_run_is(feed):
    feed.run(SUCCESSFUL_RUN[:11])

    text, blocks = feed.slack.shown()
    assert text == "▶️ prod-web in progress"
    assert blocks[1]["text"]["text"] == "✅ Source  →  ✅ Build  →  ▶️ Approval"


# --------------------------------------------------------------------------- order, twice


_reference: dict[str, Any] = {}
_tables = itertools.count()


def _reference_run(dynamodb: Any) -> dict[str, Any]:
    """The in-order run's final message and thread, computed once."""
    if not _reference:
        table = f"reference-{next(_tables)}"
        create_approvals_table(dynamodb, table)
        feed = make_feed(dynamodb, table)
        feed.run(SUCCESSFUL_RUN)
        _reference.update(shown=feed.slack.shown(), thread=told(feed.slack.thread()))
    return _reference


def told(thread: list[str]) -> list[str]:
    """Every stage's and action's end the thread tells, one per line, sorted: a stage's
    message may go out before one of its actions' ends is known (that end then gets a
    message of its own), so the messages can differ while what they tell is the same."""
    return sorted(line for message in thread for line in message.split("\n"))


@st.composite
def deliveries(draw: st.DrawFn) -> list[int]:
    """Every event of the run in any order, some of them delivered twice."""
    order = list(draw(st.permutations(range(len(SUCCESSFUL_RUN)))))
    for again in draw(st.lists(st.sampled_from(range(len(SUCCESSFUL_RUN))), max_size=6)):
        order.insert(draw(st.integers(0, len(order))), again)
    return order


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(order=deliveries())
def test_events_in_any_order_and_twice_give_the_same_message_and_thread(dynamodb, order):
    expected = _reference_run(dynamodb)
    table = f"shuffled-{next(_tables)}"
    create_approvals_table(dynamodb, table)
    feed = make_feed(dynamodb, table)
    events = [sample(name) for name in SUCCESSFUL_RUN]

    feed.send(*(events[i] for i in order))

    assert len(feed.slack.posts()) == 1
    assert feed.slack.shown() == expected["shown"]
    assert told(feed.slack.thread()) == expected["thread"]


def test_a_late_start_after_success_and_redeliveries_change_nothing(feed):
    feed.run(SUCCESSFUL_RUN)
    calls, item = len(feed.slack.calls), feed.store.get(EXECUTION_ID)

    late = [redelivered(sample(n)) for n in ("stage_build_started", "action_build_started")]
    results = feed.send(*late, redelivered(sample("pipeline_started")))
    results += feed.run(SUCCESSFUL_RUN)

    assert len(feed.slack.calls) == calls
    assert feed.store.get(EXECUTION_ID) == item
    assert {r["ignored"] for r in results} == {"stale", "duplicate"}
    assert results[0]["ignored"] == "stale"
    assert all(r["ignored"] == "duplicate" for r in results[3:])


def test_an_earlier_state_arriving_late_never_goes_back(feed):
    feed.run(["stage_build_succeeded"])
    feed.run(["stage_build_started"])

    assert feed.store.get(EXECUTION_ID).stages["Build"].state == "SUCCEEDED"
    assert feed.slack.shown()[1][1]["text"]["text"] == "✅ Build"


def test_the_start_still_counts_when_it_arrives_after_the_end(feed):
    feed.run(["pipeline_succeeded", "pipeline_started"])

    assert feed.slack.shown()[0] == "✅ prod-web succeeded in 26m 32s"
    assert feed.store.get(EXECUTION_ID).pipeline_state.state == "SUCCEEDED"


def test_a_retried_execution_moves_on_from_its_failure(feed):
    feed.run(FAILED_BUILD)
    retry = {"pipeline-execution-attempt": 2.0}

    feed.send(
        redelivered(sample("stage_build_started", **retry)),
        redelivered(sample("action_build_started", **retry)),
        redelivered(sample("action_build_succeeded", **retry)),
        redelivered(sample("stage_build_succeeded", **retry)),
        redelivered(sample("pipeline_succeeded", **retry)),
    )

    assert feed.slack.shown()[0].startswith("✅ prod-web succeeded")
    assert "✅ Stage Build succeeded" in told(feed.slack.thread())
    assert "❌ Stage Build failed" in told(feed.slack.thread())


def test_attempt_0_as_the_user_guide_s_processed_events_show_it_is_applied_in_order(feed):
    first = {"pipeline-execution-attempt": 0.0}
    retry = {"pipeline-execution-attempt": 1.0}
    feed.send(*(sample(name, **first) for name in FAILED_BUILD))

    assert parse_event(sample("stage_source_started", **first)).attempt == 0
    assert feed.store.get(EXECUTION_ID).pipeline_state.state == "FAILED"
    assert feed.slack.shown()[0] == "❌ prod-web failed in stage Build after 2m 32s"

    results = feed.send(
        redelivered(sample("stage_build_started", **retry)),
        redelivered(sample("action_build_succeeded", **retry)),
        redelivered(sample("stage_build_succeeded", **retry)),
        redelivered(sample("pipeline_succeeded", **retry)),
        # Attempt 0's end, sent again after the retry began: stale, however it ranks.
        redelivered(sample("stage_build_failed", **first)),
        redelivered(sample("pipeline_failed", **first)),
    )

    assert [r["ignored"] for r in results] == [None, None, None, None, "stale", "stale"]
    assert feed.slack.shown()[0].startswith("✅ prod-web succeeded")
    lines = "\n".join(feed.slack.thread())
    assert "❌ Stage Build failed" in lines and "✅ Stage Build succeeded" in lines


def test_two_first_events_racing_post_one_message(dynamodb):
    for round_ in range(4):
        slack = FeedSlack(delay=0.05)
        feed = make_feed(dynamodb, slack=slack)
        execution = str(uuid.UUID(int=round_ + 1))
        events = [
            sample(name, execution_id=execution)
            for name in ("pipeline_started", "stage_source_started", "action_source_started")
        ]
        events.append(copy.deepcopy(events[0]))
        start = threading.Barrier(len(events))

        def deliver(event: dict[str, Any], feed: Feed = feed, start: Any = start) -> Any:
            start.wait()
            return feed.send(event)[0]

        with ThreadPoolExecutor(len(events)) as pool:
            results = list(pool.map(deliver, events))

        assert len(slack.posts()) == 1, f"round {round_}"
        assert sum(r["posted"] for r in results) == 1
        final = feed.store.get(execution)
        assert final.stages["Source"].state == "STARTED"
        assert slack.shown() == (feed_view(final, "en").text, feed_view(final, "en").blocks)


# --------------------------------------------------------------------------- failures


def test_a_failed_action_puts_its_error_and_logs_link_in_the_thread(feed):
    results = feed.run(FAILED_BUILD)

    assert feed.slack.thread()[-1] == (
        "❌ Stage Build failed\n"
        f"❌ Action Build/CodeBuild failed: {BUILD_ERROR} · <{BUILD_LOGS}|logs>"
    )
    assert feed.slack.shown()[0] == "❌ prod-web failed in stage Build after 2m 32s"
    (lae,) = [kw for m, kw in feed.codepipeline.calls if m == "list_action_executions"]
    assert lae == {"pipelineName": "prod-web", "filter": {"pipelineExecutionId": EXECUTION_ID}}
    assert results[-1]["settled"] == []


def test_without_list_action_executions_the_event_s_own_result_is_used(dynamodb):
    feed = make_feed(dynamodb, codepipeline=FakeCodePipeline(fail=True))

    feed.run(FAILED_BUILD)

    assert any(
        line.startswith("❌ Action Build/CodeBuild failed: Build terminated with state: FAILED")
        for line in told(feed.slack.thread())
    )
    # GetPipelineExecution failed as well: the message goes out without a revision.
    context = feed.slack.shown()[1][-1]["elements"]
    assert [e["text"][:7] for e in context] == ["Trigger", "Started"]


def test_a_failed_action_with_no_details_anywhere_still_gets_its_line(dynamodb):
    feed = make_feed(dynamodb, codepipeline=FakeCodePipeline(fail=True))
    failed = sample("action_build_failed")
    del failed["detail"]["execution-result"]

    feed.send(*(sample(n) for n in FAILED_BUILD[:7]), failed, sample("stage_build_failed"))

    assert feed.slack.thread()[-1] == "❌ Stage Build failed\n❌ Action Build/CodeBuild failed"


def test_a_slack_error_is_raised_and_the_retry_posts_once(dynamodb):
    slack = FeedSlack(fail=["post", "thread"])
    feed = make_feed(dynamodb, slack=slack)

    with pytest.raises(SlackApiError):
        feed.run(["pipeline_started"])
    feed.run(["pipeline_started"])  # EventBridge's retry: the same event id
    feed.run(SUCCESSFUL_RUN[1:4])
    with pytest.raises(SlackApiError):
        feed.run(["stage_source_succeeded"])  # its thread message fails
    feed.run(["stage_source_succeeded"])  # EventBridge's retry
    feed.run(["stage_build_started"])  # the next change brings the message up to date

    assert len(slack.posts()) == 1
    assert slack.thread() == ["✅ Stage Source succeeded\n✅ Action Source/Source succeeded"]
    assert slack.shown()[1][1]["text"]["text"] == "✅ Source  →  ▶️ Build"


# --------------------------------------------------------------------------- rate limits


def test_a_rate_limit_waits_are_what_the_caller_says_within_the_function_s_time():
    handler = RateLimitWithinTime(lambda: 25.0, timeout=1.0)
    request = HttpRequest(method="POST", url="https://slack.com/api/x", headers={})
    limited = HttpResponse(status_code=429, headers={"Retry-After": ["1"]}, body={})

    def waits(attempt: int) -> bool:
        state = RetryState(current_attempt=attempt)
        return handler.can_retry(state=state, request=request, response=limited)

    assert [waits(n) for n in range(3)] == [True, False, False]  # once, by default
    with rate_limit_waits(0):
        assert [waits(n) for n in range(3)] == [False, False, False]
    with rate_limit_waits(3):
        assert [waits(n) for n in range(4)] == [True, True, True, False]
        assert not RateLimitWithinTime(lambda: 3.0, timeout=1.0).can_retry(
            state=RetryState(), request=request, response=limited
        )  # never past the function's time
    assert [waits(n) for n in range(2)] == [True, False]


def test_a_rate_limited_write_mid_run_waits_for_nothing_and_the_next_event_makes_it(
    dynamodb, gate_log
):
    slack = FeedSlack()
    feed = make_feed(dynamodb, slack=slack)
    feed.run(SUCCESSFUL_RUN[:4])
    slack.ratelimited = {"thread", "update"}

    # The stage's end (its thread message) and the next stage's start (the update), each
    # followed at once by another event: no wait, no error for Lambda to retry.
    results = feed.run(["stage_source_succeeded", "stage_build_started"])

    assert slack.would_wait == [False, False]
    assert [r["threaded"] for r in results] == [False, False]
    assert feed.slack.thread() == []
    assert [r.getMessage() for r in gate_log.records if r.levelno == logging.WARNING] == [
        "Slack is rate limiting the status feed: the run's next event catches up"
    ] * 2
    slack.ratelimited = set()
    (result,) = feed.run(["action_build_started"])

    assert result["updated"] and result["threaded"]
    assert slack.thread() == ["✅ Stage Source succeeded\n✅ Action Source/Source succeeded"]
    assert slack.shown()[1][1]["text"]["text"] == "✅ Source  →  ▶️ Build"


@pytest.mark.parametrize(
    ("before", "deferred", "failed", "last"),
    [
        # Nothing follows the run's end.
        (SUCCESSFUL_RUN[:-1], [], [], "pipeline_succeeded"),
        # The stage's start was rate limited and left its update to the next event, an
        # action's start: but the action runs for a while (a build, people deciding).
        (SUCCESSFUL_RUN[:5], ["stage_build_started"], [], "action_build_started"),
        # Lambda's retry of an event whose update failed: nothing new follows it.
        (SUCCESSFUL_RUN[:5], [], ["stage_build_started"], "stage_build_started"),
    ],
)
def test_a_rate_limited_last_chance_waits_more_then_raises_for_lambda_s_retry(
    dynamodb, before, deferred, failed, last
):
    slack = FeedSlack()
    feed = make_feed(dynamodb, slack=slack)
    feed.run(before)
    slack.fail = {"update"}
    for name in failed:
        with pytest.raises(SlackApiError):
            feed.run([name])
    slack.fail = set()
    slack.ratelimited = {"post", "thread", "update"}
    feed.run(deferred)

    with pytest.raises(SlackApiError):
        feed.run([last])

    assert slack.would_wait[-1] is True  # the client waits (LAST_CHANCE_WAITS at most)
    slack.ratelimited = set()
    feed.run([last])  # Lambda's retry: the same event
    final = feed.store.get(EXECUTION_ID)
    assert slack.shown() == (feed_view(final, "en").text, feed_view(final, "en").blocks)


# --------------------------------------------------------------------------- policy


def test_announce_failed_and_succeeded_posts_only_the_outcome_once(dynamodb):
    policy = POLICY + "  announce: [failed, succeeded]\n"
    feed = make_feed(dynamodb, policy=policy)

    results = feed.run(SUCCESSFUL_RUN)

    assert all(r["ignored"] == "not announced" for r in results[:-1])
    assert [m for m, _ in feed.slack.calls] == ["chat_postMessage"]
    assert feed.slack.shown()[0] == "✅ prod-web succeeded in 26m 32s"
    assert feed.slack.thread() == []


def test_announce_without_the_outcome_posts_nothing(dynamodb):
    feed = make_feed(dynamodb, policy=POLICY + "  announce: [failed, stage, action]\n")

    feed.run(SUCCESSFUL_RUN)

    assert feed.slack.calls == []
    assert feed.store.get(EXECUTION_ID).pipeline_state.state == "SUCCEEDED"


def test_announce_stage_without_action_threads_stage_lines_only(dynamodb):
    feed = make_feed(dynamodb, policy=POLICY + "  announce: [started, succeeded, stage]\n")

    feed.run(SUCCESSFUL_RUN)

    assert feed.slack.thread() == [message.split("\n")[0] for message in SUCCESS_THREAD]


def test_an_announced_failure_posts_with_its_stage_lines_when_it_comes(dynamodb):
    feed = make_feed(dynamodb, policy=POLICY + "  announce: [failed, stage]\n")

    feed.run(FAILED_BUILD)

    assert len(feed.slack.posts()) == 1
    assert feed.slack.thread() == ["✅ Stage Source succeeded\n❌ Stage Build failed"]


def test_stages_whose_events_carry_the_same_second_keep_the_order_they_ran_in(dynamodb):
    feed = make_feed(dynamodb, policy=POLICY + "  announce: [failed, stage]\n")
    ticks = itertools.count()

    def clock() -> datetime:  # the function's own clock moves on between events
        return NOW + timedelta(milliseconds=next(ticks) * 7)

    for name in FAILED_BUILD:
        event = sample(name)
        event["time"] = "2026-12-01T17:00:00Z"  # CodePipeline's time is to the second
        handle_event(
            parse_event(event),
            store=feed.store,
            approvals=feed.approvals,
            slack=feed.slack,
            policy=feed.policy,
            codepipeline=feed.codepipeline,
            sfn=feed.sfn,
            clock=clock,
            sleep=feed.waits.append,
        )

    assert feed.slack.thread() == ["✅ Stage Source succeeded\n❌ Stage Build failed"]
    assert feed.slack.shown()[1][1]["text"]["text"] == "✅ Source  →  ❌ Build"


def test_the_status_channel_is_chosen_per_pipeline(dynamodb):
    policy = POLICY + (
        "  status_channel: C0FEED\n"
        "pipelines:\n"
        '  - match: "prod-*"\n'
        "    status_channel: C0PRODFEED\n"
    )
    feed = make_feed(dynamodb, policy=policy)
    other = str(uuid.uuid4())

    feed.run(SUCCESSFUL_RUN[:5])
    feed.run(SUCCESSFUL_RUN[:5], execution_id=other, pipeline="staging-web")

    posts = feed.slack.posts()
    assert [p["channel"] for p in posts] == ["C0PRODFEED", "C0FEED"]
    assert "staging-web" in posts[1]["text"]
    threads = {(kw["channel"], kw["thread_ts"]) for m, kw in feed.slack.calls if "thread_ts" in kw}
    assert threads == {
        ("C0PRODFEED", feed.store.get(EXECUTION_ID).message_ts),
        ("C0FEED", feed.store.get(other).message_ts),
    }


def test_an_unknown_pipeline_gets_the_defaults(feed):
    feed.run(["pipeline_started"], pipeline="never-heard-of-it")

    assert feed.slack.posts()[0]["channel"] == "C0DEPLOYS"


# --------------------------------------------------------------------------- approvals


def _open_approval(store: ApprovalStore, **overrides: Any) -> None:
    store.create(make_approval(stage="Approval", action="ProductionGate", **overrides))
    store.save_task_token(APPROVAL_ID, TASK_TOKEN)


def test_approved_in_the_console_closes_the_open_approval(feed, store):
    _open_approval(store)

    results = feed.run(SUCCESSFUL_RUN[:12])

    approval = store.get(APPROVAL_ID)
    assert approval.status == DECIDED_ELSEWHERE
    assert approval.note == "Approved in the CodePipeline console"
    assert results[-1]["settled"] == [APPROVAL_ID]
    assert feed.sfn.failures == [
        {
            "taskToken": TASK_TOKEN,
            "error": "DecidedElsewhere",
            "cause": "Approved in the CodePipeline console",
        }
    ]


class LaggingIndex(ApprovalStore):
    """The approvals table whose execution index misses the items for its first ``misses``
    queries, as a global secondary index can right after a write."""

    def __init__(self, table: str, client: Any, misses: int) -> None:
        super().__init__(table, client)
        self.misses = misses
        self.queries = 0

    def by_pipeline_execution(self, pipeline_execution_id: str) -> list[Any]:
        self.queries += 1
        if self.queries <= self.misses:
            return []
        return super().by_pipeline_execution(pipeline_execution_id)


def test_a_console_decision_within_the_index_lag_still_closes_the_approval(dynamodb, store):
    """Issue 18: the execution index is eventually consistent; a console decision right
    after the request found nothing and left the request open in Slack."""
    feed = make_feed(dynamodb)
    feed.approvals = LaggingIndex(TABLE, dynamodb, misses=2)
    _open_approval(store)

    results = feed.run(SUCCESSFUL_RUN[:12])

    assert store.get(APPROVAL_ID).status == DECIDED_ELSEWHERE
    assert results[-1]["settled"] == [APPROVAL_ID]
    assert feed.waits == list(INDEX_LAG_WAITS[:2])  # looked again twice, then found it


def test_an_approval_the_gate_never_asked_about_costs_bounded_waits(dynamodb):
    feed = make_feed(dynamodb)

    results = feed.run(SUCCESSFUL_RUN[:12])

    assert results[-1]["settled"] == []
    assert feed.waits == list(INDEX_LAG_WAITS)  # the console decision's event looks again
    assert sum(INDEX_LAG_WAITS) <= 5


def test_a_pipeline_level_settlement_looks_once(dynamodb):
    feed = make_feed(dynamodb)

    feed.run(["pipeline_superseded"])

    assert feed.waits == []


def test_rejected_in_the_console_says_why_when_codepipeline_does(dynamodb, store):
    feed = make_feed(dynamodb, codepipeline=FakeCodePipeline(approval_summary="Canary is red"))
    _open_approval(store)
    rejected = redelivered(sample("action_approval_succeeded", state="FAILED"))
    stage_failed = redelivered(sample("stage_approval_succeeded", state="FAILED"))

    feed.send(*(sample(n) for n in SUCCESSFUL_RUN[:11]), rejected, stage_failed)

    approval = store.get(APPROVAL_ID)
    assert approval.status == DECIDED_ELSEWHERE
    assert approval.note == "Rejected in the CodePipeline console, or expired there: Canary is red"
    assert feed.slack.thread()[-1] == (
        "❌ Stage Approval failed\n❌ Action Approval/ProductionGate rejected: Canary is red"
    )
    assert [f["error"] for f in feed.sfn.failures] == ["DecidedElsewhere"]


def test_a_superseded_run_closes_its_open_approval(feed, store):
    _open_approval(store)

    feed.run([*SUCCESSFUL_RUN[:11], "pipeline_superseded"])

    approval = store.get(APPROVAL_ID)
    assert approval.status == DECIDED_ELSEWHERE
    assert approval.note == "Superseded by a newer run"
    assert feed.sfn.failures[0]["error"] == "DecidedElsewhere"
    assert feed.slack.shown()[0] == "⏭ prod-web superseded after 10m"


@pytest.mark.parametrize(
    ("state", "note"),
    [
        ("STOPPING", "The pipeline run was stopped"),
        ("STOPPED", "The pipeline run was stopped"),
        ("FAILED", "The pipeline run ended before a decision"),
        ("CANCELED", "The pipeline run ended before a decision"),
    ],
)
def test_a_run_that_ends_otherwise_closes_its_open_approval(feed, store, state, note):
    _open_approval(store)

    feed.send(redelivered(sample("pipeline_superseded", state=state)))

    approval = store.get(APPROVAL_ID)
    assert (approval.status, approval.note) == (DECIDED_ELSEWHERE, note)


@pytest.mark.parametrize("state", ["CANCELED", "ABANDONED"])
def test_an_approval_action_cancelled_in_codepipeline_closes_the_approval(feed, store, state):
    _open_approval(store)

    feed.send(redelivered(sample("action_approval_succeeded", state=state)))

    assert store.get(APPROVAL_ID).note == "Cancelled in CodePipeline"


def test_the_gate_s_own_approval_is_left_alone(feed, store):
    _open_approval(store)
    store.decide(APPROVAL_ID, status=APPROVED, decided_by=("U0ALICE",), reason=None, at=FIXED)

    results = feed.run(SUCCESSFUL_RUN)

    assert store.get(APPROVAL_ID).status == APPROVED
    assert feed.sfn.failures == []
    assert all(r["settled"] == [] for r in results)


def test_another_stage_s_approval_and_a_build_failure_do_not_close_it(feed, store):
    _open_approval(store)

    feed.run([*SUCCESSFUL_RUN[:11], "action_build_failed", "stage_build_failed"])

    assert store.get(APPROVAL_ID).status == PENDING


def test_the_feed_item_never_shows_up_as_an_approval(feed, store, dynamodb):
    feed.run(SUCCESSFUL_RUN[:3])

    item = dynamodb.get_item(
        TableName=TABLE, Key={"approval_id": {"S": FEED_PREFIX + EXECUTION_ID}}
    )
    assert "pipeline_execution_id" not in item["Item"]
    assert store.by_pipeline_execution(EXECUTION_ID) == []


# --------------------------------------------------------------------------- parsing


def test_a_sample_event_parses_to_what_it_says():
    event = parse_event(load_event("codepipeline_action_build_failed"))

    assert event == PipelineEvent(
        kind="action",
        event_id=event.event_id,
        time=datetime(2026, 12, 1, 17, 2, 30, tzinfo=UTC),
        region="us-east-2",
        account="123456789012",
        pipeline="prod-web",
        execution_id=EXECUTION_ID,
        state="FAILED",
        stage="Build",
        action="CodeBuild",
        category="Build",
        provider="CodeBuild",
        attempt=1,
        external_summary="Build terminated with state: FAILED",
        external_url=load_event("codepipeline_action_build_failed")["detail"]["execution-result"][
            "external-execution-url"
        ],
    )
    started = parse_event(load_event("codepipeline_pipeline_started"))
    assert (started.trigger_type, started.trigger_detail) == (
        "StartPipelineExecution",
        "arn:aws:sts::123456789012:assumed-role/Admin/jane",
    )


def test_every_sample_parses():
    for path in sorted((REPO / "tests" / "events").glob("codepipeline_*.json")):
        assert parse_event(load_event(path.name)).execution_id == EXECUTION_ID


def test_the_epoch_time_of_moto_s_delivery_is_accepted():
    event = sample("stage_build_started")
    event["time"] = 1796144411.0

    assert parse_event(event).time == datetime(2026, 12, 1, 17, 0, 11, tzinfo=UTC)


def _without(path: str) -> Any:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        del target[last]

    return change


def _setting(path: str, value: Any) -> Any:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        target[last] = value

    return change


@pytest.mark.parametrize(
    ("name", "change", "named"),
    [
        ("pipeline_started", _setting("source", "aws.codecommit"), "source"),
        ("pipeline_started", _setting("detail-type", "CodePipeline Whatever"), "detail-type"),
        ("pipeline_started", _without("detail"), "detail"),
        ("pipeline_started", _setting("detail", "{}"), "detail"),
        ("pipeline_started", _without("id"), "id"),
        ("pipeline_started", _setting("time", "yesterday"), "time"),
        ("pipeline_started", _setting("region", "mars-1"), "region"),
        ("pipeline_started", _setting("account", "12345"), "account"),
        ("pipeline_started", _setting("detail.pipeline", "prod web!"), "detail.pipeline"),
        ("pipeline_started", _without("detail.pipeline"), "detail.pipeline"),
        ("pipeline_started", _setting("detail.execution-id", "42"), "detail.execution-id"),
        ("pipeline_started", _setting("detail.state", "EXPLODED"), "detail.state"),
        ("pipeline_started", _setting("detail.state", 3), "detail.state"),
        (
            "pipeline_started",
            _setting("detail.pipeline-execution-attempt", -1),
            "detail.pipeline-execution-attempt",
        ),
        (
            "pipeline_started",
            _setting("detail.execution-trigger", "console"),
            "detail.execution-trigger",
        ),
        ("stage_build_started", _without("detail.stage"), "detail.stage"),
        ("action_build_started", _without("detail.action"), "detail.action"),
        ("action_build_started", _setting("detail.type", []), "detail.type"),
        (
            "action_build_started",
            _setting("detail.type.category", "<!channel>"),
            "detail.type.category",
        ),
    ],
)
def test_a_malformed_event_is_rejected_naming_the_field(name, change, named):
    event = sample(name)
    change(event)

    with pytest.raises(InvalidEvent) as raised:
        parse_event(event)

    assert str(raised.value).split(" ")[0] == named


@pytest.mark.parametrize("event", [None, [], "CodePipeline", 42])
def test_something_that_is_not_an_event_is_rejected(event):
    with pytest.raises(InvalidEvent, match="not a JSON object"):
        parse_event(event)


# --------------------------------------------------------------------------- the handler


@dataclass
class LambdaContext:
    function_name: str = "PipelineEventsFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-2:123456789012:function:PipelineEventsFunction"
    )
    aws_request_id: str = "5f0c9b5e-0000-4000-8000-000000000000"


@pytest.fixture
def pipeline_events_app(dynamodb, monkeypatch, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("APPROVAL_GATE_TABLE_NAME", TABLE)
    monkeypatch.setenv("APPROVAL_GATE_POLICY_FILE", str(policy))
    path = REPO / "functions" / "pipeline_events" / "app.py"
    spec = importlib.util.spec_from_file_location("pipeline_events_app_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    slack = FeedSlack()
    monkeypatch.setattr(
        module,
        "SLACK",
        type(
            "Access", (), {"client": lambda self: slack, "invocation": lambda self, context: None}
        )(),
    )
    monkeypatch.setattr(module, "CODEPIPELINE", FakeCodePipeline())
    module.slack_fake = slack
    return module


def test_the_handler_posts_the_feed(pipeline_events_app):
    result = pipeline_events_app.handler(
        load_event("codepipeline_pipeline_started"), LambdaContext()
    )

    assert result == {
        "posted": True,
        "updated": False,
        "threaded": False,
        "ignored": None,
        "settled": [],
    }
    assert pipeline_events_app.slack_fake.posts()[0]["text"] == "▶️ prod-web in progress"


def test_the_handler_logs_and_drops_a_malformed_event(pipeline_events_app, caplog):
    event = load_event("codepipeline_pipeline_started")
    event["detail"]["execution-id"] = "not-an-execution"

    result = pipeline_events_app.handler(event, LambdaContext())

    assert result == {"ignored": "detail.execution-id is not a pipeline execution id"}
    assert pipeline_events_app.slack_fake.calls == []


def receive_with(
    feed: Feed, event: Any, load_policy: Callable[[], Policy], asked: list[str]
) -> dict[str, Any]:
    """`receive` with the feed's fakes; `asked` records each loader it called."""

    def slack_client() -> FeedSlack:
        asked.append("slack")
        return feed.slack

    def policy() -> Policy:
        asked.append("policy")
        return load_policy()

    return receive(
        event,
        store=feed.store,
        approvals=feed.approvals,
        slack_client=slack_client,
        load_policy=policy,
        codepipeline=feed.codepipeline,
        sfn=feed.sfn,
        clock=clock_at(NOW),
        sleep=feed.waits.append,
    )


def test_receive_applies_the_event_and_logs_what_it_did(feed, gate_log):
    asked: list[str] = []
    event = sample("pipeline_started")

    result = receive_with(feed, event, lambda: feed.policy, asked)

    assert result["posted"] is True
    assert asked == ["policy", "slack"]
    (record,) = [r for r in gate_log.records if r.getMessage() == "pipeline event handled"]
    assert record.levelno == logging.INFO
    assert (record.pipeline, record.execution_id, record.kind) == (
        "prod-web",
        EXECUTION_ID,
        "pipeline",
    )
    assert (record.stage, record.action, record.state) == (None, None, "STARTED")
    assert record.event_id == event["id"]
    assert all(getattr(record, key) == value for key, value in result.items())


def test_receive_drops_a_malformed_event_before_loading_anything(feed, gate_log):
    asked: list[str] = []
    event = sample("pipeline_started", **{"execution-id": "not-an-execution"})

    result = receive_with(feed, event, lambda: feed.policy, asked)

    assert result == {"ignored": "detail.execution-id is not a pipeline execution id"}
    assert asked == []
    assert feed.slack.calls == []
    (record,) = gate_log.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "ignored an event that is not a CodePipeline state change"
    assert record.reason == "detail.execution-id is not a pipeline execution id"


def test_receive_logs_and_raises_an_invalid_policy(feed, gate_log):
    asked: list[str] = []

    def broken() -> Policy:
        raise PolicyError("defaults.deadline: 'soon' is not a duration")

    with pytest.raises(PolicyError):
        receive_with(feed, sample("pipeline_started"), broken, asked)

    assert asked == ["policy"]
    assert feed.slack.calls == []
    assert feed.store.get(EXECUTION_ID) is None
    (record,) = gate_log.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "the policy is invalid"
    assert record.reason == "defaults.deadline: 'soon' is not a duration"
