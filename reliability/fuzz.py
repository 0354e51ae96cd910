"""Property-based and corpus fuzzing of the gate's edges (issue 8, point 3).

`run_fuzz(count, seed)` sends `count` generated requests, shared between three targets:

- ``slack_interactions``: HTTP API v2 events as API Gateway delivers them, built from real
  block_actions and view_submission payloads, every layer mutated (fields, form encoding,
  signature and timestamp, base64 and the event envelope);
- ``start_approval``: SNS events carrying CodePipeline's approval JSON, mutated the same way;
- ``policy``: policy documents from the shipped ones, mutated, as objects, YAML and files.

and checks every one of them:

(a) no 5xx answer and no unhandled exception (a Lambda error counts as a 5xx);
(b) no state change (the approvals' status, votes and deciders; the workflows; Slack's
    messages) without a valid signature from an authorized approver, and a valid one
    changes at most the approval it names; a rejected SNS message starts nothing;
(c) no secret in any log line or response body (the signing secret, the bot token, the
    Slack secret's other values, every CodePipeline and task token in the table), nor in
    anything sent to Slack;
and for the policy loader: a document either loads (and the policy then works) or raises
``PolicyError`` whose message names the key.

Handlers run in-process, as Lambda calls them (`Sandbox.invoke`), against one sandbox:
no HTTP in the loop, so thousands of requests take seconds.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reliability import ROOT
from reliability.generate import (
    POLICY,
    SLACK,
    START,
    TARGETS,
    Case,
    Chooser,
    OpenApproval,
    PolicyCase,
    RandomChooser,
    SlackWorld,
    StartWorld,
    policy_case,
    sign,
    slack_case,
    start_case,
)
from reliability.oracles import (
    PENDING,
    State,
    StateReader,
    Verdict,
    changes,
    find_secrets,
    judge,
    moto_race,
    request_text,
)

#: The fuzz's own policy: one rule per path worth reaching (one approver, two, a group).
FUZZ_POLICY = Path(__file__).with_name("policy.yaml")
EVENTS = ROOT / "tests" / "events"
#: Users the workspace knows who may decide nothing.
OUTSIDERS = ("U0MALLORY", "U0EVE", "W0OUTSIDER")
#: The kinds of pipeline a Slack-target approval is opened for (see policy.yaml).
POOL_KINDS = ("one", "two", "group")
#: Shares of `count` per target when run_fuzz is not told otherwise.
DEFAULT_SHARES = {SLACK: 0.6, START: 0.25, POLICY: 0.15}
#: How many failures of each kind the report keeps as examples.
EXAMPLES_PER_KIND = 5

SLACK_FUNCTION = "SlackInteractionsFunction"
START_FUNCTION = "StartApprovalFunction"


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Failure:
    """One broken invariant: which target, which kind, the request, what happened."""

    target: str
    kind: str  # server_error | unauthorized_change | secret_leaked | policy_error
    case: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.target}] {self.kind}: {self.detail}\n    request: {self.case[:400]}"


@dataclass
class FuzzReport:
    """What a fuzz run sent, how it was answered, and every invariant it saw broken."""

    seed: int = 0
    #: Requests sent, per target.
    requests: Counter[str] = field(default_factory=Counter)
    #: Seconds spent per target (generation, call and checks).
    seconds: dict[str, float] = field(default_factory=dict)
    #: How requests were answered, per target: HTTP status, handler result, or error.
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    #: (a) 5xx answers and unhandled exceptions.
    server_errors: int = 0
    #: (b) state changed by a forged or unauthorized request, or beyond the named approval.
    unauthorized_changes: int = 0
    #: (c) a secret in a log line, a response body or a message sent to Slack.
    secrets_leaked: int = 0
    #: The policy loader raised something else than PolicyError, or a PolicyError that
    #: names no key, or a policy that loaded failed when used.
    policy_errors: int = 0
    #: Approvals decided by valid, authorized requests (the fuzz reached the deep path).
    decisions: int = 0
    #: Calls that failed inside moto, not in the handler (see `oracles.moto_race`): not
    #: failures of the code under test, but told apart so they are not mistaken for them.
    sandbox_errors: int = 0
    #: The first few failures of each kind.
    examples: list[Failure] = field(default_factory=list)
    #: Observations that break no invariant (e.g. a workflow that failed later).
    notes: list[str] = field(default_factory=list)
    total_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def failures(self) -> int:
        return (
            self.server_errors
            + self.unauthorized_changes
            + self.secrets_leaked
            + self.policy_errors
        )

    @property
    def ok(self) -> bool:
        return self.failures == 0

    @property
    def requests_per_second(self) -> float:
        return self.total / self.total_seconds if self.total_seconds else 0.0

    def add(self, failure: Failure) -> None:
        counter = {
            "server_error": "server_errors",
            "unauthorized_change": "unauthorized_changes",
            "secret_leaked": "secrets_leaked",
            "policy_error": "policy_errors",
        }[failure.kind]
        setattr(self, counter, getattr(self, counter) + 1)
        if sum(1 for e in self.examples if e.kind == failure.kind) < EXAMPLES_PER_KIND:
            self.examples.append(failure)

    def outcome(self, target: str, what: str) -> None:
        self.outcomes.setdefault(target, Counter())[what] += 1

    def summary(self) -> str:
        lines = [
            f"fuzzed {self.total} requests in {self.total_seconds:.1f} s "
            f"({self.requests_per_second:.0f}/s), seed {self.seed}"
        ]
        for target in TARGETS:
            if self.requests[target]:
                seconds = self.seconds.get(target, 0.0)
                answered = ", ".join(
                    f"{k}: {v}" for k, v in sorted(self.outcomes.get(target, Counter()).items())
                )
                lines.append(
                    f"  {target}: {self.requests[target]} in {seconds:.1f} s "
                    f"({self.requests[target] / seconds if seconds else 0:.0f}/s): {answered}"
                )
        lines.append(
            f"  5xx or unhandled: {self.server_errors}; unauthorized state changes: "
            f"{self.unauthorized_changes}; secrets leaked: {self.secrets_leaked}; "
            f"policy loader errors: {self.policy_errors}; decisions reached: {self.decisions}"
            + (f"; sandbox (moto) errors: {self.sandbox_errors}" if self.sandbox_errors else "")
        )
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  {example}" for example in self.examples]
        return "\n".join(lines)


# --------------------------------------------------------------------------- capture


class FuzzAborted(Exception):
    """The sandbox's state became unreadable: the run stops (the report says why)."""


