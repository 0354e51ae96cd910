"""A soak under injected faults (issue 8, point 5): many approvals, Slack and CodePipeline
failing some of the gate's calls, every approval checked to its end.

`run_soak(approvals, slack_failure_rate, codepipeline_failure_rate, seed)` starts a
sandbox (reliability/soak.yaml) and drives it over HTTP as bench/throughput.py does, as
CodePipeline and Slack's people would:

1. sets the faults: Slack, every method, `slack_failure_rate` shared equally between
   `rate_limited`, `server_error` and `timeout` (held 3.5 s, past the sandbox's 3 s client
   timeout); CodePipeline, every operation, `throttled` at `codepipeline_failure_rate`;
2. keeps `at_once` runs open at a time until `approvals` have started;
3. clicks each request once it appears in Slack: Approve as U0ALICE, or (one in three)
   Reject as U0BOB with a reason in the modal. Like a person, it clicks again when the
   gate says the form could not open, or answers 5xx, while the request is still open;
   it keeps its own account of which clicks the gate answered 200;
4. waits, within `budget` seconds, for every approval to end, then checks, with the
   independent oracles of reliability.observed, that each reached a final state, that
   CodePipeline received the result the harness's clicks, the policy and the deadline
   imply (a click answered 200 whose approval expired is lost), that the gate made one
   PutApprovalResult attempt (the fake's call log), that no request was posted twice nor
   left with live buttons, and that /slack/interactions never answered 5xx.

What it cannot check without the sandbox's process (the functions' logs, the
executions) it reads in process, to explain each approval that went wrong.
"""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability import ROOT
from reliability.observed import (
    Counted,
    attempts_text,
    expected_result,
    judge_result,
    live_message_problem,
    reported_again,
    result_attempts,
    took_effect,
)
from sandbox.client import SandboxClient, has_buttons, request_message
from sandbox.faults import FunctionTimedOut, InjectedFunctionError
from sandbox.server import SandboxServer

SOAK_POLICY = Path(__file__).with_name("soak.yaml")
INTERACTIONS_FUNCTION = "SlackInteractionsFunction"
APPROVER = "U0ALICE"
REJECTER = "U0BOB"
#: The transient Slack faults the soak injects, in the order the sandbox tries them.
SLACK_KINDS = ("rate_limited", "server_error", "timeout")
#: How long a `timeout` holds its answer: past the gate's Slack client timeout in the
#: sandbox (1 s, sandbox.engine.SLACK_CLIENT_TIMEOUT).
TIMEOUT_DELAY = 3.5
#: The faults that take effect or hit the platform (issue 18), each ``(service, method,
#: kind, rate, options)``, set with the soak's seed besides the transient ones: a Slack or
#: CodePipeline call carried out whose answer is lost; DynamoDB and Step Functions
#: throttling (botocore retries, then the step or Lambda does); an execution index that
#: lags one second behind the table; functions that raise or run past their timeout.
PLATFORM_FAULTS: tuple[tuple[str, str, str, float, dict[str, float]], ...] = (
    ("slack", "*", "timeout_after_effect", 0.02, {"delay": TIMEOUT_DELAY}),
    ("slack", "*", "reset_after_effect", 0.02, {}),
    ("codepipeline", "*", "timeout_after_effect", 0.03, {}),
    ("codepipeline", "*", "reset_after_effect", 0.03, {}),
    ("dynamodb", "*", "throttled", 0.05, {}),
    ("dynamodb", "Query", "index_lag", 1.0, {"delay": 1.0}),
    ("stepfunctions", "*", "throttled", 0.1, {}),
    ("lambda", "Invoke", "error", 0.02, {}),
    ("lambda", "Invoke", "timeout", 0.01, {"delay": 1.0}),
)
#: A person tries a click this many times at most (the form did not open, or a 5xx).
CLICK_ATTEMPTS = 5
#: How long the harness waits for a modal to open after clicking Reject.
VIEW_WAIT = 3.0
#: The soak policy's deadline (soak.yaml), on the harness's clock from a run's start: a
#: click counted before it decides; after it, the deadline rejects.
DEADLINE = 120.0
#: Seconds between two looks at the sandbox.
POLL = 0.3
#: How long after its start an approval may take to show in Slack before the report
#: calls it "not asked in Slack" (the workflow retries Slack for about 30 s).
ASK_WAIT = 60.0
REASONS = (
    "The canary's error rate doubled.",
    "Freeze until the incident review.",
    "Missing the database migration.",
)


