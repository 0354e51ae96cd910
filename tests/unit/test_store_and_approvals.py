"""The approvals table (conditional writes, the decision record) and the approval's steps:
deadline, summary, asking in Slack, deciding at the deadline, closing."""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from approval_gate import asking, closing, starting
from approval_gate.approval_items import AUDIT_INDEX, AUDIT_MONTH
from approval_gate.clock import parse_iso
from approval_gate.feed import FeedStore, parse_event
from approval_gate.messages import (
    ACTIONS_BLOCK,
)
from approval_gate.policy import Approvers, Escalation
from approval_gate.reporting import summary
from approval_gate.store import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXECUTION_INDEX,
    EXPIRED,
    REJECTED,
    AlreadyDecided,
    Approval,
    ApprovalStore,
    Vote,
)

from tests.unit.conftest import TABLE
from tests.unit.events import load_event
from tests.unit.fakes import (
    APPROVAL_ID,
    EXECUTION_ID,
    FIXED,
    TASK_TOKEN,
    TOKEN,
    ActionExecutions,
    RecordingSlack,
    SerialisedClient,
    approvals_table_properties,
    clock_at,
    make_approval,
    make_rules,
)

ALICE = Vote(user_id="U0ALICE", name="alice", vote="approve", at=FIXED + timedelta(minutes=25))
BOB_REJECTS = Vote(
    user_id="U0BOB", name="bob", vote="reject", at=FIXED + timedelta(minutes=30), reason="red"
)
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
RECORD_KEYS = {
    "approval_id",
    "pipeline",
    "stage",
    "action",
    "pipeline_execution_id",
    "outcome",
    "decided_by",
    "reason",
    "requested_at",
    "decided_at",
    "reminders",
    "escalated",
    "steps",
    "held",
    "reported_at",
    "override",
    "checks",
    "revisions",
    "previous_revisions",
    "compare_url",
    "votes",
}


def approve_by_alice(store: ApprovalStore, reason: str | None = None) -> Approval:
    return store.decide(APPROVAL_ID, status=APPROVED, votes=(ALICE,), reason=reason, at=ALICE.at)