class _RecordCapture(logging.Handler):
    """Warnings from any other logger (a library's), which Lambda would print too."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a malformed record must not stop the fuzz
            self.lines.append(str(record.msg))


# --------------------------------------------------------------------------- the session


def _sample(name: str) -> dict[str, Any]:
    with open(EVENTS / f"{name}.json", encoding="utf-8") as handle:
        event: dict[str, Any] = json.load(handle)
    return event


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _poll(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until `probe` answers something truthy (the workflow runs on moto's threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.005)


class FuzzSession:
    """A running sandbox made ready for fuzzing: approvals open in Slack, the oracles'
    knowledge of who may decide what, and the checks of every invariant.

    Borrow a running `SandboxServer` (tests) or let `run_fuzz` start one. Use it as a
    context manager: closing decides every approval still open, so every workflow ends.
    """

    def __init__(self, server: Any, report: FuzzReport | None = None, pool_size: int = 6) -> None:
        self.server = server
        self.sandbox = server.sandbox
        self.report = report or FuzzReport()
        self.pool_size = pool_size
        self.reader = StateReader(self.sandbox)
        #: The approvals Slack requests are built for (and whose state each check reads).
        self.pool: list[OpenApproval] = []
        #: Approvals open and ready, to replace a pool approval once it is decided.
        self.reserve: list[OpenApproval] = []
        #: Who may decide each approval the Slack target ever opened (decided ones too).
        self.approvers: dict[str, tuple[str, ...]] = {}
        #: Who sent a valid, authorized request naming each approval: its only deciders.
        self.voters: dict[str, set[str]] = {}
        #: Approvals the start_approval target started (closing decides them too).
        self.started: set[str] = set()
        self._kinds: dict[str, str] = {}
        self._opened = 0
        self._state: State | None = None
        self._capture = _RecordCapture()
        self._submission: dict[str, Any] = {}
        self._envelope = _sample("http_api_slack_interaction")
        self._sns = _sample("sns_approval")
        self._start_tokens = tuple(str(uuid.uuid4()) for _ in range(5))
        self._tmp = tempfile.TemporaryDirectory(prefix="approval-gate-fuzz-")
        self._slack_credentials = json.loads(
            self.sandbox.client("secretsmanager").get_secret_value(
                SecretId=self.sandbox.secret_arn
            )["SecretString"]
        )
        self.team_id = str(self._slack_credentials.get("team_id") or "")
        self.app_id = str(self._slack_credentials.get("app_id") or "")

    @property
    def watched(self) -> list[str]:
        return [approval.approval_id for approval in self.pool]

    # --- life -------------------------------------------------------------------------

    def __enter__(self) -> FuzzSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> FuzzSession:
        """Open `pool_size` approvals (one, two, group, one, …) and capture a real modal
        submission; a failure closes what was opened."""
        logging.getLogger().addHandler(self._capture)
        try:
            for user in OUTSIDERS:
                self.sandbox.slack.add_user(user)
            self._drain()
            kinds = [POOL_KINDS[i % len(POOL_KINDS)] for i in range(self.pool_size)]
            self.pool = self._open_approvals(kinds)
            self._submission = self._capture_submission(self.pool[0])
            self._state = self.reader.read(self.watched)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Check the decisions, decide what is still open, wait for every workflow, check
        what was sent to Slack. A step that fails is noted; the others still run."""
        steps = (
            self._check_deciders,
            self._decide_open_approvals,
            self._wait_for_workflows,
            self._check_sent_to_slack,
            self._note_unsuccessful_workflows,
        )
        try:
            for step in steps:
                try:
                    step()
                except Exception as exc:
                    self.report.notes.append(
                        f"closing: {step.__name__} failed: {type(exc).__name__}: {str(exc)[:200]}"
                    )
        finally:
            logging.getLogger().removeHandler(self._capture)
            self._tmp.cleanup()

    def _stop(self, approval_id: str) -> None:
        """Stop this approval's workflow (clean-up only: nothing could decide it)."""
        sfn = self.sandbox.client("stepfunctions")
        for execution in self.sandbox.executions():
            if execution["name"].endswith(approval_id) and execution["status"] == "RUNNING":
                sfn.stop_execution(executionArn=execution["executionArn"])

    def _wait_for_workflows(self) -> None:
        """Until every workflow this session started has ended (others may share the
        sandbox)."""
        mine = self.approvers.keys() | self.started
        try:
            _poll(
                lambda: (
                    not any(
                        status == "RUNNING" and name.rsplit("-", 1)[-1] in mine
                        for name, status in self.reader.executions().items()
                    )
                ),
                60,
                "this session's workflows to end",
            )
        except TimeoutError as exc:
            self.report.notes.append(str(exc))

    def _note_unsuccessful_workflows(self) -> None:
        """A workflow of this session that failed breaks no invariant of the request that
        started it, but tells of a defect further on: noted."""
        mine = self.approvers.keys() | self.started
        for name, status in self.reader.executions().items():
            approval_id = name.rsplit("-", 1)[-1]
            if status == "SUCCEEDED" or approval_id not in mine:
                continue
            described = self.reader.stepfunctions.describe_execution(
                executionArn=self.reader.arn(approval_id)
            )
            self.report.notes.append(
                f"workflow {name} ended {status}: "
                f"{described.get('error', '')} {str(described.get('cause', ''))[:200]}"
            )

    # --- approvals to fuzz against ------------------------------------------------------

    def _sns_event(self, pipeline: str, token: str) -> dict[str, Any]:
        event = copy.deepcopy(self._sns)
        message = json.loads(event["Records"][0]["Sns"]["Message"])
        message["approval"].update(
            {
                "pipelineName": pipeline,
                "stageName": "Approve",
                "actionName": "Gate",
                "token": token,
                "expires": _minute(datetime.now(UTC) + timedelta(days=3)),
            }
        )
        event["Records"][0]["Sns"]["Message"] = json.dumps(message)
        event["Records"][0]["Sns"]["Timestamp"] = datetime.now(UTC).isoformat()
        return event

    def _open_approvals(self, kinds: Sequence[str]) -> list[OpenApproval]:
        """Open one approval per kind through start_approval (pipelines the fake
        CodePipeline does not run, so nothing else posts to Slack), and wait for each
        request to show in Slack with its buttons."""
        from approval_gate.request import parse_approval_message

        ids = []
        for kind in kinds:
            self._opened += 1
            event = self._sns_event(f"fuzz-{kind}-{self._opened}", str(uuid.uuid4()))
            answer = self.sandbox.invoke(START_FUNCTION, event)
            if answer.get("started") != 1:
                raise RuntimeError(f"could not open an approval to fuzz: {answer}")
            approval_id = parse_approval_message(event["Records"][0]["Sns"]["Message"]).approval_id
            self._kinds[approval_id] = kind
            ids.append(approval_id)
        opened = [self._when_ready(approval_id) for approval_id in ids]
        self._drain()
        return opened

    def _when_ready(self, approval_id: str, timeout: float = 30) -> OpenApproval:
        from sandbox.client import has_buttons

        def probe() -> OpenApproval | None:
            item = self.reader.get_item(approval_id)
            if not item or "task_token" not in item or "message_ts" not in item:
                return None
            channel, ts = item.get("channel", {}).get("S"), item["message_ts"]["S"]
            message = self.sandbox.slack.find_message(channel, ts) if channel else None
            if message is None or not has_buttons(message):
                return None
            rules = json.loads(item["rules"]["S"])
            return OpenApproval(approval_id, message, self._may_decide(rules))

        opened: OpenApproval = _poll(probe, timeout, f"approval {approval_id} to open in Slack")
        self.approvers[approval_id] = opened.approvers
        return opened

    def _may_decide(self, rules: Mapping[str, Any]) -> tuple[str, ...]:
        approvers = rules.get("approvers") or {}
        users = list(approvers.get("users") or [])
        groups = {g["id"]: g["users"] for g in self.sandbox.slack.workspace()["groups"]}
        for group in approvers.get("groups") or []:
            users += [u for u in groups.get(group, []) if u not in users]
        return tuple(users)

    def _signed_event(self, payload: dict[str, Any]) -> dict[str, Any]:
        from sandbox.fake_slack import form_body

        body = form_body(payload)
        timestamp = str(int(time.time()))
        event = copy.deepcopy(self._envelope)
        event["headers"]["x-slack-request-timestamp"] = timestamp
        event["headers"]["x-slack-signature"] = sign(self.sandbox.signing_secret, timestamp, body)
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
        return event

    def _click(self, approval: OpenApproval, user: str, action: str) -> dict[str, Any]:
        from sandbox.fake_slack import block_actions_payload

        return block_actions_payload(
            self.sandbox.slack,
            message=approval.message,
            user_id=user,
            action_id=action,
            response_url=f"{self.server.url}/_sandbox/slack/response-url/fuzz",
        )

    def _capture_submission(self, approval: OpenApproval) -> dict[str, Any]:
        """A real view_submission: click Reject as an approver and build the submission of
        the modal that opens (never sent: the modal is closed again)."""
        from sandbox.fake_slack import view_submission_payload

        user = approval.approvers[0]
        answer = self.sandbox.invoke(
            SLACK_FUNCTION, self._signed_event(self._click(approval, user, "reject"))
        )
        views = [
            v
            for v in self.sandbox.slack.views()
            if v["view"].get("private_metadata") == approval.approval_id
        ]
        if answer.get("statusCode") != 200 or not views:
            raise RuntimeError("the reason modal did not open; cannot capture a submission")
        view = views[-1]
        payload = view_submission_payload(
            self.sandbox.slack,
            view_id=view["id"],
            user_id=user,
            values={"reason": {"reason": "Canary error rate is up 4%."}},
        )
        self.sandbox.slack.close_view(view["id"])
        self._drain()
        return payload

    def _decide_open_approvals(self) -> None:
        """End every workflow this session started that still waits: a signed rejection,
        with a reason, by one of its approvers (or, if it never reached Slack, note it)."""
        mine = self.approvers.keys() | self.started
        state = self.reader.read(slack=False)
        waiting = {n.rsplit("-", 1)[-1] for n, s in state.executions.items() if s == "RUNNING"}
        for approval_id, stored in state.approvals.items():
            status, votes, _, _ = json.loads(stored)
            if status != PENDING or approval_id not in mine or approval_id not in waiting:
                continue
            try:
                ready = self._when_ready(approval_id, timeout=10)
            except TimeoutError:
                self.report.notes.append(
                    f"approval {approval_id} never reached Slack; its workflow was stopped"
                )
                self._stop(approval_id)
                continue
            voters = set(votes or {})
            user = next((u for u in ready.approvers if u not in voters), None)
            if user is None:
                self.report.notes.append(f"approval {approval_id}: every approver has voted")
                continue
            payload = copy.deepcopy(self._submission)
            payload["user"].update({"id": user, "name": user.lower(), "username": user.lower()})
            payload["view"]["private_metadata"] = approval_id
            payload["view"]["callback_id"] = "approval_gate_reject"
            self.sandbox.invoke(SLACK_FUNCTION, self._signed_event(payload))
        self._drain()

    # --- worlds for the generators --------------------------------------------------------

    def slack_world(self) -> SlackWorld:
        return SlackWorld(
            approvals=self.pool,
            outsiders=OUTSIDERS,
            signing_secret=self.sandbox.signing_secret,
            team_id=self.team_id,
            app_id=self.app_id,
            click=self._click,
            submission=self._submission,
            envelope=self._envelope,
            now=time.time,
        )

    def start_world(self) -> StartWorld:
        return StartWorld(
            pipelines=("fuzz-start-a", "fuzz-start-b"),
            stages=("Approve",),
            actions=("Gate",),
            tokens=self._start_tokens,
            envelope=self._sns,
            now=lambda: datetime.now(UTC),
            fresh=0.03,
        )

    # --- secrets and logs -------------------------------------------------------------------

    def _secrets(self) -> dict[str, str]:
        """Every secret a response, a log line or Slack must never show (value -> label)."""
        found: dict[str, str] = {}
        for token in self.reader.tokens:
            found[token] = "a CodePipeline or task token from the approvals table"
        for token in self._start_tokens:
            for variant in (token, token.upper(), token.replace("-", "")):
                found[variant] = "a CodePipeline approval token of the SNS message"
        for key, value in self._slack_credentials.items():
            if isinstance(value, str) and value:
                found[value] = f"the Slack secret's {key}"
        return found

    def _drain(self) -> list[str]:
        lines = []
        captured = self.sandbox.logs.lines
        while captured:
            lines.append(captured.popleft())
        lines += self._capture.lines
        self._capture.lines = []
        return lines

    def _check_leaks(self, case: Case, texts: list[str]) -> None:
        secrets = {**self._secrets(), **_event_tokens(case.event)}
        leaked = find_secrets(texts, secrets)
        if not leaked:
            return
        # An echo of what the request itself carried (say, our own team id) is no leak.
        given = request_text(case.event)
        named = {label for value, label in secrets.items() if value in given}
        leaked = [label for label in leaked if label not in named or "token" in label]
        for label in dict.fromkeys(leaked):
            self._fail(case, "secret_leaked", f"{label} in a log line or the response")

    def _check_sent_to_slack(self) -> None:
        """Nothing sent to Slack (messages, modals, API arguments) holds a secret."""
        self.reader.read()
        secrets = {
            value: label
            for value, label in self._secrets().items()
            if "token" in label or "bot_token" in label or "signing_secret" in label
        }
        sent = [
            json.dumps(self.sandbox.slack.messages(), default=str),
            json.dumps(self.sandbox.slack.views(), default=str),
            json.dumps(self.sandbox.slack.calls(), default=str),
        ]
        for label in find_secrets(sent, secrets):
            self._fail(Case("slack", None, ["everything sent to Slack"]), "secret_leaked", label)

    def _read(self, culprit: Case | None, *args: Any, **kwargs: Any) -> State:
        """A snapshot; if the sandbox's state cannot be read any more (a request stored
        what DynamoDB cannot return), that is the last request's failure: stop."""
        try:
            return self.reader.read(*args, **kwargs)
        except Exception as exc:
            self._fail(
                culprit or Case("sandbox", None, ["(between requests)"]),
                "server_error",
                f"after this request the sandbox's state cannot be read: "
                f"{type(exc).__name__}: {str(exc)[:200]}",
            )
            raise FuzzAborted(str(exc)) from None

    def _fail(self, case: Case, kind: str, detail: str) -> Failure:
        failure = Failure(case.target, kind, case.describe(), detail)
        self.report.add(failure)
        return failure

    # --- one call -----------------------------------------------------------------------------

    def _invoke(self, function: str, case: Case) -> Any:
        """Call the handler as Lambda would; check (a) and (c) on what comes back."""
        try:
            answer = self.sandbox.invoke(function, case.event)
        except Exception as exc:  # a Lambda error: API Gateway answers 500
            if moto_race(exc):
                self.report.sandbox_errors += 1
                self.report.outcome(case.target, "sandbox error (moto race)")
                self._drain()
                return None
            detail = f"unhandled {type(exc).__name__}: {str(exc)[:300]}"
            self.report.outcome(case.target, f"exception {type(exc).__name__}")
            self._fail(case, "server_error", detail)
            self._check_leaks(case, [*self._drain(), detail])
            return None
        self._check_leaks(case, [*self._drain(), json.dumps(answer, default=str)])
        return answer

    # --- slack_interactions -------------------------------------------------------------------

    def judge(self, event: Any) -> Verdict:
        return judge(
            event,
            secret=self.sandbox.signing_secret,
            now=time.time(),
            team_id=self.team_id,
            app_id=self.app_id,
            approvers=self.approvers,
        )

    def run_slack(self, cases: Sequence[Case]) -> list[Failure]:
        """Send Slack interactions and check every invariant; the failures found.

        Forged requests run first, as one batch (nothing at all may change, not even an
        ephemeral message), then validly signed but unauthorized ones (only ephemeral
        answers to the clicker may appear), then each authorized one alone (only the
        approval it names may change). Batching keeps snapshots rare; the order cannot
        matter, since requests of the first two groups change nothing.
        """
        before = len(self.report.examples), self.report.failures
        judged = [(case, self.judge(case.event)) for case in cases]
        forged = [case for case, verdict in judged if not verdict.signed]
        refused = [case for case, verdict in judged if verdict.signed and not verdict.authorized]
        allowed = [(case, verdict) for case, verdict in judged if verdict.authorized]
        if forged:
            self._batch(forged, ephemerals_allowed=False)
        if refused:
            self._batch(refused, ephemerals_allowed=True)
        for case, verdict in allowed:
            self._authorized(case, verdict)
        if allowed:
            self._after_authorized(allowed)
        return self.report.examples[before[0] :] if self.report.failures > before[1] else []

    def _after_authorized(self, allowed: Sequence[tuple[Case, Verdict]]) -> None:
        """All of Slack and the workflows, once the authorized requests ran: changed only
        for the approvals they named (each request's own approval item and request
        message were checked right after it)."""
        assert self._state is not None
        named = {verdict.approval_id for _, verdict in allowed}
        after = self._read(allowed[-1][0], self.watched)
        found = self._relevant(changes(self._state, after))
        _allow_ephemerals(found)
        self._state = after
        for approval_id, what in found.items():
            if approval_id not in named:
                self._fail(
                    Case(SLACK, None, [case.describe() for case, _ in allowed[:3]]),
                    "unauthorized_change",
                    f"requests for {sorted(str(n) for n in named)} changed "
                    f"{approval_id or 'Slack'}: " + "; ".join(what),
                )

    def _slack_answer(self, case: Case) -> Any:
        """Send one request; its HTTP status (None when the handler raised)."""
        self.report.requests[SLACK] += 1
        answer = self._invoke(SLACK_FUNCTION, case)
        if answer is None:
            return None
        status = answer.get("statusCode") if isinstance(answer, dict) else None
        self.report.outcome(SLACK, str(status))
        if not isinstance(status, int) or status >= 500:
            self._fail(case, "server_error", f"answered {str(answer)[:200]}")
        return status

    def _relevant(self, found: dict[str, list[str]]) -> dict[str, list[str]]:
        """Changes to the pool's approvals, or that no approval explains. (Decided ones
        finish on their own, unwatched: `_check_deciders` checks their decisions; the
        start_approval target's workflows run on their own, unrelated to these requests.)"""
        watched = set(self.watched)
        return {a: w for a, w in found.items() if a == "" or a in watched}

    def _batch(self, cases: Sequence[Case], *, ephemerals_allowed: bool) -> None:
        assert self._state is not None
        answered = [(case, self._slack_answer(case)) for case in cases]
        after = self._read(cases[-1], self.watched)
        found = self._relevant(changes(self._state, after))
        if ephemerals_allowed:
            _allow_ephemerals(found)
        self._state = after
        for approval_id, what in found.items():
            # The likely culprits: answered 2xx (a refusal changes nothing), naming it.
            suspects = [c for c, status in answered if isinstance(status, int) and status < 300]
            naming = [c for c in suspects if approval_id and approval_id in request_text(c.event)]
            shown = (naming or suspects or list(cases))[:3]
            self._fail(
                Case(SLACK, None, [" | ".join(c.describe() for c in shown)]),
                "unauthorized_change",
                f"{'forged' if not ephemerals_allowed else 'unauthorized'} requests "
                f"(one of {len(shown)} shown, of {len(cases)} sent together) changed "
                f"{approval_id or 'Slack'}: {'; '.join(what)}",
            )

    def _authorized(self, case: Case, verdict: Verdict) -> None:
        assert self._state is not None and verdict.approval_id is not None
        named = verdict.approval_id
        self.voters.setdefault(named, set()).add(str(verdict.user_id))
        before = self._state
        self._slack_answer(case)
        after = self._read(case, self.watched, carry=before)
        found = self._relevant(changes(before, after))
        _allow_ephemerals(found)
        for approval_id, what in found.items():
            if approval_id != named:
                self._fail(
                    case,
                    "unauthorized_change",
                    f"a request for {named} changed {approval_id or 'Slack'}: " + "; ".join(what),
                )
        self._state = after
        if before.status(named) == PENDING and after.status(named) not in (PENDING, None):
            self.report.decisions += 1
            self._check_deciders([named], after)
            self._replace(named)

    def _check_deciders(self, ids: Sequence[str] | None = None, state: State | None = None) -> None:
        """Whoever a decision names sent a valid, authorized request for that approval."""
        state = state or self.reader.read(slack=False)
        for approval_id in ids if ids is not None else list(self.voters):
            stored = state.approvals.get(approval_id)
            if stored is None:
                continue
            status, _, decided_by, _ = json.loads(stored)
            strangers = set(decided_by or ()) - self.voters.get(approval_id, set())
            if status != PENDING and strangers:
                self._fail(
                    Case(SLACK, None, [f"the decision of {approval_id}"]),
                    "unauthorized_change",
                    f"{approval_id} is {status} by {sorted(strangers)}, who sent no valid, "
                    "authorized request for it",
                )

    def _replace(self, approval_id: str) -> None:
        """A decided approval leaves the pool (its workflow finishes on its own, watched no
        more); a ready one from the reserve takes its place."""
        for index, approval in enumerate(self.pool):
            if approval.approval_id != approval_id:
                continue
            if not self.reserve:
                self.reserve = self._open_approvals(POOL_KINDS * 2)
            kind = self._kinds.get(approval_id)
            same = [r for r in self.reserve if self._kinds.get(r.approval_id) == kind]
            fresh = (same or self.reserve)[0]
            self.reserve.remove(fresh)
            self.pool[index] = fresh
        self._drain()
        self._state = self._read(None, self.watched)

    # --- start_approval -----------------------------------------------------------------------

    @staticmethod
    def _named_approvals(event: Any) -> set[str]:
        """The approvals an SNS event may start: those of its messages that are valid."""
        from approval_gate.request import InvalidNotification, parse_approval_message

        records = event.get("Records") if isinstance(event, dict) else None
        named: set[str] = set()
        for record in records if isinstance(records, list) else []:
            sns = record.get("Sns") if isinstance(record, dict) else None
            if not isinstance(sns, dict):
                continue
            try:
                named.add(parse_approval_message(sns.get("Message")).approval_id)
            except InvalidNotification:
                continue
            except Exception:  # noqa: S112 - the handler's own call reports this one
                continue
        return named

    def run_start(self, cases: Sequence[Case]) -> list[Failure]:
        """Send SNS events to start_approval and check every invariant; the failures found.

        Afterwards the table and the workflows may hold new approvals only of the events'
        valid messages: a rejected message starts nothing.
        """
        before = len(self.report.examples), self.report.failures
        start = self._read(None, slack=False)
        named: set[str] = set()
        for case in cases:
            named |= self._named_approvals(case.event)
            self._start_answer(case)
        after = self._read(cases[-1], slack=False)
        created = (after.approvals.keys() - start.approvals.keys()) | {
            name.rsplit("-", 1)[-1] for name in after.executions.keys() - start.executions.keys()
        }
        self.started |= created
        if created - named:
            culprit = cases[0] if len(cases) == 1 else Case(START, None, [f"one of {len(cases)}"])
            self._fail(
                culprit,
                "unauthorized_change",
                f"started {sorted(created - named)} from messages that are not valid requests",
            )
        return self.report.examples[before[0] :] if self.report.failures > before[1] else []

    def _start_answer(self, case: Case) -> None:
        self.report.requests[START] += 1
        answer = self._invoke(START_FUNCTION, case)
        if answer is None:
            return
        counts = ("started", "duplicates", "rejected")
        if not isinstance(answer, dict) or not all(isinstance(answer.get(k), int) for k in counts):
            self._fail(case, "server_error", f"answered {str(answer)[:200]}")
            self.report.outcome(START, "malformed answer")
            return
        for key in counts:
            if answer[key]:
                self.report.outcomes.setdefault(START, Counter())[f"records {key}"] += answer[key]

    # --- the policy loader --------------------------------------------------------------------

    def run_policy(self, cases: Sequence[PolicyCase]) -> list[Failure]:
        found = []
        for case in cases:
            self.report.requests[POLICY] += 1
            outcome, problem = check_policy(case, Path(self._tmp.name))
            self.report.outcome(POLICY, outcome)
            if problem:
                failure = Failure(POLICY, "policy_error", case.describe(), problem)
                self.report.add(failure)
                found.append(failure)
        return found