@dataclass
class Trouble:
    """One approval that went wrong, with what the sandbox says about it."""

    pipeline: str
    approval_id: str | None
    what: str
    state: str
    logs: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.pipeline} ({self.approval_id or 'no approval id'}): {self.what}"]
        lines.append(f"    state: {self.state}")
        lines += [f"    log: {line}" for line in self.logs]
        return "\n".join(lines)


@dataclass
class SoakReport:
    """What the soak ran, what it injected, and every approval that went wrong."""

    seed: int = 0
    slack_failure_rate: float = 0.0
    codepipeline_failure_rate: float = 0.0
    #: Approvals asked for, and runs that reached their approval (a token).
    approvals: int = 0
    started: int = 0
    #: Requests that appeared in Slack with their buttons.
    asked: int = 0
    #: Final outcomes (approved, rejected, expired, ...) of the decision records.
    outcomes: Counter[str] = field(default_factory=Counter)
    #: No final state, CodePipeline never heard the gate's result, or a decision the gate
    #: answered 200 (an Approve click, a Reject's reason) that CodePipeline's result does
    #: not carry (expired, or the other outcome): judged by reliability.observed.
    lost: list[Trouble] = field(default_factory=list)
    #: Never shown in Slack with buttons within ASK_WAIT (they may still have ended, by
    #: their deadline).
    not_asked: list[Trouble] = field(default_factory=list)
    #: More than one result from the gate for one token, or more than one
    #: PutApprovalResult attempt in the fake's call log (reliability.observed).
    decided_twice: list[Trouble] = field(default_factory=list)
    #: A result whose status is not what the harness's clicks, the policy and the
    #: deadline imply (not the gate's own record).
    wrong_result: list[Trouble] = field(default_factory=list)
    #: More than one request message with buttons, or buttons left after the decision.
    live_messages: list[Trouble] = field(default_factory=list)
    #: Approvals whose request was posted more than once at top level, with when.
    duplicate_requests: list[Trouble] = field(default_factory=list)
    #: Workflows that did not succeed (status → count), and the first few.
    workflows: Counter[str] = field(default_factory=Counter)
    failed_workflows: list[Trouble] = field(default_factory=list)
    #: Answers of /slack/interactions to the soak's clicks and submissions.
    interaction_statuses: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    #: Clicks whose function met an injected Lambda fault (each answered 5xx, as on AWS).
    faulted_clicks: int = 0
    #: Clicked (the decision the soak wanted) but ended otherwise (expired, mostly).
    decided_otherwise: list[Trouble] = field(default_factory=list)
    #: Faults injected by "service kind" (GET /_sandbox/faults "injected", summed over
    #: methods), and the calls that could have failed, by service.
    faults: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    #: What slack_interactions raised, each time it answered 5xx (from the sandbox's
    #: process: API Gateway answers a bare 500 and the function logs nothing).
    crashes: list[str] = field(default_factory=list)
    #: Approvals whose request went out by the fallback topic (Slack failed for good).
    fallbacks: list[str] = field(default_factory=list)
    #: Problems of the harness itself (a sandbox path that failed).
    harness_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Seconds from a run's start to its request in Slack, and to its result.
    ask_latency: list[float] = field(default_factory=list)
    decide_latency: list[float] = field(default_factory=list)
    timed_out: bool = False

    @property
    def unexplained_5xx(self) -> int:
        """5xx answers to clicks, less those an injected Lambda fault explains."""
        return max(0, self.server_errors - self.faulted_clicks)

    @property
    def bad(self) -> dict[str, int]:
        """Every count that must be 0."""
        return {
            "approvals lost": len(self.lost),
            "decided twice": len(self.decided_twice),
            "wrong result": len(self.wrong_result),
            "duplicate requests": len(self.duplicate_requests),
            "live request messages": len(self.live_messages),
            "5xx responses": self.unexplained_5xx,
            "not asked in Slack": len(self.not_asked),
            "workflows failed": sum(n for s, n in self.workflows.items() if s != "SUCCEEDED"),
        }

    @property
    def ok(self) -> bool:
        return not any(self.bad.values()) and not self.harness_errors

    def summary(self) -> str:
        def pct(values: list[float], q: float) -> str:
            if not values:
                return "-"
            ordered = sorted(values)
            return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f} s"

        lines = [
            f"soak: {self.approvals} approvals (seed {self.seed}; Slack failing "
            f"{self.slack_failure_rate:.0%}, CodePipeline {self.codepipeline_failure_rate:.0%}) "
            f"in {self.seconds:.0f} s"
            + (" — stopped at its time budget" if self.timed_out else ""),
            f"  started {self.started}, asked in Slack {self.asked}, outcomes "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"),
            f"  to Slack: median {pct(self.ask_latency, 0.5)}, p95 {pct(self.ask_latency, 0.95)}; "
            f"to CodePipeline's result: median {pct(self.decide_latency, 0.5)}, "
            f"p95 {pct(self.decide_latency, 0.95)}",
            "  faults injected: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none")
            + " (calls that could fail: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items()))
            + ")",
            "  /slack/interactions answered: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.interaction_statuses.items())) or "-"),
            "  workflows: " + (", ".join(f"{k} {v}" for k, v in sorted(self.workflows.items()))),
            "  asked by the fallback topic (Slack failed for good), then again in Slack: "
            + " ".join([str(len(self.fallbacks)), *self.fallbacks[:10]]),
            "  " + "; ".join(f"{k}: {v}" for k, v in self.bad.items()),
        ]
        for title, troubles in (
            ("lost", self.lost),
            ("not asked in Slack", self.not_asked),
            ("decided twice", self.decided_twice),
            ("duplicate request", self.duplicate_requests),
            ("live request messages", self.live_messages),
            ("wrong result", self.wrong_result),
            ("workflow failed", self.failed_workflows),
            ("clicked, but ended otherwise", self.decided_otherwise),
        ):
            for trouble in troubles[:10]:
                lines.append(f"  {title}: {trouble}")
            if len(troubles) > 10:
                lines.append(f"  {title}: … and {len(troubles) - 10} more")
        lines += [f"  5xx: {crash}" for crash in self.crashes[:10]]
        lines += [f"  harness: {error}" for error in self.harness_errors[:10]]
        return "\n".join(lines)


