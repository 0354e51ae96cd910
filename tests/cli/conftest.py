"""Fixtures for the operations commands: the approvals table of template.yaml in moto's
in-process DynamoDB, written through the domain's stores, and the commands run through
``cli.main.main`` with that table as their target."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from approval_gate.alarm_watch import watch
from approval_gate.feed import FeedStore, parse_event
from approval_gate.policy import Approvers, Escalation
from approval_gate.records import Hold
from approval_gate.rules import FreezeOverride, Step
from approval_gate.store import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXPIRED,
    HELD,
    REJECTED,
    ApprovalStore,
    Vote,
)
from moto import mock_aws

from cli.main import main
from cli.target import Target
from tests.unit.events import load_event
from tests.unit.fakes import create_approvals_table, make_approval, make_rules

TABLE = "approval-gate-approvals"
REGION = "us-east-2"


@dataclass
class Ran:
    """What one command did: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


@dataclass
class Gate:
    """The table and the clients a command reads through."""

    dynamodb: Any
    secrets: Any
    store: ApprovalStore

    def target(self, **changes: Any) -> Target:
        values: dict[str, Any] = {
            "dynamodb": self.dynamodb,
            "table": TABLE,
            "secrets": self.secrets,
        }
        values.update(changes)
        return Target(**values)

    def run(self, *argv: str, now: datetime, target: Target | None = None) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            list(argv),
            target=target or self.target(),
            stdout=out,
            stderr=err,
            clock=lambda: now,
        )
        return Ran(code, out.getvalue(), err.getvalue())

    def add_feed_and_watch_items(self, now: datetime) -> None:
        """Items that share the table but are no approvals: the audit never lists them."""
        FeedStore(TABLE, self.dynamodb).apply(
            parse_event(load_event("codepipeline_pipeline_started")), now=now
        )
        watch(self.dynamodb, TABLE, "0" * 32, ["prod-alarm"], now)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_approvals_table(dynamodb, TABLE)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        yield Gate(dynamodb, secrets, ApprovalStore(TABLE, dynamodb, retention_days=400))


# --------------------------------------------------------------------------- the history

#: "Now" for every command: time is a parameter.
NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
ALICE, BOB, CAROL, DAN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN"
SRE = FreezeOverride(approvers=Approvers(users=("U0SRE1",), groups=("S0SRE",)))
STEPS = (
    Step("QA", Approvers(users=(DAN,), groups=("S0QA",)), 1),
    Step("Release", Approvers(users=(ALICE, BOB, CAROL)), 2),
)


def _vote(user: str, vote: str, at: datetime, reason: str | None = None, **more: Any) -> Vote:
    return Vote(user_id=user, name=user.lower()[2:], vote=vote, at=at, reason=reason, **more)


def request(store: ApprovalStore, key: str, pipeline: str, at: datetime, **more: Any) -> str:
    approval_id = f"{key:0>32}"
    rules = more.pop("rules", None) or make_rules(
        escalation=Escalation(approvers=Approvers(users=(CAROL,))),
        freeze_override=SRE,
    )
    store.create(
        make_approval(
            approval_id=approval_id,
            pipeline=pipeline,
            pipeline_execution_id=f"exec-{key}",
            requested_at=at,
            deadline_at=at + timedelta(hours=24),
            expires=at + timedelta(days=7),
            console_link=f"https://console.example/{pipeline}/{key}",
            rules=rules,
            **more,
        )
    )
    return approval_id


def write_history(store: ApprovalStore) -> dict[str, str]:
    """A mix of approvals over four months, each outcome and state at least once; their
    ids by name. Times are chosen so that month edges and the default 30 days matter."""
    ids: dict[str, str] = {}
    t = datetime(2026, 9, 15, 10, 0, tzinfo=UTC)
    ids["approved_sep"] = a = request(store, "a1", "prod-web", t)
    store.decide(
        a,
        status=APPROVED,
        votes=(_vote(ALICE, "approve", t + timedelta(minutes=25)),),
        reason="canary is green",
        at=t + timedelta(minutes=25),
    )

    t = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)  # its decision falls in November
    ids["rejected_oct"] = a = request(store, "a2", "prod-api", t)
    store.decide(
        a,
        status=REJECTED,
        votes=(_vote(BOB, "reject", t + timedelta(hours=2), "red"),),
        reason="red",
        at=t + timedelta(hours=2),
    )

    t = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
    ids["expired_nov"] = a = request(store, "a3", "prod-web", t)
    store.record_reminder(a)
    store.record_reminder(a)
    store.mark_escalated(a)
    store.decide(
        a,
        status=EXPIRED,
        decided_by=(),
        reason=None,
        note="No decision within 24h",
        at=t + timedelta(hours=24),
    )

    t = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    ids["elsewhere_nov"] = a = request(store, "a4", "staging-web", t)
    store.close(a, at=t + timedelta(minutes=7), status=DECIDED_ELSEWHERE)

    t = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # approved in a freeze, held 3 hours
    ids["held_then_approved"] = a = request(store, "a5", "prod-web", t)
    store.record_reminder(a)
    store.decide(
        a,
        status=HELD,
        votes=(_vote(ALICE, "approve", t + timedelta(hours=1)),),
        reason=None,
        at=t + timedelta(hours=1),
        held=Hold(until=t + timedelta(hours=4), why="freeze", reason="Black Friday"),
    )
    store.release(a, status=APPROVED)
    store.close(a, at=t + timedelta(hours=4), reported=True)

    t = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # open, reminded twice, escalated
    ids["open_escalated"] = a = request(store, "a6", "prod-web", t)
    store.save_message(a, "C0DEPLOYS", "1764428400.000100")
    store.record_reminder(a)
    store.record_reminder(a)
    store.mark_escalated(a)

    t = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # approved, held by a freeze until tomorrow
    ids["held_now"] = a = request(store, "a7", "prod-api", t)
    store.save_message(a, "C0DEPLOYS", "1764504000.000200")
    store.decide(
        a,
        status=HELD,
        votes=(_vote(BOB, "approve", t + timedelta(hours=1)),),
        reason=None,
        at=t + timedelta(hours=1),
        held=Hold(
            until=datetime(2026, 12, 2, 8, 0, tzinfo=UTC), why="freeze", reason="year-end freeze"
        ),
    )

    t = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # QA done, Release's turn
    ids["open_steps"] = a = request(
        store,
        "a8",
        "prod-web",
        t,
        rules=make_rules(
            approvers=Approvers(users=(DAN, ALICE, BOB, CAROL), groups=("S0QA",)), steps=STEPS
        ),
    )
    store.add_vote(a, _vote(DAN, "approve", t + timedelta(minutes=5), step="QA"))
    return ids