_UUID = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")


def _event_tokens(event: Any) -> dict[str, str]:
    """The CodePipeline tokens an SNS event carries (secrets the handler must not log)."""
    found: dict[str, str] = {}
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records if isinstance(records, list) else []:
        sns = record.get("Sns") if isinstance(record, dict) else None
        message = sns.get("Message") if isinstance(sns, dict) else None
        try:
            doc = json.loads(message) if isinstance(message, str) else None
        except (ValueError, RecursionError):
            continue
        approval = doc.get("approval") if isinstance(doc, dict) else None
        token = approval.get("token") if isinstance(approval, dict) else None
        if isinstance(token, str):
            uuid_like = _UUID.search(token)
            if uuid_like:
                found[uuid_like.group()] = "the CodePipeline token of the SNS message"
    return found


def _allow_ephemerals(found: dict[str, list[str]]) -> None:
    """Ephemeral answers to the clicker are no state change: drop them from `found`."""
    kept = [what for what in found.pop("", []) if "ephemeral" not in what]
    if kept:
        found[""] = kept


# --------------------------------------------------------------------------- policy checks

_TOP = ("policy", "defaults", "people", "pipelines")


def policy_corpus() -> list[Any]:
    """The policies the repository ships and tests with, parsed: the fuzz's seeds."""
    import yaml

    files = [
        ROOT / "config" / "policy.yaml",
        ROOT / "bench" / "policy.yaml",
        FUZZ_POLICY,
        *sorted((ROOT / "tests" / "policies").glob("*.yaml")),
    ]
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in files if path.exists()]