@dataclass
class _Run:
    """The soak's view of one approval."""

    index: int
    pipeline: str
    decision: str  # approve | reject
    started_at: float = 0.0
    token: str | None = None
    error: str | None = None
    approval_id: str | None = None
    asked_at: float | None = None
    decided_at: float | None = None
    message: dict[str, Any] | None = None
    clicking: Future[None] | None = None
    record: dict[str, Any] | None = None
    results: int = 0
    #: The decisions the gate answered 200 (the harness's own account of its clicks).
    counted: list[Counted] = field(default_factory=list)
    #: Decisions clicked that the gate answered 5xx or not at all: they may have counted.
    uncertain: list[str] = field(default_factory=list)

    @property
    def final(self) -> bool:
        if self.error is not None:
            return True
        if self.record is None or self.record["outcome"] is None:
            return False
        return self.results > 0 or self.record["outcome"] == "decided_elsewhere"


@contextmanager
def noting_crashes(sandbox: Any, function: str, found: list[str]) -> Iterator[None]:
    """Note what `function` raises while the soak runs (the sandbox's HTTP front turns it
    into a bare 500, as API Gateway does): the exception and where in our code."""
    original = sandbox.invoke

    def invoke(name: str, event: Any) -> Any:
        try:
            return original(name, event)
        except Exception as exc:
            if name == function and not isinstance(exc, InjectedFunctionError | FunctionTimedOut):
                ours = [
                    f"{Path(f.filename).relative_to(ROOT)}:{f.lineno} {f.name}"
                    for f in traceback.extract_tb(exc.__traceback__)
                    if f.filename.startswith(str(ROOT / "functions"))
                ]
                found.append(f"{name} raised {exc!r} at {' < '.join(reversed(ours))}")
            raise

    shadowed = "invoke" in vars(sandbox)
    sandbox.invoke = invoke
    try:
        yield
    finally:
        if shadowed:
            sandbox.invoke = original
        else:
            del sandbox.invoke