def walk(value: Any, path: str = "") -> Any:
    """Every (path, string) inside a JSON-like value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


# --------------------------------------------------------------------------- the table


def test_the_table_fixture_matches_template_yaml() -> None:
    properties = approvals_table_properties()
    assert properties["KeySchema"] == [{"AttributeName": "approval_id", "KeyType": "HASH"}]
    assert [index["IndexName"] for index in properties["GlobalSecondaryIndexes"]] == [
        EXECUTION_INDEX,
        AUDIT_INDEX,
    ]
    assert properties["TimeToLiveSpecification"]["AttributeName"] == "expire_at"


def test_create_stores_a_request_once_and_reports_a_duplicate(store: ApprovalStore) -> None:
    assert store.create(make_approval()) is True
    # A duplicate SNS delivery must not reset what happened since.
    approve_by_alice(store)
    assert store.create(make_approval()) is False
    current = store.get(APPROVAL_ID)
    assert current is not None
    assert current.status == APPROVED


def test_get_round_trips_every_field_of_a_new_request(store: ApprovalStore) -> None:
    rules = make_rules(
        approvers=Approvers(users=("U0ALICE",), groups=("S0RELEASE",)),
        required_approvals=1,
        escalation=Escalation(channel="C0ONCALL", mention_groups=("S0ONCALL",)),
        reminder_every=1800,
        deadline=7200,
        deadline_margin=300,
        on_deadline="approve",
        status_channel="C0FEED",
        announce=("failed", "started"),
        rule='pipelines[0] (match "prod-*")',
    )
    approval = make_approval(rules=rules, reminders=0, escalated=False)
    store.create(approval)

    assert store.get(APPROVAL_ID) == approval


def test_get_of_an_unknown_approval_is_none(store: ApprovalStore) -> None:
    assert store.get("f" * 32) is None


def test_optional_fields_may_be_absent(store: ApprovalStore) -> None:
    bare = make_approval(
        pipeline_execution_id=None, custom_data=None, external_entity_link=None, console_link=None
    )
    store.create(bare)
    assert store.get(APPROVAL_ID) == bare


def test_the_item_expires_after_the_retention_period(
    store: ApprovalStore, dynamodb: SerialisedClient
) -> None:
    store.create(make_approval())
    item = dynamodb.get_item(TableName=TABLE, Key={"approval_id": {"S": APPROVAL_ID}})["Item"]
    assert int(item["expire_at"]["N"]) == int((FIXED + timedelta(days=400)).timestamp())


def test_the_request_is_found_by_its_pipeline_execution(
    store: ApprovalStore, dynamodb: SerialisedClient
) -> None:
    store.create(make_approval())
    found = dynamodb.query(
        TableName=TABLE,
        IndexName=EXECUTION_INDEX,
        KeyConditionExpression="pipeline_execution_id = :id",
        ExpressionAttributeValues={":id": {"S": EXECUTION_ID}},
    )["Items"]
    assert [item["approval_id"]["S"] for item in found] == [APPROVAL_ID]


def test_repr_of_an_approval_hides_both_tokens(store: ApprovalStore) -> None:
    store.create(make_approval())
    stored = store.save_task_token(APPROVAL_ID, TASK_TOKEN)
    for approval in (stored, make_approval(task_token=TASK_TOKEN)):
        assert approval.task_token == TASK_TOKEN
        assert TOKEN not in repr(approval)
        assert TASK_TOKEN not in repr(approval)
        assert "tAsKtOkEn" not in repr(approval)


def test_decide_moves_pending_to_approved_once(store: ApprovalStore) -> None:
    store.create(make_approval())

    decided = approve_by_alice(store, reason="canary is green")

    assert decided.status == APPROVED
    assert decided.decided_by == ("U0ALICE",)
    assert decided.votes == (ALICE,)
    assert decided.reason == "canary is green"
    assert decided.decided_at == ALICE.at
    assert store.get(APPROVAL_ID) == decided


def test_a_second_decision_raises_with_the_first_one(store: ApprovalStore) -> None:
    store.create(make_approval())
    approve_by_alice(store)

    with pytest.raises(AlreadyDecided) as caught:
        store.decide(
            APPROVAL_ID, status=REJECTED, votes=(BOB_REJECTS,), reason="red", at=BOB_REJECTS.at
        )

    current = caught.value.approval
    assert (current.status, current.decided_by, current.reason) == (APPROVED, ("U0ALICE",), None)
    assert TOKEN not in str(caught.value)


def test_deciding_an_unknown_approval_is_a_key_error(store: ApprovalStore) -> None:
    with pytest.raises(KeyError):
        approve_by_alice(store)


def test_twenty_racing_decisions_have_exactly_one_winner(store: ApprovalStore) -> None:
    store.create(make_approval())
    start = threading.Barrier(20)
    winners: list[str] = []
    losers: list[str] = []
    errors: list[BaseException] = []

    def click(index: int) -> None:
        user = f"U0USER{index:02d}"
        vote = Vote(user_id=user, name=user.lower(), vote="approve", at=FIXED)
        start.wait()
        try:
            store.decide(APPROVAL_ID, status=APPROVED, votes=(vote,), reason=None, at=FIXED)
            winners.append(user)
        except AlreadyDecided as already:
            losers.append(already.approval.decided_by[0])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(winners) == 1
    assert len(losers) == 19
    assert set(losers) == set(winners)  # every loser was told who won
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert stored.decided_by == (winners[0],)


def test_a_task_token_is_kept_only_while_the_request_is_open(store: ApprovalStore) -> None:
    store.create(make_approval())
    assert store.save_task_token(APPROVAL_ID, TASK_TOKEN).task_token == TASK_TOKEN
    approve_by_alice(store)

    with pytest.raises(AlreadyDecided):
        store.save_task_token(APPROVAL_ID, TASK_TOKEN + "-later")
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert stored.task_token == TASK_TOKEN


def test_close_is_idempotent(store: ApprovalStore) -> None:
    store.create(make_approval())
    approve_by_alice(store)

    first = store.close(APPROVAL_ID, at=FIXED + timedelta(hours=1))
    second = store.close(
        APPROVAL_ID, at=FIXED + timedelta(hours=2), status=DECIDED_ELSEWHERE, note="late retry"
    )

    assert first.closed_at == FIXED + timedelta(hours=1)
    assert second == first
    assert store.get(APPROVAL_ID) == first


def test_close_of_an_unknown_approval_is_a_key_error(store: ApprovalStore) -> None:
    with pytest.raises(KeyError):
        store.close("f" * 32, at=FIXED)


# --------------------------------------------------------------------------- the record


def test_the_decision_record_has_exactly_the_documented_keys(store: ApprovalStore) -> None:
    store.create(make_approval())
    decided = approve_by_alice(store, reason="canary is green")

    record = decided.decision_record()

    assert set(record) == RECORD_KEYS
    assert record == {
        "approval_id": APPROVAL_ID,
        "pipeline": "prod-web",
        "stage": "Approve",
        "action": "ProductionGate",
        "pipeline_execution_id": EXECUTION_ID,
        "outcome": "approved",
        "decided_by": ["U0ALICE"],
        "reason": "canary is green",
        "requested_at": "2026-12-01T17:00:00.000Z",
        "decided_at": "2026-12-01T17:25:00.000Z",
        "reminders": 0,
        "escalated": False,
        "steps": [
            {
                "name": "Approvers",
                "required": 1,
                "approved_by": ["U0ALICE"],
                "completed_at": "2026-12-01T17:25:00.000Z",
            }
        ],
        "held": None,
        "reported_at": None,
        "override": None,
        "checks": [],
        "revisions": [],
        "previous_revisions": None,
        "compare_url": None,
        "votes": [
            {
                "user": "U0ALICE",
                "vote": "approve",
                "inputs": {},
                "comment": None,
                "at": "2026-12-01T17:25:00.000Z",
            }
        ],
    }
    assert json.loads(json.dumps(record)) == record


def test_an_open_request_has_a_record_without_outcome() -> None:
    record = make_approval().decision_record()
    assert set(record) == RECORD_KEYS
    assert (record["outcome"], record["decided_at"], record["decided_by"]) == (None, None, [])
    assert record["steps"] == [
        {"name": "Approvers", "required": 1, "approved_by": [], "completed_at": None}
    ]


@pytest.mark.parametrize("status", [APPROVED, REJECTED, EXPIRED, DECIDED_ELSEWHERE], ids=str.lower)
def test_record_outcomes_and_times_are_iso_utc(status: str) -> None:
    # A time in another zone still comes out as UTC, to the millisecond.
    in_paris = datetime(2026, 12, 1, 19, 25, 0, 123456, tzinfo=UTC).astimezone(
        timezone(timedelta(hours=1))
    )
    approval = make_approval(status=status, decided_at=in_paris, decided_by=("U0ALICE",))
    record = approval.decision_record()

    assert record["outcome"] == status.lower()
    for key in ("requested_at", "decided_at"):
        assert ISO_UTC.fullmatch(record[key]), record[key]
    assert record["decided_at"] == "2026-12-01T19:25:00.123Z"
    assert parse_iso(record["requested_at"]) == FIXED
    assert TOKEN not in json.dumps(record)


# --------------------------------------------------------------------------- deadline


def test_the_policy_deadline_wins_when_it_is_earlier() -> None:
    deadline = starting.decision_deadline(
        FIXED, expires=FIXED + timedelta(days=7), deadline=3600, margin=600
    )
    assert deadline == FIXED + timedelta(hours=1)


def test_codepipeline_expiry_less_the_margin_wins_when_it_is_earlier() -> None:
    expires = parse_iso("2026-12-01T18:00Z")  # CodePipeline writes minutes only
    requested_at = datetime(2026, 12, 1, 17, 0, 30, 500000, tzinfo=UTC)

    deadline = starting.decision_deadline(requested_at, expires, deadline=24 * 3600, margin=600)

    assert deadline == datetime(2026, 12, 1, 17, 50, tzinfo=UTC)
    assert deadline < expires


@pytest.mark.parametrize("expires_in", [timedelta(minutes=5), timedelta(0), timedelta(hours=-1)])
def test_the_deadline_is_never_before_the_request(expires_in: timedelta) -> None:
    deadline = starting.decision_deadline(FIXED, FIXED + expires_in, deadline=24 * 3600, margin=600)
    assert deadline == FIXED


# --------------------------------------------------------------------------- summary


def decided(status: str, *votes: Vote, reason: str | None = None, **more: Any) -> Approval:
    return make_approval(
        status=status,
        votes=votes,
        decided_by=tuple(v.user_id for v in votes),
        decided_at=FIXED + timedelta(minutes=25),
        reason=reason,
        **more,
    )


def test_the_summary_names_who_approved_in_slack() -> None:
    assert summary(decided(APPROVED, ALICE)) == "Approved in Slack by alice (U0ALICE)"


def test_the_summary_names_every_approver_and_the_reason() -> None:
    bob = Vote(user_id="U0BOB", name="bob", vote="approve", at=FIXED + timedelta(minutes=26))
    text = summary(decided(APPROVED, ALICE, bob, reason="canary green"))
    assert text == "Approved in Slack by alice (U0ALICE), bob (U0BOB): canary green"


def test_the_summary_of_a_rejection_gives_the_reason() -> None:
    text = summary(decided(REJECTED, BOB_REJECTS, reason="error rate up 4%"))
    assert text == "Rejected in Slack by bob (U0BOB): error rate up 4%"


def test_a_long_reason_with_markup_is_cut_at_a_word_and_neutralised() -> None:
    reason = "<!channel> see <https://evil.example/x|the graph> " + "because " * 700
    assert len(reason) > 5000

    text = summary(decided(REJECTED, BOB_REJECTS, reason=reason))

    assert len(text) <= 512
    assert text.startswith("Rejected in Slack by bob (U0BOB): channel see the graph because")
    assert text.endswith("because…")
    for markup in ("<", ">", "!channel", "https://", "evil.example"):
        assert markup not in text


def test_the_summary_of_an_expired_request_is_its_note() -> None:
    approval = make_approval(status=EXPIRED, note="No decision within 24h: rejected by policy")
    assert summary(approval) == "No decision within 24h: rejected by policy"


def test_the_summary_of_a_request_decided_elsewhere_says_so() -> None:
    assert summary(make_approval(status=DECIDED_ELSEWHERE)) == "Decided outside Slack"


# --------------------------------------------------------------------------- at_deadline

AT_DEADLINE = FIXED + timedelta(hours=1)


def test_at_the_deadline_an_open_request_is_rejected_by_policy(store: ApprovalStore) -> None:
    store.create(make_approval())

    result = closing.at_deadline(APPROVAL_ID, store=store, clock=clock_at(AT_DEADLINE))

    assert result == {
        "outcome": "expired",
        "status": "Rejected",
        "summary": "No decision within 1h: rejected by policy",
        "steps": result["steps"],
        "held": None,
        "wait": None,
    }
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.decided_at, stored.decided_by) == (EXPIRED, AT_DEADLINE, ())
    assert stored.note == "No decision within 1h: rejected by policy"


def test_at_the_deadline_a_lenient_policy_approves(store: ApprovalStore) -> None:
    store.create(make_approval(rules=make_rules(on_deadline="approve")))

    result = closing.at_deadline(APPROVAL_ID, store=store, clock=clock_at(AT_DEADLINE))

    assert result == {
        "outcome": "expired",
        "status": "Approved",
        "summary": "No decision within 1h: approved by policy",
        "steps": result["steps"],
        "held": None,
        "wait": None,
    }


def test_a_decision_recorded_before_the_deadline_step_wins(store: ApprovalStore) -> None:
    store.create(make_approval())
    approve_by_alice(store)

    result = closing.at_deadline(APPROVAL_ID, store=store, clock=clock_at(AT_DEADLINE))

    assert result == {
        "outcome": "approved",
        "status": "Approved",
        "summary": "Approved in Slack by alice (U0ALICE)",
        "steps": result["steps"],
        "held": None,
        "wait": None,
    }
    assert [step["approved_by"] for step in result["steps"]] == [["U0ALICE"]]
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert stored.status == APPROVED


def test_a_decision_recorded_while_the_deadline_step_runs_wins(
    store: ApprovalStore, dynamodb: SerialisedClient
) -> None:
    store.create(make_approval())
    open_snapshot = store.get(APPROVAL_ID)
    approve_by_alice(store)

    class StaleFirstRead(ApprovalStore):
        """Reads the request as open, as the step did an instant before the click landed."""

        reads = 0

        def get(self, approval_id: str) -> Approval | None:
            self.reads += 1
            return open_snapshot if self.reads == 1 else super().get(approval_id)

    racing = StaleFirstRead(TABLE, dynamodb)
    result = closing.at_deadline(APPROVAL_ID, store=racing, clock=clock_at(AT_DEADLINE))

    assert (result["outcome"], result["status"]) == ("approved", "Approved")


def test_at_the_deadline_an_unknown_request_is_an_error(store: ApprovalStore) -> None:
    with pytest.raises(KeyError):
        closing.at_deadline("f" * 32, store=store, clock=clock_at(AT_DEADLINE))


# --------------------------------------------------------------------------- ask


def test_asking_posts_the_request_and_keeps_where_and_the_task_token(
    store: ApprovalStore,
) -> None:
    store.create(make_approval())
    slack = RecordingSlack()

    answer = asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)

    assert slack.methods() == ["chat_postMessage"]
    posted = slack.calls[0][1]
    assert posted["channel"] == "C0DEPLOYS"
    assert posted["unfurl_links"] is False
    assert "prod-web" in posted["text"]
    assert answer == {"channel": "C0DEPLOYS", "ts": "1796144403.000100", "posted": True}
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert (stored.channel, stored.message_ts) == ("C0DEPLOYS", "1796144403.000100")
    assert stored.task_token == TASK_TOKEN


def test_asking_logs_where_it_asked(
    store: ApprovalStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each record once, whether or not a handler module's Powertools Logger already keeps
    # the gate's records from the root logger.
    gate = logging.getLogger("approval-gate")
    monkeypatch.setattr(gate, "propagate", False)
    monkeypatch.setattr(gate, "handlers", [caplog.handler])
    caplog.set_level(logging.INFO, logger="approval-gate")
    store.create(make_approval())
    slack = RecordingSlack()

    asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)
    asking.ask(APPROVAL_ID, TASK_TOKEN + "-retry", store=store, slack=slack)

    logged = [(r.levelno, r.getMessage(), r.channel, r.posted) for r in caplog.records]
    assert logged == [
        (logging.INFO, "asked approvers in Slack", "C0DEPLOYS", True),
        (logging.INFO, "asked approvers in Slack", "C0DEPLOYS", False),
    ]


def test_a_retried_ask_updates_the_same_message_with_the_new_token(store: ApprovalStore) -> None:
    store.create(make_approval())
    slack = RecordingSlack()
    asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)

    answer = asking.ask(APPROVAL_ID, TASK_TOKEN + "-retry", store=store, slack=slack)

    assert slack.methods() == ["chat_postMessage", "chat_update"]
    updated = slack.calls[1][1]
    assert (updated["channel"], updated["ts"]) == ("C0DEPLOYS", "1796144403.000100")
    assert answer["posted"] is False
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert stored.task_token == TASK_TOKEN + "-retry"


def test_what_goes_to_slack_carries_the_approval_id_only_in_buttons(store: ApprovalStore) -> None:
    store.create(make_approval())
    slack = RecordingSlack()
    asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)
    asking.ask(APPROVAL_ID, TASK_TOKEN + "-retry", store=store, slack=slack)

    for _, sent in slack.calls:
        everything = json.dumps(sent)
        assert TOKEN not in everything
        assert "tAsKtOkEn" not in everything
        assert "approve/" not in everything
        carrying_id = [path for path, text in walk(sent["blocks"]) if APPROVAL_ID in text]
        actions = next(i for i, b in enumerate(sent["blocks"]) if b["type"] == "actions")
        assert sent["blocks"][actions]["block_id"] == ACTIONS_BLOCK
        assert carrying_id == [
            f"[{actions}].elements[0].value",
            f"[{actions}].elements[1].value",
        ]


def test_the_request_shows_the_absolute_deadline_for_each_reader(store: ApprovalStore) -> None:
    store.create(make_approval())
    slack = RecordingSlack()
    asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)

    texts = [text for _, text in walk(slack.calls[0][1]["blocks"])]
    epoch = int((FIXED + timedelta(hours=1)).timestamp())
    assert any(f"<!date^{epoch}^" in text and "2026-12-01 18:00 UTC>" in text for text in texts)


def test_a_decided_request_is_not_asked_again(store: ApprovalStore) -> None:
    store.create(make_approval())
    approve_by_alice(store)
    slack = RecordingSlack()

    with pytest.raises(AlreadyDecided):
        asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)
    assert slack.calls == []


# --------------------------------------------------------------------------- close

CLOSED_AT = FIXED + timedelta(minutes=26)


def close_request(
    store: ApprovalStore,
    slack: RecordingSlack,
    *,
    approval_id: str = APPROVAL_ID,
    report_error: str | None = None,
    at: datetime = CLOSED_AT,
) -> dict[str, Any]:
    """The close step, with a CodePipeline that holds a console decision (asked only after
    ApprovalAlreadyCompleted)."""
    console = ActionExecutions("Succeeded", "Approved in the CodePipeline console")
    return closing.close(
        approval_id,
        report_error=report_error,
        store=store,
        slack=slack,
        codepipeline=console,
        clock=clock_at(at),
    )


def asked_and_approved(store: ApprovalStore, slack: RecordingSlack) -> None:
    store.create(make_approval())
    asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)
    approve_by_alice(store)


def test_closing_after_codepipeline_decided_elsewhere_says_so(store: ApprovalStore) -> None:
    slack = RecordingSlack()
    asked_and_approved(store, slack)

    record = close_request(
        store, slack, report_error="CodePipeline.ApprovalAlreadyCompletedException"
    )

    assert record["outcome"] == "decided_elsewhere"
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert stored.status == DECIDED_ELSEWHERE
    assert stored.note == "Already decided in CodePipeline"
    assert stored.closed_at == CLOSED_AT


@pytest.mark.parametrize(
    ("error", "note"),
    [
        (
            "CodePipeline.InvalidApprovalTokenException",
            "CodePipeline no longer waits for this approval (expired, superseded or stopped)",
        ),
        ("CodePipeline.ThrottlingException", "CodePipeline did not accept the decision"),
    ],
)
def test_closing_after_other_report_errors_explains_them(
    store: ApprovalStore, error: str, note: str
) -> None:
    slack = RecordingSlack()
    asked_and_approved(store, slack)

    close_request(store, slack, report_error=error)

    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.note) == (DECIDED_ELSEWHERE, note)


def test_closing_a_reported_decision_keeps_it(store: ApprovalStore) -> None:
    slack = RecordingSlack()
    asked_and_approved(store, slack)

    record = close_request(store, slack)

    assert (record["outcome"], record["decided_by"]) == ("approved", ["U0ALICE"])
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.closed_at) == (APPROVED, CLOSED_AT)


def test_closing_removes_the_buttons_from_the_same_message(store: ApprovalStore) -> None:
    slack = RecordingSlack()
    asked_and_approved(store, slack)

    close_request(store, slack)

    method, update = slack.calls[-1]
    assert method == "chat_update"
    assert (update["channel"], update["ts"]) == ("C0DEPLOYS", "1796144403.000100")
    assert update["text"].startswith("Approved: prod-web")
    assert [b for b in update["blocks"] if b["type"] == "actions"] == []
    assert "button" not in json.dumps(update["blocks"])
    assert TOKEN not in json.dumps(update)


def test_a_retried_close_changes_nothing(store: ApprovalStore) -> None:
    slack = RecordingSlack()
    asked_and_approved(store, slack)
    first = close_request(store, slack)

    again = close_request(
        store,
        slack,
        report_error="CodePipeline.ApprovalAlreadyCompletedException",
        at=CLOSED_AT + timedelta(minutes=5),
    )

    assert again == first
    stored = store.get(APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.closed_at) == (APPROVED, CLOSED_AT)


def test_closing_a_request_never_posted_touches_no_slack_message(store: ApprovalStore) -> None:
    store.create(make_approval())
    closing.at_deadline(APPROVAL_ID, store=store, clock=clock_at(AT_DEADLINE))
    slack = RecordingSlack()

    record = close_request(store, slack, at=AT_DEADLINE)

    assert record["outcome"] == "expired"
    assert slack.calls == []


def test_closing_an_unknown_request_is_an_error(store: ApprovalStore) -> None:
    with pytest.raises(KeyError):
        close_request(store, RecordingSlack(), approval_id="f" * 32, at=FIXED)


def test_listing_every_approval_skips_the_status_feed_items(
    store: ApprovalStore, dynamodb: Any
) -> None:
    store.create(make_approval())
    dynamodb.put_item(
        TableName="approval-gate-approvals",
        Item={"approval_id": {"S": "feed#b7a0e5f2"}, "record_type": {"S": "feed"}},
    )

    assert [approval.approval_id for approval in store.all()] == [APPROVAL_ID]


def test_a_new_request_carries_its_audit_month_and_a_feed_item_none(
    store: ApprovalStore, dynamodb: SerialisedClient
) -> None:
    """The audit index (by-requested-month) is sparse: approvals only, by UTC month."""
    late_evening = datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    store.create(make_approval(requested_at=late_evening))  # 2026-12-01T04:30Z
    FeedStore(TABLE, dynamodb).apply(
        parse_event(load_event("codepipeline_pipeline_started")), now=FIXED
    )

    items = {item["approval_id"]["S"]: item for item in dynamodb.scan(TableName=TABLE)["Items"]}

    assert items.pop(APPROVAL_ID)[AUDIT_MONTH] == {"S": "2026-12"}
    assert len(items) == 1 and all(AUDIT_MONTH not in item for item in items.values())
    found = dynamodb.query(
        TableName=TABLE,
        IndexName=AUDIT_INDEX,
        KeyConditionExpression="audit_month = :m",
        ExpressionAttributeValues={":m": {"S": "2026-12"}},
    )["Items"]
    assert [item["approval_id"]["S"] for item in found] == [APPROVAL_ID]