def names_a_key(message: str, document: Any) -> bool:
    """Does a PolicyError's message start with a key path (or `policy:` for the whole)?"""
    if message.startswith(_TOP):
        return True
    keys = document.keys() if isinstance(document, Mapping) else ()
    return any(message.startswith(f"{key}: ") for key in keys if isinstance(key, str))


def _top_keys(case: PolicyCase) -> Any:
    """The document as the loader saw it (a text mutation may have added keys)."""
    import yaml

    text = case.text
    if case.form == "file" and case.raw is not None:
        text = case.raw.decode("utf-8", "replace")
    if text is None:
        return case.document
    try:
        return yaml.safe_load(text)
    except Exception:
        return case.document


def check_policy(case: PolicyCase, folder: Path) -> tuple[str, str | None]:
    """Load the case's policy: ("loaded" | "PolicyError" | the exception, problem or None)."""
    from approval_gate.policy import Policy, PolicyError, load_policy, load_policy_file

    path = folder / "policy.yaml"
    try:
        if case.form == "document":
            policy = Policy.from_document(case.document)
        elif case.form == "yaml":
            policy = load_policy(case.text or "")
        else:
            path.write_bytes(case.raw or b"")
            policy = load_policy_file(path)
    except PolicyError as error:
        message = str(error)
        if case.form == "file":
            if not message.startswith(f"{path}: "):
                return "PolicyError", f"the error names not the file: {message[:200]!r}"
            message = message.removeprefix(f"{path}: ")
            if message.startswith("cannot read the policy file"):
                return "PolicyError", None  # not text: the file is what it names
        if not names_a_key(message, case.document) and not names_a_key(message, _top_keys(case)):
            return "PolicyError", f"the error names no key: {message[:200]!r}"
        return "PolicyError", None
    except Exception as error:
        return type(error).__name__, f"raised {type(error).__name__}: {str(error)[:200]}"
    return "loaded", policy_works(policy)