def slack_fault_rates(total: float, kinds: int = len(SLACK_KINDS)) -> list[float]:
    """Rates for `kinds` faults tried in turn so that each fails an equal share of calls
    and `total` fail in all: the n-th fires on (total / kinds) / (1 - n·total / kinds)
    of the calls the earlier ones let through."""
    share = total / kinds
    return [share / (1 - n * share) for n in range(kinds)]


class _Soak:
    def __init__(
        self,
        server: SandboxServer,
        *,
        approvals: int,
        slack_failure_rate: float,
        codepipeline_failure_rate: float,
        seed: int,
        at_once: int,
        budget: float,
        feed: bool,
        out: Callable[[str], None] | None,
        deadline: float = 0.0,
        platform_faults: bool = True,
        settle: bool = True,
    ) -> None:
        self.server = server
        self.platform_faults = platform_faults
        self.settle = settle
        self.client = SandboxClient(server.url, timeout=60)
        self.report = SoakReport(
            seed=seed,
            slack_failure_rate=slack_failure_rate,
            codepipeline_failure_rate=codepipeline_failure_rate,
            approvals=approvals,
        )
        self.seed = seed
        self.at_once = at_once
        self.budget = budget
        self.out = out
        self.deadline = deadline or DEADLINE
        chooser = random.Random(seed)
        prefix = "soakfeed" if feed else "soak"
        self.runs = [
            _Run(i, f"{prefix}-{seed}-{i}", "reject" if chooser.random() < 1 / 3 else "approve")
            for i in range(approvals)
        ]
        self._lock = threading.Lock()

    # --- faults ------------------------------------------------------------------------

    def set_faults(self) -> None:
        rates = slack_fault_rates(self.report.slack_failure_rate)
        for kind, rate in zip(SLACK_KINDS, rates, strict=True):
            options = {"delay": TIMEOUT_DELAY} if kind == "timeout" else {}
            self.client.set_fault("slack", "*", kind, rate, self.seed, **options)
        if self.report.codepipeline_failure_rate:
            self.client.set_fault(
                "codepipeline", "*", "throttled", self.report.codepipeline_failure_rate, self.seed
            )
        if self.platform_faults:
            for service, method, kind, rate, options in PLATFORM_FAULTS:
                self.client.set_fault(service, method, kind, rate, self.seed, **options)

    def clear_faults(self) -> None:
        """Remove the soak's faults (rate 0), so a borrowed sandbox works normally again."""
        for kind in SLACK_KINDS:
            self.client.set_fault("slack", "*", kind, 0, self.seed)
        self.client.set_fault("codepipeline", "*", "throttled", 0, self.seed)
        for service, method, kind, _, _ in PLATFORM_FAULTS:
            self.client.set_fault(service, method, kind, 0, self.seed)

    # --- one approval ------------------------------------------------------------------

    def start(self, run: _Run) -> None:
        run.started_at = time.monotonic()
        status, answer = self.client.request("POST", f"/_sandbox/pipelines/{run.pipeline}/runs", {})
        if status != 200 or not isinstance(answer, dict) or not answer.get("approvalToken"):
            run.error = f"POST …/runs answered {status}: {answer}"
            self.report.harness_errors.append(f"{run.pipeline}: {run.error}")
            return
        run.token = str(answer["approvalToken"])

    def _interaction(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST a sandbox path that sends an interaction as Slack; its answer, with the
        interaction's status counted (a sandbox path that fails counts as a 5xx too:
        the interaction got no answer in time)."""
        status, answer = self.client.request("POST", path, body)
        if status != 200 or not isinstance(answer, dict):
            with self._lock:
                self.report.interaction_statuses[f"no answer ({status})"] += 1
                self.report.server_errors += status >= 500
                if status < 500:
                    self.report.harness_errors.append(f"POST {path} answered {status}: {answer}")
            return None
        interaction = int(answer.get("status") or 0)
        with self._lock:
            self.report.interaction_statuses[str(interaction)] += 1
            self.report.server_errors += interaction >= 500
        return answer

    def click(self, run: _Run) -> None:
        """Approve, or Reject with a reason; again, as a person would, while it is open."""
        assert run.message is not None
        user = APPROVER if run.decision == "approve" else REJECTER
        for _attempt in range(CLICK_ATTEMPTS):
            if run.final:
                return
            answer = self._interaction(
                "/_sandbox/slack/click",
                {
                    "channel": run.message["channel"],
                    "ts": run.message["ts"],
                    "action_id": run.decision,
                    "user": user,
                },
            )
            if answer is None or answer["status"] != 200:
                if answer is None or answer["status"] >= 500:
                    run.uncertain.append(run.decision)
                continue
            if run.decision == "approve":
                self._counted(run, user)
                return
            view = self._wait_view(run, user)
            if view is None:  # the gate said the form could not open: click again
                continue
            submitted = self._interaction(
                "/_sandbox/slack/submit",
                {
                    "view_id": view["id"],
                    "user": user,
                    "values": {"reason": {"reason": REASONS[run.index % len(REASONS)]}},
                },
            )
            if submitted is not None and submitted["status"] == 200:
                self._counted(run, user)
                return
            if submitted is None or submitted["status"] >= 500:
                run.uncertain.append(run.decision)

    def _counted(self, run: _Run, user: str) -> None:
        run.counted.append(Counted(run.decision, user, time.monotonic() - run.started_at))

    def _wait_view(self, run: _Run, user: str) -> dict[str, Any] | None:
        until = time.monotonic() + VIEW_WAIT
        while time.monotonic() < until:
            views = [
                v
                for v in self.client.get("/_sandbox/slack/views")
                if v["view"].get("private_metadata") == run.approval_id
                and v.get("user") == user
                and not v["closed"]
            ]
            if views:
                return dict(views[-1])
            time.sleep(0.1)
        return None

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> SoakReport:
        began = time.monotonic()
        self.set_faults()
        try:
            with noting_crashes(self.server.sandbox, INTERACTIONS_FUNCTION, self.report.crashes):
                self._drive(began)
        finally:
            self.clear_faults()
        self.report.seconds = time.monotonic() - began
        self.check()
        return self.report

    def _drive(self, began: float) -> None:
        pending = list(self.runs)
        by_pipeline = {run.pipeline: run for run in self.runs}
        with (
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="soak-start") as starters,
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="soak-click") as clickers,
        ):
            starting: list[Future[None]] = []
            last_note = began
            while True:
                now = time.monotonic()
                starting = [f for f in starting if not f.done()]
                open_runs = [r for r in self.runs if r.started_at and not r.final]
                while pending and len(open_runs) + len(starting) < self.at_once:
                    run = pending.pop(0)
                    run.started_at = now
                    starting.append(starters.submit(self.start, run))
                    open_runs.append(run)
                self.look(by_pipeline, clickers, now)
                if not pending and not starting and all(r.final for r in self.runs):
                    break
                if now - began > self.budget:
                    self.report.timed_out = True
                    break
                if self.out is not None and now - last_note > 30:
                    last_note = now
                    done = sum(1 for r in self.runs if r.final)
                    self.out(
                        f"  soak: {now - began:.0f} s, {len(self.runs) - len(pending)} started, "
                        f"{done} ended"
                    )
                time.sleep(POLL)
        if self.settle:
            self.server.sandbox.wait_for_executions(
                timeout=max(5.0, began + self.budget + 30 - now)
            )
        self.look(by_pipeline, None, time.monotonic())

    def look(
        self, by_pipeline: dict[str, _Run], clickers: ThreadPoolExecutor | None, now: float
    ) -> None:
        """One look at the sandbox: records, results and requests; click what appeared."""
        for record in self.client.approvals():
            run = by_pipeline.get(record["pipeline"])
            if run is not None:
                run.record = record
                run.approval_id = record["approval_id"]
        counts = Counter(
            r["token"] for r in self.client.approval_results() if r["source"] == "gate"
        )
        unasked = [r for r in self.runs if r.approval_id and r.asked_at is None]
        messages = self.client.messages() if unasked else []
        for run in self.runs:
            if run.token is not None:
                run.results = counts[run.token]
                if run.results and run.decided_at is None:
                    run.decided_at = now
        for run in unasked:
            assert run.approval_id is not None
            message = request_message(messages, run.approval_id)
            if message is None or not has_buttons(message):
                continue
            run.asked_at, run.message = now, message
            if clickers is not None and not run.final:
                run.clicking = clickers.submit(self.click, run)

    # --- the checks --------------------------------------------------------------------

    def check(self) -> None:
        report = self.report
        snapshot = self.client.faults()
        for service, methods in snapshot["injected"].items():
            for kinds in methods.values():
                for kind, count in kinds.items():
                    report.faults[f"{service} {kind}"] += count
        for service, methods in snapshot["calls"].items():
            report.calls[service] += sum(methods.values())
        # A click whose function Lambda failed (an injected error or timeout) is answered
        # 5xx by API Gateway, as on AWS: those answers are the fault's, not the gate's.
        report.faulted_clicks = sum(
            1
            for invocation in self.server.sandbox.invocations()
            if invocation["function"] == INTERACTIONS_FUNCTION and invocation["fault"]
        )
        results: dict[str, list[dict[str, Any]]] = {}
        for result in self.client.approval_results():
            results.setdefault(result["token"], []).append(result)
        posted: dict[str, list[str]] = {}
        ours = {run.approval_id for run in self.runs if run.approval_id}
        for call in self.client.calls():
            if call["method"] != "chat.postMessage" or not took_effect(call):
                continue
            if call["args"].get("thread_ts"):
                continue
            text = json.dumps(call["args"].get("blocks") or [])
            for approval_id in ours:
                if approval_id in text:
                    posted.setdefault(approval_id, []).append(call["at"])
        fallbacks = self._fallbacks()
        executions = self._executions()
        slack_calls = self.client.calls()
        pipeline_calls = self.client.codepipeline_calls()
        messages = self.client.messages()
        for run in self.runs:
            self._check_one(run, results.get(run.token or "", []), executions)
            self._observe(run, results.get(run.token or "", []), pipeline_calls, executions)
            if run.approval_id is not None:
                live = live_message_problem(
                    slack_calls,
                    messages,
                    run.approval_id,
                    decided=run.record is not None and run.record["outcome"] is not None,
                )
                if live is not None:
                    state = self._state(
                        run, results.get(run.token or "", []), executions.get(run.approval_id)
                    )
                    report.live_messages.append(self._trouble(run, live, state))
            if run.approval_id in fallbacks:
                report.fallbacks.append(run.pipeline)
            times = posted.get(run.approval_id or "", [])
            if len(times) > 1:
                state = self._state(
                    run, results.get(run.token or "", []), executions.get(run.approval_id or "")
                )
                report.duplicate_requests.append(
                    self._trouble(
                        run,
                        f"the request was posted {len(times)} times, at {', '.join(times)}",
                        state,
                    )
                )

    def _check_one(
        self, run: _Run, results: list[dict[str, Any]], executions: dict[str, dict[str, Any]]
    ) -> None:
        report = self.report
        if run.token is not None:
            report.started += 1
        if run.asked_at is not None:
            report.asked += 1
            report.ask_latency.append(run.asked_at - run.started_at)
        if run.decided_at is not None:
            report.decide_latency.append(run.decided_at - run.started_at)
        execution = executions.get(run.approval_id or "")
        state = self._state(run, results, execution)
        if execution is not None:
            report.workflows[execution["status"]] += 1
            if execution["status"] != "SUCCEEDED":
                report.failed_workflows.append(
                    self._trouble(run, "the workflow did not succeed", state)
                )
        outcome = run.record["outcome"] if run.record else None
        if outcome is not None:
            report.outcomes[outcome] += 1
        gate = [r for r in results if r["source"] == "gate"]
        if run.token is None:
            report.lost.append(self._trouble(run, "the run never reached its approval", state))
        elif outcome is None:
            report.lost.append(self._trouble(run, "no final state", state))
        elif not gate and outcome != "decided_elsewhere":
            report.lost.append(
                self._trouble(run, f"{outcome}, but CodePipeline heard nothing", state)
            )
        if len(gate) > 1:
            report.decided_twice.append(self._trouble(run, f"{len(gate)} results", state))
        if run.token is not None and run.asked_at is None:
            report.not_asked.append(self._trouble(run, "never shown in Slack with buttons", state))
        elif run.asked_at is not None and run.asked_at - run.started_at > ASK_WAIT:
            report.not_asked.append(
                self._trouble(
                    run, f"shown in Slack only {run.asked_at - run.started_at:.0f} s after", state
                )
            )
        wanted = "approved" if run.decision == "approve" else "rejected"
        if run.asked_at is not None and outcome is not None and outcome != wanted:
            report.decided_otherwise.append(
                self._trouble(run, f"clicked {run.decision}, ended {outcome}", state)
            )

    def _observe(
        self,
        run: _Run,
        results: list[dict[str, Any]],
        pipeline_calls: list[dict[str, Any]],
        executions: dict[str, dict[str, Any]],
    ) -> None:
        """The independent oracles (reliability.observed): the result CodePipeline received
        against what the harness's clicks imply, and the gate's PutApprovalResult attempts."""
        if run.token is None:
            return
        report = self.report
        gate = [r for r in results if r["source"] == "gate"]
        expected = expected_result(run.counted, deadline=self.deadline, uncertain=run.uncertain)
        wrong = judge_result(expected, gate)
        state = ""
        if wrong is not None or reported_again(result_attempts(pipeline_calls, run.pipeline)):
            state = self._state(run, results, executions.get(run.approval_id or ""))
        if wrong is not None and gate:
            received = gate[0]["result"]["status"]
            if received != expected.status and received not in expected.alternatives:
                report.wrong_result.append(self._trouble(run, wrong, state))
        if (
            wrong is not None
            and run.counted
            and not any(t.pipeline == run.pipeline for t in report.lost)
        ):
            report.lost.append(self._trouble(run, f"a counted click lost: {wrong}", state))
        attempts = result_attempts(pipeline_calls, run.pipeline)
        if reported_again(attempts) and len(gate) <= 1:
            report.decided_twice.append(
                self._trouble(
                    run,
                    f"{len(attempts)} PutApprovalResult attempts ({attempts_text(attempts)})",
                    state,
                )
            )

    def _state(
        self, run: _Run, results: list[dict[str, Any]], execution: dict[str, Any] | None
    ) -> str:
        parts = []
        if run.record is not None:
            parts.append(f"record outcome {run.record['outcome']}")
        else:
            parts.append("no decision record")
        parts.append(f"{len(results)} result(s) " + str([r["result"]["status"] for r in results]))
        if execution is not None:
            parts.append(f"workflow {execution['status']}")
            if execution.get("error") or execution.get("cause"):
                parts.append(f"{execution.get('error')}: {str(execution.get('cause'))[:300]}")
            failures = self._task_failures(execution["executionArn"])
            if failures:
                parts.append("failed attempts: " + ", ".join(failures))
        else:
            parts.append("no workflow")
        if run.clicking is not None and run.clicking.done() and run.clicking.exception():
            parts.append(f"the harness's click failed: {run.clicking.exception()!r}")
        return "; ".join(parts)

    def _trouble(self, run: _Run, what: str, state: str) -> Trouble:
        words = [w for w in (run.approval_id, run.pipeline) if w]
        logs = [
            line[:400]
            for line in list(self.server.sandbox.logs.lines)
            if any(w in line for w in words)
            and ('"level":"WARNING"' in line or '"level":"ERROR"' in line)
        ]
        return Trouble(run.pipeline, run.approval_id, what, state, logs[-6:])

    def _task_failures(self, arn: str) -> list[str]:
        """Each failed task attempt of an execution, as "state: error" (retried or not)."""
        sfn = self.server.sandbox.client("stepfunctions")
        failures, state = [], "?"
        for event in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]:
            if event["type"].endswith("StateEntered"):
                state = event["stateEnteredEventDetails"]["name"]
            elif event["type"] in ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed"):
                details = next(v for k, v in event.items() if k.endswith("EventDetails"))
                failures.append(f"{state}: {details.get('error', event['type'])}")
        return failures

    def _fallbacks(self) -> set[str]:
        """Approvals whose table item says the request went out by the fallback topic."""
        dynamodb = self.server.sandbox.client("dynamodb")
        found: set[str] = set()
        kwargs: dict[str, Any] = {
            "TableName": self.server.sandbox.table_name,
            "ProjectionExpression": "approval_id, fallback_at",
        }
        while True:
            page = dynamodb.scan(**kwargs)
            found |= {i["approval_id"]["S"] for i in page["Items"] if "fallback_at" in i}
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _executions(self) -> dict[str, dict[str, Any]]:
        """Every execution, described, by approval id (the end of its name)."""
        sfn = self.server.sandbox.client("stepfunctions")
        arn = self.server.sandbox.state_machine_arn
        found: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"stateMachineArn": arn, "maxResults": 1000}
        while True:
            page = sfn.list_executions(**kwargs)
            for execution in page["executions"]:
                approval_id = execution["name"].rsplit("-", 1)[-1]
                if execution["status"] == "SUCCEEDED":
                    found[approval_id] = execution
                else:
                    found[approval_id] = sfn.describe_execution(
                        executionArn=execution["executionArn"]
                    )
            if not page.get("nextToken"):
                return found
            kwargs["nextToken"] = page["nextToken"]


def run_soak(
    approvals: int = 300,
    slack_failure_rate: float = 0.2,
    codepipeline_failure_rate: float = 0.1,
    seed: int = 8,
    *,
    at_once: int = 30,
    budget: float = 330.0,
    feed: bool = False,
    server: SandboxServer | None = None,
    out: Callable[[str], None] | None = None,
    deadline: float = DEADLINE,
    platform_faults: bool = True,
    settle: bool = True,
) -> SoakReport:
    """Run `approvals` approvals under injected faults and check each to its end.

    `at_once`: runs open at a time. `budget`: seconds for all of it, after which the soak
    stops and reports what has not ended as lost. `feed`: with the status feed on (its
    own channel); off by default, as its Slack traffic through the sandbox's single
    EventBridge delivery thread would pace the approvals. `server`: a running sandbox
    started with SOAK_POLICY to use (faults are set on it and left set); otherwise the
    soak starts and stops its own. `deadline`: the policy's deadline in seconds (the
    harness's account of when a click can no longer count; SOAK_POLICY's by default).
    `platform_faults`: also inject PLATFORM_FAULTS (effect-taking Slack and CodePipeline
    faults, DynamoDB, Step Functions and Lambda faults, index lag). Never raises for a
    broken invariant: read the report. `settle`: once every approval has ended, wait (to
    the budget and 30 s more) for the workflows to end before counting them; without it a
    workflow still running (retrying a failing step) counts as not succeeded at once.
    """
    if server is None:
        with SandboxServer(policy_file=SOAK_POLICY, port=0) as own:
            return run_soak(
                approvals,
                slack_failure_rate,
                codepipeline_failure_rate,
                seed,
                at_once=at_once,
                budget=budget,
                feed=feed,
                server=own,
                out=out,
                deadline=deadline,
                platform_faults=platform_faults,
                settle=settle,
            )
    soak = _Soak(
        server,
        approvals=approvals,
        slack_failure_rate=slack_failure_rate,
        codepipeline_failure_rate=codepipeline_failure_rate,
        seed=seed,
        at_once=at_once,
        budget=budget,
        feed=feed,
        out=out,
        deadline=deadline,
        platform_faults=platform_faults,
        settle=settle,
    )
    return soak.run()


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    print(run_soak(count, out=print).summary())
