"""Races, each of which must end with exactly one outcome (issue 8, point 4).

Every scenario drives a running sandbox the way Slack and CodePipeline do (signed clicks
and console decisions over HTTP; SNS and EventBridge deliveries straight to the function,
as Lambda gets them), waits for conditions with a bound, and returns a `RaceResult` whose
`problems` name every broken invariant. `tests/reliability/test_races.py` runs each one
(`make test`); `run_races` runs them all for `make reliability`.

The scenarios:

- `click_storm`: 50 concurrent clicks from five approvers on one approval with quorum 2;
- `steps_storm`: 50 concurrent clicks from ten approvers across two steps in sequence
  (1 of five, then 2 of five others);
- `clicks_at_the_deadline`: clicks sent around the moment the deadline decides;
- `click_against_console`: a signed click and a console decision sent at the same time;
- `duplicate_sns_delivery`: one SNS message delivered twice at once to start_approval;
- `duplicate_eventbridge_delivery`: each CodePipeline event delivered twice at once to
  pipeline_events;
- `cancel_at_the_hold_end`: Cancel clicked around the moment a freeze's hold ends;
- `deploy_now_against_cancel`: an override's submission and a Cancel sent at once;
- `overrides_at_once`: two override approvers submitting Deploy now at once, with
  required_approvals 2 and with 1 (issue 20).

Run them one after another: the SNS and EventBridge races briefly hold back the fake
pipeline's SNS notification or events (for their own pipeline only) to deliver them twice
themselves, and the hold races put a freeze a few seconds long in the policy (restored
after), since a freeze is an instant in time.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bench.driver import Driver, button_value
from reliability import ROOT
from reliability.observed import attempts_text, result_attempts
from sandbox import patches
from sandbox.client import has_buttons, wait_for
from sandbox.engine import ACCOUNT, REGION
from sandbox.fake_slack import form_body, signed_request, view_submission_payload
from sandbox.server import SandboxServer

#: The races' policy: one rule per race (pipelines race-quorum-*, race-deadline-*, ...).
RACES_POLICY = Path(__file__).with_name("races.yaml")
#: Who clicks: the storm's five approvers, and one per trial in the deadline and console
#: races (so each answer can be told apart). races.yaml names them all.
CLICKERS = (
    "U0ALICE",
    "U0BOB",
    "U0CAROL",
    "U0DAVE",
    "U0ERIN",
    "U0FRANK",
    "U0GRACE",
    "U0HEIDI",
    "U0IVAN",
    "U0JUDY",
)
APPROVERS = CLICKERS[:5]
#: Seconds from the moment the deadline decides (the waiting task's heartbeat or timeout
#: running out) at which the deadline race sends its clicks, one trial each.
DEADLINE_OFFSETS = (-0.4, -0.2, -0.1, -0.05, 0.0, 0.02, 0.05, 0.1, 0.2, 0.4)
#: What a click may be answered with besides the one that decides (the log's `result`).
CLEAR_ANSWERS = frozenset({"vote_recorded", "already_voted", "already_decided"})
#: The steps race's two steps (race-steps-* in races.yaml): QA needs one of the first five
#: clickers, then Release two of the other five.
STEP_APPROVERS = {"QA": CLICKERS[:5], "Release": CLICKERS[5:]}
#: What a click on an approval with steps may also be answered with: an early Release
#: approver is told whose turn it is; a QA approver once QA is complete, that it is.
STEP_ANSWERS = CLEAR_ANSWERS | {"not_your_turn", "steps_done"}
#: Bounds on every wait, in seconds.
OPEN_TIMEOUT = 30.0
FINISH_TIMEOUT = 30.0

START_FUNCTION = "StartApprovalFunction"
EVENTS_FUNCTION = "PipelineEventsFunction"


@dataclass
class RaceResult:
    """How one race ended: its outcomes (which side won, how often) and any problem."""

    race: str
    trials: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Broken invariants: each says which trial and what happened.
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: HTTP answers ≥ 500 from /slack/interactions (also listed in `problems`).
    server_errors: int = 0
    #: Approvals that reached no final state, or whose result CodePipeline never heard.
    lost: int = 0
    #: Approvals CodePipeline heard more than one result for.
    decided_twice: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def outcome_text(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"

    def summary(self) -> str:
        lines = [
            f"{self.race}: {self.trials} trial(s) in {self.seconds:.1f} s; "
            f"outcomes {self.outcome_text()}; "
            + ("OK" if self.ok else f"{len(self.problems)} problem(s)")
        ]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


class _Race:
    """One scenario's view of the sandbox: the HTTP driver, and the in-process handles
    for what has no HTTP path (deliveries to a function, execution history, logs)."""

    def __init__(self, server: SandboxServer, name: str) -> None:
        self.server = server
        self.sandbox = server.sandbox
        self.driver = Driver(server)
        self.client = self.driver.client
        self.result = RaceResult(name)
        self.started = time.perf_counter()

    def problem(self, text: str) -> None:
        self.result.problems.append(text)

    def done(self) -> RaceResult:
        self.result.seconds = time.perf_counter() - self.started
        return self.result

    # --- opening approvals ----------------------------------------------------------

    def open(self, pipelines: list[str]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Start one run per pipeline at once; wait for each request in Slack.

        {pipeline: (run, message)}, the run as POST …/runs answered it.
        """
        with ThreadPoolExecutor(max_workers=min(8, len(pipelines))) as pool:
            runs = dict(zip(pipelines, pool.map(self.driver.start_run, pipelines), strict=True))
        messages = self.driver.open_requests(pipelines, timeout=OPEN_TIMEOUT)
        return {p: (runs[p], messages[p]) for p in pipelines}

    # --- what CodePipeline heard ------------------------------------------------------

    def results(self, token: str) -> list[dict[str, Any]]:
        return [r for r in self.client.approval_results() if r["token"] == token]

    def finish(self, approval_id: str, trial: str) -> dict[str, Any] | None:
        """Wait for the workflow to end; its decision record, or None (a problem)."""
        try:
            execution = self.driver.wait_finished(approval_id, timeout=FINISH_TIMEOUT)
        except TimeoutError:
            self.problem(f"{trial}: the workflow was still running after {FINISH_TIMEOUT:g} s")
            self.result.lost += 1
            return None
        if execution["status"] != "SUCCEEDED":
            self.problem(
                f"{trial}: the workflow ended {execution['status']}: "
                f"{execution.get('error', '')} {str(execution.get('cause', ''))[:300]}"
            )
            self.result.lost += 1
            return None
        record: dict[str, Any] = json.loads(execution["output"])
        if record.get("outcome") is None:
            self.problem(f"{trial}: the workflow ended without an outcome: {record}")
            self.result.lost += 1
        return record

    def check_heard_once(
        self,
        trial: str,
        token: str,
        record: dict[str, Any],
        *,
        console_allowed: bool = False,
        names: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """CodePipeline heard exactly one result, and it matches the decision record: its
        summary names each decider, by id or by the Slack name in `names` (an approval
        with steps names each step's approvers by name: "QA by dan; Release by …")."""
        results = self.results(token)
        gate = [r for r in results if r["source"] == "gate"]
        console = [r for r in results if r["source"] == "console"]
        if len(results) > 1:
            self.result.decided_twice += 1
            self.problem(
                f"{trial}: CodePipeline heard {len(results)} results "
                f"({', '.join(r['source'] + ' ' + r['result']['status'] for r in results)})"
            )
        elif not results:
            self.result.lost += 1
            self.problem(f"{trial}: CodePipeline heard no result (outcome {record['outcome']})")
        if console and not console_allowed:
            self.problem(f"{trial}: a console result nobody sent")
        outcome = record["outcome"]
        if outcome == "decided_elsewhere":
            if gate:
                self.problem(f"{trial}: decided elsewhere, yet the gate sent PutApprovalResult")
            if not console:
                self.problem(f"{trial}: decided elsewhere, but nobody decided elsewhere")
        elif len(gate) == 1:
            expected = "Approved" if outcome == "approved" else "Rejected"
            status = gate[0]["result"]["status"]
            if status != expected:
                self.problem(f"{trial}: the record says {outcome}, CodePipeline heard {status}")
            summary = gate[0]["result"]["summary"]
            for user in record["decided_by"]:
                if user not in summary and (names or {}).get(user, user) not in summary:
                    self.problem(f"{trial}: the summary does not name {user}: {summary!r}")
        elif console:
            self.problem(f"{trial}: the record says {outcome}, but only the console decided")
        self.check_attempts(trial, token, twice_counted=len(results) > 1)
        return results

    def check_attempts(self, trial: str, token: str, *, twice_counted: bool = False) -> None:
        """The gate tried to report at most once (reliability.observed.result_attempts: the
        fake's call log, which also holds the attempts it refused)."""
        run = self.sandbox.codepipeline.run_by_token(token)
        if run is None:
            return
        attempts = result_attempts(self.client.codepipeline_calls(), run.pipeline, run.stage)
        if len(attempts) > 1:
            self.problem(
                f"{trial}: the gate made {len(attempts)} PutApprovalResult attempts "
                f"({attempts_text(attempts)})"
            )
            if not twice_counted:
                self.result.decided_twice += 1

    def check_closed(self, trial: str, message: dict[str, Any]) -> None:
        def closed() -> bool:
            current = next(
                (
                    m
                    for m in self.client.messages()
                    if (m["channel"], m["ts"]) == (message["channel"], message["ts"])
                ),
                None,
            )
            return current is not None and not has_buttons(current)

        try:
            wait_for(closed, timeout=10, interval=0.05, what="the request to close")
        except TimeoutError:
            self.problem(f"{trial}: the Slack request still has its buttons")

    # --- clicks -----------------------------------------------------------------------

    def send(self, signed: tuple[bytes, dict[str, str]]) -> int:
        """POST a signed interaction; its HTTP status."""
        return self.driver.send(*signed)[0]

    def deliver(self, function: str, event: dict[str, Any]) -> Any:
        """Deliver an event to a function as Lambda does (each delivery its own copy)."""
        return self.sandbox.invoke(function, copy.deepcopy(event))

    def clicks_handled(self, approval_id: str) -> list[str]:
        """The slack_interactions log's `result` for each click on this approval."""
        found = []
        for line in list(self.sandbox.logs.lines):
            if approval_id not in line or "handled a click" not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("approval_id") == approval_id and entry.get("message") == (
                "handled a click"
            ):
                found.append(str(entry.get("result")))
        return found

    def ephemerals(self, users: tuple[str, ...]) -> int:
        return sum(1 for m in self.client.messages() if m["ephemeral_user"] in users)

    def check_statuses(self, trial: str, answers: list[Any]) -> None:
        """Every click of a storm answered 200; each other status (or exception) is a
        problem, and a 5xx counts as a server error."""
        statuses = Counter(a if isinstance(a, int) else type(a).__name__ for a in answers)
        for status, count in statuses.items():
            if status != 200:
                self.problem(f"{trial}: {count} click(s) answered {status}")
                if isinstance(status, int) and status >= 500:
                    self.result.server_errors += count

    def check_storm_answers(
        self,
        trial: str,
        approval_id: str,
        clicks: int,
        *,
        clear: frozenset[str],
        clickers: tuple[str, ...],
        told_before: int,
    ) -> Counter[str]:
        """After a storm of `clicks`: every click handled, exactly one decided, the others
        answered in one of the `clear` ways, each told so ephemerally. The outcomes."""
        handled = Counter(self.clicks_handled(approval_id))
        if sum(handled.values()) != clicks:
            self.problem(f"{trial}: {sum(handled.values())} of {clicks} clicks were handled")
        if handled["recorded"] != 1:
            self.problem(f"{trial}: {handled['recorded']} clicks decided (one must)")
        unclear = {k: v for k, v in handled.items() if k != "recorded" and k not in clear}
        if unclear:
            self.problem(f"{trial}: clicks answered {unclear}")
        told = self.ephemerals(clickers) - told_before
        if told != clicks - 1:
            self.problem(
                f"{trial}: {told} ephemeral answers for {clicks - 1} clicks that did not decide"
            )
        return handled


def _tag() -> str:
    return uuid.uuid4().hex[:6]


def _epoch(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()


def _described(answers: list[Any]) -> list[str]:
    """Each exception among `answers`, with where it was raised (the last frames)."""
    found = []
    for answer in answers:
        if isinstance(answer, Exception):
            frames = traceback.extract_tb(answer.__traceback__)[-3:]
            where = " < ".join(
                f"{f.filename.rsplit('site-packages/', 1)[-1].replace(str(ROOT) + '/', '')}"
                f":{f.lineno} {f.name}"
                for f in reversed(frames)
            )
            found.append(f"{answer!r} at {where}")
    return found


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at the same moment (one thread each, released by a barrier); their
    answers in order, or the exception a call raised."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            answers[index] = calls[index]()
        except Exception as exc:  # reported by the caller as a problem
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


# --------------------------------------------------------------------------- 1. storm


def click_storm(server: SandboxServer, *, clicks: int = 50, mixed: bool = False) -> RaceResult:
    """`clicks` concurrent clicks from the five approvers, ten each, on one approval that
    needs two distinct approvals.

    All Approve (pipeline race-quorum-*): exactly two distinct approvers decide. With
    `mixed`, every other click is Reject without a modal (race-mixed-*): one rejecter
    decides, or two approvers if their approvals landed first. Either way: one
    PutApprovalResult that matches the record, every click answered 200, exactly one click
    decides and every other one gets a clear answer (a tally, "already voted", "already
    decided"), as an ephemeral message.
    """
    race = _Race(server, f"{clicks} clicks, quorum 2" + (", approve and reject" if mixed else ""))
    race.result.trials = 1
    pipeline = f"race-{'mixed' if mixed else 'quorum'}-{_tag()}"
    ((run, message),) = race.open([pipeline]).values()
    approval_id = button_value(message)
    plan = [
        (
            APPROVERS[i % len(APPROVERS)],
            "reject" if mixed and (i // len(APPROVERS)) % 2 else "approve",
        )
        for i in range(clicks)
    ]
    bodies = [race.driver.click_body(message, action, user) for user, action in plan]
    told_before = race.ephemerals(APPROVERS)

    answers = _together([partial(race.send, body) for body in bodies])

    trial = pipeline
    race.check_statuses(trial, answers)
    record = race.finish(approval_id, trial)
    if record is not None:
        outcome = record["outcome"]
        race.result.outcomes[outcome] += 1
        deciders = record["decided_by"]
        if len(set(deciders)) != len(deciders) or not set(deciders) <= set(APPROVERS):
            race.problem(f"{trial}: decided_by is not distinct approvers: {deciders}")
        if outcome == "approved" and len(deciders) < 2:
            race.problem(f"{trial}: approved by {deciders}; the policy needs 2")
        elif outcome == "approved" and len(deciders) > 2:
            # By design (tests/unit/test_quorum.py): approvals recorded before the quorum's
            # decision was written all count as deciders.
            race.result.notes.append(
                f"{len(deciders)} approvals landed before the decision was written; all decide"
            )
        elif outcome == "rejected" and (not mixed or len(deciders) != 1):
            race.problem(f"{trial}: rejected by {deciders}")
        elif outcome not in ("approved", "rejected"):
            race.problem(f"{trial}: outcome {outcome}")
        race.check_heard_once(trial, run["approvalToken"], record)
        race.check_closed(trial, message)
        race.result.notes.append(f"{outcome} by {', '.join(deciders)}")
    handled = race.check_storm_answers(
        trial, approval_id, clicks, clear=CLEAR_ANSWERS, clickers=APPROVERS, told_before=told_before
    )
    race.result.notes.append("clicks: " + ", ".join(f"{k} {v}" for k, v in sorted(handled.items())))
    return race.done()


# --------------------------------------------------------------------------- 1b. steps


def steps_storm(server: SandboxServer, *, clicks: int = 50, trials: int = 3) -> RaceResult:
    """Per trial, `clicks` concurrent Approve clicks from the ten clickers, five each, on
    one approval with two steps in sequence (pipelines race-steps-*): QA needs one of five,
    then Release two of five others (issue 19). In the first trial the clicks arrive as
    they come; in the others the first ten clicks' reads of the approval are held until
    all ten have read (`_reads_aligned`), so they all place their vote by the same votes:
    the case the conditional write exists for, which the first trial meets only by luck.

    Decided once, approved, with each step's approvers right in the record: QA exactly one
    of its five, Release two distinct of its five, nobody in two steps, and no Release
    vote recorded before QA completed (a Release approver who clicked while QA was open
    was told whose turn it is, and nothing was recorded). One PutApprovalResult; every
    click answered 200; one click decides, every other one gets a clear answer, as an
    ephemeral message.
    """
    race = _Race(server, f"{clicks} clicks, two steps (1 then 2)")
    race.result.trials = trials
    tag = _tag()
    for i in range(trials):
        _steps_trial(race, f"race-steps-{tag}-{i}", clicks, aligned=len(CLICKERS) if i else 0)
    return race.done()


#: Bound on how long a read held by `_reads_aligned` waits for the others, in seconds.
ALIGN_TIMEOUT = 10.0


@contextmanager
def _reads_aligned(reads: int) -> Iterator[None]:
    """Hold each of the next `reads` reads of an approval (ApprovalStore.get, in the
    sandbox's process) until all of them have read, then let them go on together, so the
    clicks that made them decide by the same votes. A read that waits in vain gives up
    after ALIGN_TIMEOUT."""
    from approval_gate.store import ApprovalStore  # the module the functions use

    original = ApprovalStore.get
    lock = threading.Lock()
    everyone_read = threading.Event()
    count = 0

    def get(self: Any, approval_id: str) -> Any:
        nonlocal count
        read = original(self, approval_id)
        with lock:
            count += 1
            held = count <= reads
            if count == reads:
                everyone_read.set()
        if held:
            everyone_read.wait(timeout=ALIGN_TIMEOUT)
        return read

    ApprovalStore.get = get  # type: ignore[method-assign]
    try:
        yield
    finally:
        ApprovalStore.get = original  # type: ignore[method-assign]


def _steps_trial(race: _Race, pipeline: str, clicks: int, aligned: int) -> None:
    ((run, message),) = race.open([pipeline]).values()
    approval_id = button_value(message)
    bodies = [
        race.driver.click_body(message, "approve", CLICKERS[i % len(CLICKERS)])
        for i in range(clicks)
    ]
    told_before = race.ephemerals(CLICKERS)

    with _reads_aligned(aligned):
        answers = _together([partial(race.send, body) for body in bodies])

    trial = pipeline + (f" ({aligned} reads aligned)" if aligned else "")
    race.check_statuses(trial, answers)
    record = race.finish(approval_id, trial)
    if record is not None:
        race.result.outcomes[record["outcome"]] += 1
        if record["outcome"] != "approved":
            race.problem(f"{trial}: outcome {record['outcome']}, only Approve was clicked")
        votes = _votes(race, approval_id)
        _check_steps(race, trial, record, votes)
        names = {user: str(vote.get("name")) for user, vote in votes.items()}
        race.check_heard_once(trial, run["approvalToken"], record, names=names)
        race.check_closed(trial, message)
    handled = race.check_storm_answers(
        trial, approval_id, clicks, clear=STEP_ANSWERS, clickers=CLICKERS, told_before=told_before
    )
    race.result.notes.append(
        f"{trial}: clicks " + ", ".join(f"{k} {v}" for k, v in sorted(handled.items()))
    )


def _votes(race: _Race, approval_id: str) -> dict[str, dict[str, Any]]:
    """The votes the table keeps ({user: {vote, at, step, …}}): the decision record says
    who approved in which step, not when each vote was written."""
    item = race.sandbox.client("dynamodb").get_item(
        TableName=race.sandbox.table_name,
        Key={"approval_id": {"S": approval_id}},
        ConsistentRead=True,
    )["Item"]
    return {
        user: {key: typed.get("S") for key, typed in vote["M"].items()}
        for user, vote in item.get("votes", {}).get("M", {}).items()
    }


def _check_steps(
    race: _Race, trial: str, record: dict[str, Any], votes: dict[str, dict[str, Any]]
) -> None:
    """Each step's approvers are right in the decision record (see `steps_storm`)."""
    steps = {step["name"]: step for step in record.get("steps", [])}
    if set(steps) != set(STEP_APPROVERS):
        race.problem(f"{trial}: the record's steps are {list(steps)}")
        return
    qa, release = steps["QA"]["approved_by"], steps["Release"]["approved_by"]
    if len(qa) != 1 or not set(qa) <= set(STEP_APPROVERS["QA"]):
        race.problem(f"{trial}: QA approved by {qa}; exactly one of its approvers must")
    if len(release) != 2 or len(set(release)) != 2:
        race.problem(f"{trial}: Release approved by {release}; two distinct approvers must")
    if not set(release) <= set(STEP_APPROVERS["Release"]):
        race.problem(f"{trial}: Release approved by {release}, not all its approvers")
    if set(qa) & set(release):
        race.problem(f"{trial}: {set(qa) & set(release)} counted in two steps")
    if sorted(record["decided_by"]) != sorted(qa + release):
        race.problem(f"{trial}: decided_by {record['decided_by']}, the steps say {qa + release}")
    approving = {u: v for u, v in votes.items() if v.get("vote") == "approve"}
    if set(approving) != set(qa + release):
        race.problem(f"{trial}: approve votes from {sorted(approving)}, counted {qa + release}")
    qa_done = steps["QA"]["completed_at"]
    voted_at = {user: str(vote["at"]) for user, vote in approving.items() if vote.get("at")}
    early = [
        user
        for user in release
        if qa_done is None or (user in voted_at and _epoch(voted_at[user]) < _epoch(qa_done))
    ]
    if early:
        race.problem(f"{trial}: Release votes of {early} recorded before QA completed ({qa_done})")
    race.result.notes.append(f"{trial}: QA by {', '.join(qa)}; Release by {', '.join(release)}")


# --------------------------------------------------------------------------- 2. deadline


def clicks_at_the_deadline(
    server: SandboxServer, offsets: tuple[float, ...] = DEADLINE_OFFSETS
) -> RaceResult:
    """One approval per offset (pipelines race-deadline-*, a 4 s deadline, on_deadline
    reject), each clicked Approve once by its own approver at the moment the deadline
    decides plus that offset, all at once.

    The moment the deadline decides is when the waiting task's heartbeat (cut short by the
    deadline) or timeout runs out, read from the execution's history: with a 4 s deadline
    that is about half a second before the policy's deadline (LAST_CALL). Each approval
    ends approved (the click won) or expired and rejected by policy (the deadline won),
    never both: CodePipeline hears exactly one result, which matches the record, and the
    click either decided or its clicker was told the request had expired.
    """
    race = _Race(server, "clicks at the deadline")
    race.result.trials = len(offsets)
    tag = _tag()
    pipelines = [f"race-deadline-{tag}-{i}" for i in range(len(offsets))]
    opened = race.open(pipelines)
    plans = []
    for i, pipeline in enumerate(pipelines):
        run, message = opened[pipeline]
        approval_id = button_value(message)
        deadline, decides_at = _deadline_moments(race, approval_id)
        plans.append((pipeline, run, message, approval_id, deadline, decides_at, i))
    told_before = {user: race.ephemerals((user,)) for user in CLICKERS}

    def click_at(plan: tuple[Any, ...]) -> tuple[int, float]:
        _, _, message, _, _, decides_at, i = plan
        body = race.driver.click_body(message, "approve", CLICKERS[i])
        time.sleep(max(0.0, decides_at + offsets[i] - time.time()))  # the scenario's moment
        sent = time.time()
        return race.driver.send(*body)[0], sent

    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        sent = list(pool.map(click_at, plans))

    for plan, (status, at) in zip(plans, sent, strict=True):
        pipeline, run, message, approval_id, deadline, decides_at, i = plan
        user = CLICKERS[i]
        trial = f"{pipeline} (click {offsets[i]:+.2f} s from the deadline's moment)"
        if status != 200:
            race.problem(f"{trial}: the click answered {status}")
            race.result.server_errors += status >= 500
        record = race.finish(approval_id, trial)
        if record is None:
            continue
        race.check_heard_once(trial, run["approvalToken"], record)
        race.check_closed(trial, message)
        told = [m["text"] for m in race.client.messages() if m["ephemeral_user"] == user][
            told_before[user] :
        ]
        outcome = record["outcome"]
        if outcome == "approved":
            race.result.outcomes["click won"] += 1
            if record["decided_by"] != [user] or told:
                race.problem(f"{trial}: approved by {record['decided_by']}; {user} was told {told}")
        elif outcome == "expired":
            race.result.outcomes["deadline won"] += 1
            if len(told) != 1 or "already expired" not in told[0]:
                race.problem(f"{trial}: expired, and {user} was told {told}")
            result = race.results(run["approvalToken"])
            if result and not result[0]["result"]["summary"].startswith("No decision within"):
                race.problem(f"{trial}: expired, summary {result[0]['result']['summary']!r}")
        else:
            race.problem(f"{trial}: outcome {outcome}")
        race.result.notes.append(
            f"click sent {at - decides_at:+.3f} s from the deadline's moment "
            f"({at - deadline:+.2f} s from the policy's deadline), decided "
            f"{_epoch(record['decided_at']) - decides_at:+.3f} s: {outcome}"
        )
    return race.done()


def _deadline_moments(race: _Race, approval_id: str) -> tuple[float, float]:
    """The policy's deadline (the workflow's input), and when the first wait for a click
    runs out: its task's start plus its heartbeat or timeout, whichever is shorter."""
    sfn = race.sandbox.client("stepfunctions")
    arn = race.driver.execution_arn(approval_id)
    deadline = _epoch(json.loads(sfn.describe_execution(executionArn=arn)["input"])["deadline"])
    scheduled = next(e for e in race.driver.history(approval_id) if e["type"] == "TaskScheduled")
    details = scheduled["taskScheduledEventDetails"]
    waits = [details.get("heartbeatInSeconds"), details.get("timeoutInSeconds")]
    return deadline, scheduled["timestamp"].timestamp() + min(w for w in waits if w)


# --------------------------------------------------------------------------- 3. console


def click_against_console(server: SandboxServer, trials: int = 6) -> RaceResult:
    """Per trial, a signed Approve click and a console decision (Approved or Rejected in
    turn) sent at the same moment.

    Exactly one wins: the gate's PutApprovalResult (the record says approved, the console
    got ApprovalAlreadyCompleted) or the console's (the record says decided elsewhere and
    the gate sent nothing, or its PutApprovalResult was refused). CodePipeline hears
    exactly one result in all, and the clicker either decided in the table or was told
    the request was closed.
    """
    race = _Race(server, "click against console")
    race.result.trials = trials
    tag = _tag()
    pipelines = [f"race-console-{tag}-{i}" for i in range(trials)]
    opened = race.open(pipelines)
    told_before = {user: race.ephemerals((user,)) for user in CLICKERS}
    calls: list[Callable[[], Any]] = []
    for i, pipeline in enumerate(pipelines):
        run, message = opened[pipeline]
        body = race.driver.click_body(message, "approve", CLICKERS[i])
        decision = {
            "status": "Approved" if i % 2 == 0 else "Rejected",
            "summary": "decided in the console",
            "by": "ops@example.com",
        }
        path = f"/_sandbox/pipelines/{pipeline}/approvals/{run['approvalToken']}"
        calls.append(partial(race.send, body))
        calls.append(partial(race.client.request, "POST", path, decision))
    answers = _together(calls)

    for i, pipeline in enumerate(pipelines):
        run, message = opened[pipeline]
        approval_id = button_value(message)
        user = CLICKERS[i]
        click, console = answers[2 * i], answers[2 * i + 1]
        trial = f"{pipeline} (console {'Approved' if i % 2 == 0 else 'Rejected'})"
        if click != 200:
            race.problem(f"{trial}: the click answered {click}")
            race.result.server_errors += isinstance(click, int) and click >= 500
        if isinstance(console, Exception):
            race.problem(f"{trial}: the console decision failed: {console!r}")
            continue
        console_status, console_body = console
        record = race.finish(approval_id, trial)
        if record is None:
            continue
        results = race.check_heard_once(trial, run["approvalToken"], record, console_allowed=True)
        race.check_closed(trial, message)
        outcome = record["outcome"]
        if console_status == 200:
            race.result.outcomes["console won"] += 1
            if outcome != "decided_elsewhere":
                race.problem(f"{trial}: the console decided first, yet the record says {outcome}")
        elif console_status == 400 and "ApprovalAlreadyCompleted" in json.dumps(console_body):
            race.result.outcomes["click won"] += 1
            if outcome != "approved":
                race.problem(f"{trial}: the click decided first, yet the record says {outcome}")
        else:
            race.problem(f"{trial}: the console answered {console_status} {console_body}")
        told = [m["text"] for m in race.client.messages() if m["ephemeral_user"] == user][
            told_before[user] :
        ]
        if len(told) > 1 or (told and "already closed" not in told[0]):
            race.problem(f"{trial}: {user} was told {told}")
        race.result.notes.append(
            f"{trial}: console {console_status}, CodePipeline heard "
            f"{[r['source'] for r in results]}, the click "
            + ("lost in the table" if told else "won in the table")
            + f", record {outcome}"
        )
    return race.done()


# --------------------------------------------------------------------------- 4. SNS


@contextmanager
def _held(sandbox: Any, attribute: str, ours: Callable[[Any], bool]) -> Iterator[list[Any]]:
    """Hold back the fake pipeline's `publish` (SNS) or `emit` (EventBridge) calls that
    `ours` picks, so the scenario can deliver them itself; everything else goes on."""
    fake = sandbox.codepipeline
    original = getattr(fake, attribute)
    held: list[Any] = []

    def hold(*args: Any) -> None:
        if ours(args):
            held.append(args)
        elif original is not None:
            original(*args)

    setattr(fake, attribute, hold)
    try:
        yield held
    finally:
        setattr(fake, attribute, original)


def _names(pipeline: str, args: tuple[Any, ...]) -> bool:
    """Whether a held `publish(message)` is the notification of `pipeline`'s run."""
    return bool(json.loads(args[0])["approval"]["pipelineName"] == pipeline)


def sns_event(sandbox: Any, message: str) -> dict[str, Any]:
    """The SNS → Lambda envelope AWS documents (as the sandbox's patch 1b builds it)."""
    return patches.sns_event(sandbox.topic_arn, message)


def duplicate_sns_delivery(server: SandboxServer, trials: int = 3) -> RaceResult:
    """Per trial, CodePipeline's approval notification delivered twice at once (the same
    SNS message, same MessageId) to start_approval: one execution, one Slack request;
    approved, one PutApprovalResult."""
    race = _Race(server, "duplicate SNS delivery")
    race.result.trials = trials
    tag = _tag()
    for i in range(trials):
        pipeline = f"race-sns-{tag}-{i}"
        trial = pipeline
        with _held(race.sandbox, "publish", partial(_names, pipeline)) as held:
            run = race.driver.start_run(pipeline)
        if len(held) != 1:
            race.problem(f"{trial}: {len(held)} notifications held back, expected 1")
            continue
        event = sns_event(race.sandbox, held[0][0])
        answers = _together([partial(race.deliver, START_FUNCTION, event)] * 2)
        failed = _described(answers)
        if failed:
            race.problem(f"{trial}: start_approval raised {'; '.join(failed)}")
            continue
        started = sum(a.get("started", 0) for a in answers)
        duplicates = sum(a.get("duplicates", 0) for a in answers)
        if (started, duplicates) != (1, 1):
            race.problem(f"{trial}: start_approval answered {answers} (one start, one duplicate)")
        message = race.driver.open_requests([pipeline], timeout=OPEN_TIMEOUT)[pipeline]
        approval_id = button_value(message)
        executions = [e for e in race.sandbox.executions() if e["name"].endswith(approval_id)]
        if len(executions) != 1:
            race.problem(f"{trial}: {len(executions)} executions")
        shown = [
            m
            for m in race.client.messages()
            if m["thread_ts"] is None
            and m["ephemeral_user"] is None
            and approval_id in json.dumps(m["blocks"])
        ]
        status, _ = race.driver.send(*race.driver.click_body(message, "approve"))
        if status != 200:
            race.problem(f"{trial}: the click answered {status}")
        record = race.finish(approval_id, trial)
        if record is None:
            continue
        race.result.outcomes[record["outcome"]] += 1
        race.check_heard_once(trial, run["approvalToken"], record)
        posted = [
            c
            for c in race.client.calls()
            if c["method"] == "chat.postMessage"
            and not c["args"].get("thread_ts")
            and approval_id in json.dumps(c["args"])
        ]
        if len(posted) != 1 or len(shown) != 1:
            race.problem(
                f"{trial}: {len(posted)} request posts, {len(shown)} request messages (one each)"
            )
    return race.done()


# --------------------------------------------------------------------------- 5. EventBridge


def eventbridge_event(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A CodePipeline state-change event as EventBridge delivers it to a Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.codepipeline",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{detail['pipeline']}"],
        "detail": detail,
    }


def duplicate_eventbridge_delivery(server: SandboxServer) -> RaceResult:
    """Every CodePipeline event of one run (pipeline race-events-*) delivered twice at once
    to pipeline_events: the run's start and stages, then a console approval.

    One status message, each thread line once, the open approval settled once (closed as
    approved in the console, no PutApprovalResult from the gate).
    """
    race = _Race(server, "duplicate EventBridge delivery")
    race.result.trials = 1
    pipeline = f"race-events-{_tag()}"
    trial = pipeline
    answers: list[Any] = []

    def deliver_twice(held: list[Any]) -> None:
        for (events,) in held:  # each held emit([(detail_type, detail), …]), in order
            for detail_type, detail in events:
                event = eventbridge_event(detail_type, detail)
                answers.extend(_together([partial(race.deliver, EVENTS_FUNCTION, event)] * 2))

    def ours(args: Any) -> bool:
        return any(detail.get("pipeline") == pipeline for _, detail in args[0])

    with _held(race.sandbox, "emit", ours) as held:
        run = race.driver.start_run(pipeline)
    deliver_twice(held)
    message = race.driver.open_requests([pipeline], timeout=OPEN_TIMEOUT)[pipeline]
    approval_id = button_value(message)
    with _held(race.sandbox, "emit", ours) as decided:
        race.client.post(
            f"/_sandbox/pipelines/{pipeline}/approvals/{run['approvalToken']}",
            {"status": "Approved", "summary": "looked fine", "by": "ops@example.com"},
        )
    deliver_twice(decided)
    count = sum(len(events) for (events,) in held + decided)
    race.result.notes.append(f"{count} events, each delivered twice")

    failed = _described(answers)
    if failed:
        race.problem(f"{trial}: pipeline_events raised {'; '.join(failed[:3])}")
    answered = [a for a in answers if isinstance(a, dict)]
    settled = [s for a in answered for s in a.get("settled") or []]
    if settled != [approval_id]:
        race.problem(f"{trial}: settled {settled}, expected the approval once")
    posted = sum(1 for a in answered if a.get("posted"))
    if posted != 1:
        race.problem(f"{trial}: the status message was posted {posted} times")
    record = race.finish(approval_id, trial)
    if record is not None:
        race.result.outcomes[record["outcome"]] += 1
        race.check_heard_once(trial, run["approvalToken"], record, console_allowed=True)
        race.check_closed(trial, message)
    messages = race.client.messages()
    status = [
        m
        for m in messages
        if m["channel"] == "C0STATUS" and m["thread_ts"] is None and pipeline in (m["text"] or "")
    ]
    if len(status) != 1:
        race.problem(f"{trial}: {len(status)} status messages, expected 1")
    else:
        lines = [m["text"] for m in messages if m["thread_ts"] == status[0]["ts"]]
        twice = {line: n for line, n in Counter(lines).items() if n > 1}
        if twice:
            race.problem(f"{trial}: thread lines posted more than once: {twice}")
        if not lines:
            race.problem(f"{trial}: no thread lines")
        race.result.notes.append(f"status message {status[0]['text']!r}, {len(lines)} thread lines")
    return race.done()


# --------------------------------------------------------------------------- 6. holds

#: Seconds from the moment a hold's wait runs out (its task's start plus its timeout, from
#: the execution's history) at which `cancel_at_the_hold_end` clicks Cancel, one trial each.
HOLD_END_OFFSETS = (-0.4, -0.1, -0.05, 0.0, 0.03, 0.1, 0.4)
#: How long after the policy is put the hold race's freeze ends: room to open the requests
#: and approve them (about two seconds), then a hold of a second or two.
HOLD_LEAD = 5.0
#: The freeze of the override races: longer than any of them lasts.
OVERRIDE_FREEZE = 120.0
#: Who approves (and so is held), who cancels, and the policy's override approvers.
HOLD_APPROVER = "U0ALICE"
CANCELLER = "U0BOB"
OVERRIDERS = ("U0CAROL", "U0DAVE")
HOLD_STATE = "Hold Until Deploys May Go On"


@contextmanager
def _freezing(race: _Race, freezes: dict[str, float]) -> Iterator[dict[str, float]]:
    """Put RACES_POLICY in force with a freeze on each rule `freezes` names by its match,
    from a minute ago until that many seconds from now (`POST /_sandbox/policy`); yield
    each freeze's end (epoch seconds). The rules are stored with each request when it
    opens, so the races' own policy comes back afterwards without changing them."""
    policy = yaml.safe_load(RACES_POLICY.read_text(encoding="utf-8"))
    now = time.time()
    ends = {match: now + seconds for match, seconds in freezes.items()}
    for rule in policy["pipelines"]:
        if rule["match"] in ends:
            rule["freezes"] = [
                {
                    "from": _iso(now - 60),
                    "to": _iso(ends[rule["match"]]),
                    "reason": "Race freeze",
                }
            ]
    race.client.post("/_sandbox/policy", policy)
    try:
        yield ends
    finally:
        race.client.post("/_sandbox/policy", yaml.safe_load(RACES_POLICY.read_text("utf-8")))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _item(race: _Race, approval_id: str) -> dict[str, Any]:
    """The approval's item as the table keeps it (its `status` is not in the record)."""
    item: dict[str, Any] = race.sandbox.client("dynamodb").get_item(
        TableName=race.sandbox.table_name,
        Key={"approval_id": {"S": approval_id}},
        ConsistentRead=True,
    )["Item"]
    return item


def _record(race: _Race, approval_id: str) -> dict[str, Any]:
    return next(a for a in race.client.approvals() if a["approval_id"] == approval_id)


def _buttons(race: _Race, message: dict[str, Any]) -> list[str]:
    current = next(
        m
        for m in race.client.messages()
        if (m["channel"], m["ts"]) == (message["channel"], message["ts"])
    )
    return [
        element["action_id"]
        for block in current["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def _current(race: _Race, message: dict[str, Any]) -> dict[str, Any]:
    return next(
        m
        for m in race.client.messages()
        if (m["channel"], m["ts"]) == (message["channel"], message["ts"])
    )


def _shows(race: _Race, message: dict[str, Any], buttons: list[str]) -> bool:
    return _buttons(race, message) == buttons


def _opened_view(race: _Race, approval_id: str, user: str) -> dict[str, Any] | None:
    """The newest modal opened for `user` on this approval, if any."""
    return next(
        (
            v
            for v in reversed(race.sandbox.slack.views())
            if v["view"].get("private_metadata") == approval_id and v.get("user") == user
        ),
        None,
    )


def _hold(race: _Race, opened: dict[str, Any], buttons: list[str]) -> dict[str, dict[str, Any]]:
    """Approve every request at once (HOLD_APPROVER) and wait until each shows its hold
    (`buttons`): {pipeline: the held message}. A request not held is a problem."""
    answers = _together(
        [
            partial(race.send, race.driver.click_body(message, "approve", HOLD_APPROVER))
            for _, message in opened.values()
        ]
    )
    race.check_statuses("approve clicks", answers)
    held = {}
    for pipeline, (_, message) in opened.items():
        try:
            wait_for(
                partial(_shows, race, message, buttons),
                timeout=OPEN_TIMEOUT,
                interval=0.05,
                what="the hold",
            )
        except TimeoutError:
            race.problem(f"{pipeline}: not held (buttons {_buttons(race, message)})")
            continue
        held[pipeline] = _current(race, message)
    return held


def _answers(race: _Race, approval_id: str, user: str) -> list[str]:
    """What the gate answered each click or modal submission of `user` on this approval
    (the slack_interactions log's `result`), in order."""
    found = []
    for line in list(race.sandbox.logs.lines):
        if approval_id not in line or "handled a click" not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            entry.get("approval_id") == approval_id
            and entry.get("message") == "handled a click"
            and entry.get("user") == user
        ):
            found.append(str(entry.get("result")))
    return found


def _hold_ends_at(race: _Race, approval_id: str) -> float:
    """When the hold's wait runs out: its task's start plus its timeout (epoch seconds)."""
    history = race.driver.history(approval_id)
    entered = [
        i
        for i, e in enumerate(history)
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == HOLD_STATE
    ]
    scheduled = next(e for e in history[entered[-1] :] if e["type"] == "TaskScheduled")
    details = scheduled["taskScheduledEventDetails"]
    return float(scheduled["timestamp"].timestamp() + details["timeoutInSeconds"])


def _asked_again(race: _Race, trial: str, approval_id: str, message: dict[str, Any]) -> bool:
    """After a cancel won: the request is open again (PENDING, no hold, no override, asked
    with Approve and Reject) and CodePipeline heard nothing. False, with the problem, if not."""
    try:
        wait_for(
            lambda: _buttons(race, message) == ["approve", "reject"],
            timeout=FINISH_TIMEOUT,
            interval=0.05,
            what="the request asked again",
        )
    except TimeoutError:
        race.problem(f"{trial}: cancelled, but not asked again (buttons {_buttons(race, message)})")
        return False
    status = _item(race, approval_id)["status"]["S"]
    record = _record(race, approval_id)
    if status != "PENDING" or record["held"] or record["override"] or record["decided_by"]:
        race.problem(
            f"{trial}: cancelled, yet status {status}, held {record['held']}, override "
            f"{record['override']}, decided by {record['decided_by']}"
        )
    return True


def _finish_rejected(
    race: _Race, trial: str, run: dict[str, Any], approval_id: str, message: dict[str, Any]
) -> dict[str, Any] | None:
    """A cancelled hold's request, asked again: CodePipeline has heard nothing; CANCELLER
    rejects it (no reason needed), which CodePipeline hears once. Its decision record."""
    if race.results(run["approvalToken"]):
        race.problem(
            f"{trial}: cancelled, yet CodePipeline heard {race.results(run['approvalToken'])}"
        )
    if not _asked_again(race, trial, approval_id, message):
        return None
    status = race.send(race.driver.click_body(_current(race, message), "reject", CANCELLER))
    if status != 200:
        race.problem(f"{trial}: the reject click answered {status}")
    record = race.finish(approval_id, trial)
    if record is None:
        return None
    race.check_heard_once(trial, run["approvalToken"], record)
    race.check_closed(trial, message)
    if record["outcome"] != "rejected" or record["override"] is not None:
        race.problem(
            f"{trial}: cancelled then rejected, yet outcome {record['outcome']}, "
            f"override {record['override']}"
        )
    return record


def _finish_approved(
    race: _Race, trial: str, run: dict[str, Any], approval_id: str, message: dict[str, Any]
) -> dict[str, Any] | None:
    """A hold that ended approved (its time came, or an override): CodePipeline heard
    Approved once, and the record says so. The decision record."""
    record = race.finish(approval_id, trial)
    if record is None:
        return None
    race.check_heard_once(trial, run["approvalToken"], record)
    race.check_closed(trial, message)
    if record["outcome"] != "approved" or record["held"] is None:
        race.problem(f"{trial}: outcome {record['outcome']}, held {record['held']}")
    return record


def cancel_at_the_hold_end(
    server: SandboxServer, offsets: tuple[float, ...] = HOLD_END_OFFSETS
) -> RaceResult:
    """One approval per offset (pipelines race-holdend-*), approved at once in a freeze that
    ends HOLD_LEAD seconds after the policy is put, so each is held a second or two; then
    Cancel clicked once per approval at the moment its hold's wait runs out plus the offset.

    Each ends one way, never both, never twice: the hold's end won (CodePipeline heard
    Approved once, the Cancel was told it was not held any more and changed nothing), or
    the Cancel won (the request is open again, PENDING, without its approval, and
    CodePipeline heard nothing; then it is rejected, and CodePipeline hears that once).
    """
    race = _Race(server, "cancel at the hold's end")
    race.result.trials = len(offsets)
    tag = _tag()
    pipelines = [f"race-holdend-{tag}-{i}" for i in range(len(offsets))]
    with _freezing(race, {"race-holdend-*": HOLD_LEAD}) as ends:
        opened = race.open(pipelines)
    freeze_ends = ends["race-holdend-*"]
    held = _hold(race, opened, ["cancel_hold"])
    plans = []
    for i, pipeline in enumerate(pipelines):
        if pipeline not in held:
            continue
        approval_id = button_value(opened[pipeline][1])
        plans.append((i, pipeline, approval_id, _hold_ends_at(race, approval_id)))
    bodies = {
        pipeline: race.driver.click_body(held[pipeline], "cancel_hold", CANCELLER)
        for pipeline in held
    }

    def cancel_at(plan: tuple[int, str, str, float]) -> tuple[int, float]:
        i, pipeline, _, ends_at = plan
        late = time.time() - (ends_at + offsets[i])
        time.sleep(max(0.0, -late))  # the scenario's moment
        sent = time.time()
        return race.send(bodies[pipeline]), sent

    with ThreadPoolExecutor(max_workers=max(1, len(plans))) as pool:
        sent = list(pool.map(cancel_at, plans))

    for (i, pipeline, approval_id, ends_at), (status, at) in zip(plans, sent, strict=True):
        run, message = opened[pipeline]
        trial = f"{pipeline} (Cancel {offsets[i]:+.2f} s from the hold's end)"
        if status != 200:
            race.problem(f"{trial}: the cancel answered {status}")
            race.result.server_errors += status >= 500
        if at - (ends_at + offsets[i]) > 0.05:
            race.problem(f"{trial}: the cancel went {at - ends_at - offsets[i]:.2f} s late")
        answer = _wait_answer(race, approval_id, CANCELLER)
        if answer == "hold_cancelled":
            race.result.outcomes["cancel won"] += 1
            record = _finish_rejected(race, trial, run, approval_id, message)
        elif answer == "not_held":
            race.result.outcomes["hold's end won"] += 1
            record = _finish_approved(race, trial, run, approval_id, message)
            if record is not None and record["decided_by"] != [HOLD_APPROVER]:
                race.problem(f"{trial}: approved by {record['decided_by']}")
            if record is not None and record["reported_at"] < record["held"]["until"]:
                race.problem(f"{trial}: reported at {record['reported_at']}, before the hold's end")
        else:
            race.problem(f"{trial}: the cancel was answered {answer}")
            race.finish(approval_id, trial)
            continue
        race.result.notes.append(
            f"Cancel sent {at - ends_at:+.3f} s from the hold's end "
            f"({ends_at - freeze_ends:+.2f} s from the freeze's): {answer}"
            + (f", then {record['outcome']}" if record else "")
        )
    return race.done()


def _wait_answer(race: _Race, approval_id: str, user: str, nth: int = 1) -> str | None:
    """The gate's answer to `user`'s `nth` click or submission on this approval."""
    try:
        answers = wait_for(
            lambda: (found := _answers(race, approval_id, user))[nth - 1 :] and found,
            timeout=10,
            interval=0.05,
            what=f"the answer to {user}",
        )
    except TimeoutError:
        return None
    return answers[nth - 1]


def _override_views(
    race: _Race, held: dict[str, dict[str, Any]], users: tuple[str, ...]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Each user clicks Deploy now on each held request: {(pipeline, user): the modal}."""
    views = {}
    for pipeline, message in held.items():
        approval_id = button_value(message)
        for user in users:
            status = race.send(race.driver.click_body(message, "deploy_now", user))
            if status != 200:
                race.problem(f"{pipeline}: {user}'s Deploy now answered {status}")
                continue
            views[(pipeline, user)] = wait_for(
                partial(_opened_view, race, approval_id, user),
                timeout=10,
                interval=0.05,
                what=f"{user}'s Deploy now modal",
            )
    return views


def _submission(
    race: _Race, view: dict[str, Any], user: str, reason: str
) -> tuple[bytes, dict[str, str]]:
    payload = view_submission_payload(
        race.sandbox.slack, view_id=view["id"], user_id=user, values={"reason": {"reason": reason}}
    )
    body = form_body(payload)
    return body, signed_request(body, race.sandbox.signing_secret, int(time.time()))


def deploy_now_against_cancel(server: SandboxServer, trials: int = 4) -> RaceResult:
    """Per trial (pipelines race-override-*, one override approver needed), a request held
    by a freeze; the override approver opens Deploy now, then submits its reason at the
    same moment as an approver clicks Cancel.

    Exactly one wins: the override (CodePipeline heard Approved once, the record's
    override names the approver and the reason; the Cancel changed nothing) or the Cancel
    (the request is open again with no override, CodePipeline heard nothing; then it is
    rejected, heard once).
    """
    race = _Race(server, "Deploy now against Cancel")
    race.result.trials = trials
    tag = _tag()
    pipelines = [f"race-override-{tag}-{i}" for i in range(trials)]
    with _freezing(race, {"race-override-*": OVERRIDE_FREEZE}):
        opened = race.open(pipelines)
    held = _hold(race, opened, ["cancel_hold", "deploy_now"])
    overrider = OVERRIDERS[0]
    views = _override_views(race, held, (overrider,))
    plans = [(p, f"{p}: hotfix {i}") for i, p in enumerate(pipelines) if (p, overrider) in views]
    calls: list[Callable[[], Any]] = []
    for pipeline, reason in plans:
        calls.append(
            partial(race.send, _submission(race, views[(pipeline, overrider)], overrider, reason))
        )
        calls.append(
            partial(race.send, race.driver.click_body(held[pipeline], "cancel_hold", CANCELLER))
        )
    answers = _together(calls)
    race.check_statuses("submissions and cancels", answers)

    for pipeline, reason in plans:
        run, message = opened[pipeline]
        approval_id = button_value(message)
        trial = pipeline
        override = _wait_answer(race, approval_id, overrider, nth=2)  # 1: the click
        cancel = _wait_answer(race, approval_id, CANCELLER)
        if (override, cancel) == ("overridden", "not_held"):
            race.result.outcomes["override won"] += 1
            record = _finish_approved(race, trial, run, approval_id, message)
            if record is not None and record["override"] != {"by": [overrider], "reason": reason}:
                race.problem(f"{trial}: overridden, yet override {record['override']}")
            results = race.results(run["approvalToken"])
            if results and reason not in results[0]["result"]["summary"]:
                race.problem(f"{trial}: the summary does not say why: {results[0]['result']}")
        elif (override, cancel) == ("not_held", "hold_cancelled"):
            race.result.outcomes["cancel won"] += 1
            _finish_rejected(race, trial, run, approval_id, message)
        else:
            race.problem(f"{trial}: the override was answered {override}, the cancel {cancel}")
            race.finish(approval_id, trial)
    return race.done()


def overrides_at_once(server: SandboxServer, trials: int = 2) -> RaceResult:
    """Per trial, a request held by a freeze; both override approvers open Deploy now,
    then submit at the same moment. With required_approvals 2 (race-overrides2-*) both
    are needed: one Approved report, the override by both, with both reasons. With 1
    (race-overrides1-*) either is enough: one Approved report, the override by the one
    whose submission won; the other was told the request is no longer held.
    """
    race = _Race(server, "two overrides at once")
    race.result.trials = 2 * trials
    tag = _tag()
    needs = {f"race-overrides{n}-{tag}-{i}": n for n in (2, 1) for i in range(trials)}
    freezes = {"race-overrides2-*": OVERRIDE_FREEZE, "race-overrides1-*": OVERRIDE_FREEZE}
    with _freezing(race, freezes):
        opened = race.open(list(needs))
    held = _hold(race, opened, ["cancel_hold", "deploy_now"])
    views = _override_views(race, held, OVERRIDERS)
    plans = [p for p in needs if all((p, user) in views for user in OVERRIDERS)]
    reasons = {(p, user): f"{p}: {user} says now" for p in plans for user in OVERRIDERS}
    answers = _together(
        [
            partial(race.send, _submission(race, views[(p, user)], user, reasons[(p, user)]))
            for p in plans
            for user in OVERRIDERS
        ]
    )
    race.check_statuses("submissions", answers)

    for pipeline in plans:
        run, message = opened[pipeline]
        approval_id = button_value(message)
        needed = needs[pipeline]
        trial = f"{pipeline} (required_approvals {needed})"
        told = {user: _wait_answer(race, approval_id, user, nth=2) for user in OVERRIDERS}
        record = _finish_approved(race, trial, run, approval_id, message)
        if record is None:
            continue
        override = record["override"] or {"by": [], "reason": ""}
        winners = [user for user, answer in told.items() if answer == "overridden"]
        if needed == 2:
            expected = ["override_recorded", "overridden"]
            by_right = sorted(override["by"]) == sorted(OVERRIDERS)
            reasons_right = all(reasons[(pipeline, u)] in override["reason"] for u in OVERRIDERS)
        else:
            expected = ["not_held", "overridden"]
            by_right = override["by"] == winners
            reasons_right = (
                override["reason"] == reasons[(pipeline, winners[0])] if winners else False
            )
        if sorted(str(a) for a in told.values()) != sorted(expected):
            race.problem(f"{trial}: the submissions were answered {told}")
        if not (by_right and reasons_right):
            race.problem(f"{trial}: override {record['override']}; the answers {told}")
        race.result.outcomes[f"approved, override by {len(override['by'])} of {needed} needed"] += 1
        race.result.notes.append(f"{trial}: override by {override['by']}; answers {told}")
    return race.done()


# --------------------------------------------------------------------------- all


RACES: tuple[tuple[str, Callable[[SandboxServer], RaceResult]], ...] = (
    ("storm", click_storm),
    ("storm, approve and reject", lambda server: click_storm(server, mixed=True)),
    ("storm, two steps", steps_storm),
    ("deadline", clicks_at_the_deadline),
    ("console", click_against_console),
    ("SNS", duplicate_sns_delivery),
    ("EventBridge", duplicate_eventbridge_delivery),
    ("cancel at the hold's end", cancel_at_the_hold_end),
    ("Deploy now against Cancel", deploy_now_against_cancel),
    ("two overrides at once", overrides_at_once),
)


def run_races(
    server: SandboxServer | None = None, out: Callable[[str], None] | None = None
) -> list[RaceResult]:
    """Every race, one after another, on `server` (started with RACES_POLICY) or on a
    sandbox of its own. A race that crashes is a result with that problem."""
    if server is None:
        with SandboxServer(policy_file=RACES_POLICY, port=0) as own:
            try:
                return run_races(own, out)
            finally:
                if not own.sandbox.wait_for_executions(timeout=60) and out is not None:
                    out("an execution was still running when the races' sandbox stopped")
    results = []
    for name, race in RACES:
        started = time.perf_counter()
        try:
            result = race(server)
        except Exception as exc:  # the race itself broke: a problem to report
            result = RaceResult(name, problems=[f"the race crashed: {exc!r}"])
            result.seconds = time.perf_counter() - started
        results.append(result)
        if out is not None:
            out(result.summary())
    return results