def policy_works(policy: Any) -> str | None:
    """A policy that loads must work: resolve, store and restore its rules, compute a
    deadline, and spell its durations (as start_approval and the workflow do)."""
    from approval_gate.policy import Rules, policy_ids
    from approval_gate.policy_fields import format_duration, parse_duration
    from approval_gate.starting import decision_deadline, workflow_input  # noqa: F401

    now = datetime.now(UTC)
    names = ["web-app", "prod-web", "x"] + [
        selectors["match"].replace("*", "x").replace("?", "x") for selectors, _ in policy.pipelines
    ]
    try:
        policy_ids(policy)
        for name in names:
            rules = policy.resolve(name, "Approve", "Gate")
            restored = Rules.from_dict(json.loads(json.dumps(rules.to_dict())))
            if restored != rules:
                return f"rules for {name!r} do not survive the approvals table"
            decision_deadline(now, now + timedelta(days=60), rules.deadline, rules.deadline_margin)
            for seconds in (rules.deadline, rules.deadline_margin, rules.reminder_every):
                if parse_duration(format_duration(seconds)) != seconds:
                    return f"duration {seconds} does not spell back"
                timedelta(seconds=seconds)
    except Exception as error:
        return f"loaded, then failed when used: {type(error).__name__}: {str(error)[:200]}"
    return None


# --------------------------------------------------------------------------- the runner


def split(count: int, shares: Mapping[str, float] | None = None) -> dict[str, int]:
    """`count` requests shared between the targets (the first ones take the rounding)."""
    shares = shares or DEFAULT_SHARES
    total = sum(shares.values())
    counts = {target: int(count * share / total) for target, share in shares.items()}
    first = next(iter(counts))
    counts[first] += count - sum(counts.values())
    return counts


@contextmanager
def sandbox_server(policy: Path = FUZZ_POLICY) -> Iterator[Any]:
    """A sandbox on a free loopback port (its fake Slack answers the handlers' calls)."""
    from sandbox.server import SandboxServer

    server = SandboxServer(policy_file=policy, port=0).start()
    try:
        yield server
    finally:
        server.stop()


def chooser_for(seed: int, target: str) -> Chooser:
    """One stream per target, so changing one target's count leaves the others' alone."""
    return RandomChooser(seed * 1_000 + TARGETS.index(target))


def run_fuzz(
    count: int,
    seed: int = 0,
    *,
    server: Any = None,
    shares: Mapping[str, float] | None = None,
    chunk: int = 200,
    out: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Send `count` generated requests across the targets and check every invariant.

    `server`: a running `sandbox.server.SandboxServer` to borrow (its policy should be
    reliability/policy.yaml to reach every path); without one, a sandbox is started and
    stopped here. `shares`: the part of `count` per target (default 60 % Slack, 25 % SNS,
    15 % policy). Deterministic for a seed, but for the clock-bound parts (timestamps,
    tokens). Never raises for a broken invariant: read the report.
    """
    from sandbox.engine import make_domain_importable

    make_domain_importable()  # approval_gate, as the functions' layer puts it on the path
    report = FuzzReport(seed=seed)
    counts = split(count, shares)
    started = time.perf_counter()
    if server is None:
        with sandbox_server() as own:
            _run(own, report, counts, seed, chunk, out)
    else:
        _run(server, report, counts, seed, chunk, out)
    report.total_seconds = time.perf_counter() - started
    return report


def _run(
    server: Any,
    report: FuzzReport,
    counts: Mapping[str, int],
    seed: int,
    chunk: int,
    out: Callable[[str], None] | None,
) -> None:
    with FuzzSession(server, report) as session:
        try:
            # Slack first: start_approval's workflows then run on their own, unobserved.
            for target in (SLACK, START, POLICY):
                _run_target(session, target, counts.get(target, 0), seed, chunk)
                if out is not None and counts.get(target, 0):
                    out(
                        f"{target}: {report.requests[target]} requests in "
                        f"{report.seconds[target]:.1f} s, {report.failures} failure(s) so far"
                    )
        except FuzzAborted as stopped:
            report.notes.append(f"stopped early: the sandbox's state became unreadable ({stopped})")


def _run_target(session: FuzzSession, target: str, wanted: int, seed: int, chunk: int) -> None:
    chooser = chooser_for(seed, target)
    corpus = policy_corpus() if target == POLICY else []
    began = time.perf_counter()
    try:
        sent = 0
        while sent < wanted:
            size = min(chunk, wanted - sent)
            if target == SLACK:
                world = session.slack_world()
                session.run_slack([slack_case(chooser, world) for _ in range(size)])
            elif target == START:
                world_start = session.start_world()
                session.run_start([start_case(chooser, world_start) for _ in range(size)])
            else:
                session.run_policy([policy_case(chooser, corpus) for _ in range(size)])
            sent += size
    finally:
        session.report.seconds[target] = time.perf_counter() - began
