"""The path of a click through `interactions.handle`, and the rules `votes` applies.

`handle` is what functions/slack_interactions calls: these tests give it API Gateway
events signed here (HMAC-SHA256 computed independently of slack_sdk) and check the HTTP
answer and what was, or was not, recorded.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from approval_gate.groups import GroupDirectory
from approval_gate.interactions import Collaborators, handle
from approval_gate.messages import REJECT_VIEW
from approval_gate.policy import Approvers, Escalation
from approval_gate.slack import SlackCredentials
from approval_gate.store import APPROVED, PENDING, ApprovalStore
from approval_gate.votes import Click, record_vote

from tests.unit.events import SAMPLE_APPROVAL_ID, load_event
from tests.unit.fakes import (
    FIXED,
    TASK_TOKEN,
    GroupSlack,
    RecordingSfn,
    RecordingSlack,
    clock_at,
    make_approval,
    make_rules,
)

SECRET = "unit-signing-secret"
ROTATED = "rotated-signing-secret"
TEAM, APP = "T0SANDBOX", "A0SANDBOX"


class Credentials:
    """The Slack secret as SlackCredentialsSource serves it; `fresh` after a rotation."""

    def __init__(self, secret: str = SECRET, fresh: str | None = None, **ids: Any) -> None:
        self.current = SlackCredentials(
            "xoxb-unit", secret, ids.get("team", TEAM), ids.get("app", APP)
        )
        self.fresh = fresh
        self.refreshes = 0

    def get(self) -> SlackCredentials:
        return self.current

    def refreshed(self) -> SlackCredentials | None:
        self.refreshes += 1
        if self.fresh is None:
            return None
        self.current = self.current.__class__("xoxb-unit", self.fresh, TEAM, APP)
        return self.current


def signed_event(payload: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return {
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest.hexdigest()}",
        },
        "body": base64.b64encode(body.encode()).decode(),
        "isBase64Encoded": True,
    }


def approve_payload(**changes: Any) -> dict[str, Any]:
    payload = load_event("block_actions_approve")
    payload.update(changes)
    return payload


@pytest.fixture
def asked(store: ApprovalStore) -> ApprovalStore:
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID))
    store.save_task_token(SAMPLE_APPROVAL_ID, TASK_TOKEN)
    return store


def collaborators(store: ApprovalStore, credentials: Any, **extra: Any) -> Collaborators:
    slack = extra.pop("slack", RecordingSlack())
    return Collaborators(
        store=store,
        sfn=extra.pop("sfn", RecordingSfn()),
        credentials=credentials,
        slack_client=lambda creds: slack,
        clock=clock_at(FIXED),
        **extra,
    )


def test_a_signed_click_from_an_approver_decides_and_resumes_the_workflow(
    asked: ApprovalStore,
) -> None:
    sfn = RecordingSfn()
    labels: list[dict[str, str]] = []
    deps = collaborators(asked, Credentials(), sfn=sfn, label_logs=lambda **k: labels.append(k))

    answer = handle(signed_event(approve_payload()), deps)

    assert answer.as_lambda_response()["statusCode"] == 200
    assert asked.get(SAMPLE_APPROVAL_ID).status == APPROVED
    assert [call["taskToken"] for call in sfn.task_successes] == [TASK_TOKEN]
    assert labels == [{"approval_id": SAMPLE_APPROVAL_ID}]


@pytest.mark.parametrize(
    ("credentials", "says"),
    [
        (Credentials(team="T0OTHER"), "another workspace"),
        (Credentials(app="A0OTHER"), "another app"),
    ],
    ids=["workspace", "app"],
)
def test_a_click_for_another_workspace_or_app_is_refused_with_403_and_records_nothing(
    asked: ApprovalStore, credentials: Credentials, says: str
) -> None:
    sfn = RecordingSfn()
    labels: list[dict[str, str]] = []
    deps = collaborators(asked, credentials, sfn=sfn, label_logs=lambda **k: labels.append(k))

    answer = handle(signed_event(approve_payload()), deps)

    assert (answer.status, answer.body) == (403, "wrong workspace or app"), says
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert (stored.status, stored.votes) == (PENDING, ())
    assert sfn.task_successes == []
    assert labels == []  # refused before the approval id is trusted


def test_a_forged_signature_gets_401_and_records_nothing(asked: ApprovalStore) -> None:
    credentials = Credentials()
    deps = collaborators(asked, credentials)

    answer = handle(signed_event(approve_payload(), secret="not-the-secret"), deps)

    assert (answer.status, answer.body) == (401, "invalid request signature")
    assert asked.get(SAMPLE_APPROVAL_ID).votes == ()
    assert credentials.refreshes == 1  # looked once for a rotated secret


def test_a_request_signed_with_a_rotated_secret_is_accepted_after_one_refresh(
    asked: ApprovalStore,
) -> None:
    credentials = Credentials(secret=SECRET, fresh=ROTATED)

    answer = handle(
        signed_event(approve_payload(), secret=ROTATED), collaborators(asked, credentials)
    )

    assert answer.status == 200
    assert credentials.refreshes == 1
    assert asked.get(SAMPLE_APPROVAL_ID).status == APPROVED


def test_an_unreadable_request_gets_401_and_a_malformed_one_400(asked: ApprovalStore) -> None:
    deps = collaborators(asked, Credentials())
    unreadable = {"headers": {}, "body": "%%%", "isBase64Encoded": True}
    malformed = signed_event(approve_payload())
    malformed["body"] = base64.b64encode(b"payload=not-json").decode()
    body = "payload=not-json"
    timestamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    malformed["headers"]["X-Slack-Request-Timestamp"] = timestamp
    malformed["headers"]["X-Slack-Signature"] = f"v0={digest.hexdigest()}"

    assert handle(unreadable, deps).status == 401
    assert (handle(malformed, deps).status, handle(malformed, deps).body) == (
        400,
        "malformed interaction",
    )
    assert asked.get(SAMPLE_APPROVAL_ID).votes == ()


def test_a_refused_modal_submission_shows_the_reason_under_the_input(
    asked: ApprovalStore,
) -> None:
    """A Reject submitted with an empty reason: Slack shows the words in the modal."""
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM},
        "api_app_id": APP,
        "user": {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": TEAM},
        "view": {
            "callback_id": REJECT_VIEW,
            "private_metadata": SAMPLE_APPROVAL_ID,
            "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": " "}}}},
        },
    }

    answer = handle(signed_event(payload), collaborators(asked, Credentials()))

    assert answer.content_type == "application/json"
    body = json.loads(answer.body)
    assert body["response_action"] == "errors"
    assert "Say why you reject" in body["errors"]["reason"]
    assert asked.get(SAMPLE_APPROVAL_ID).votes == ()


# --------------------------------------------------------------------------- votes


def click(user: str, action: str = "approve") -> Click:
    return Click(action, SAMPLE_APPROVAL_ID, user, user.lower(), TEAM, APP, "C0DEPLOYS")


def open_request(store: ApprovalStore, **approval: Any) -> None:
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID, **approval))


def test_four_eyes_the_author_may_not_approve_but_may_reject(store: ApprovalStore) -> None:
    open_request(store, author_users=("U0ALICE",))

    approve = record_vote(click("U0ALICE"), store=store, clock=clock_at(FIXED))

    assert approve.outcome == "self_approval"
    assert "cannot approve it" in approve.ephemeral
    assert store.get(SAMPLE_APPROVAL_ID).votes == ()
    reject = click("U0ALICE", "reject")._replace(submitted=True, reason="wrong build")
    assert record_vote(reject, store=store, clock=clock_at(FIXED)).outcome == "recorded"


def test_four_eyes_can_be_turned_off_by_the_policy(store: ApprovalStore) -> None:
    open_request(store, author_users=("U0ALICE",), rules=make_rules(allow_self_approval=True))

    assert record_vote(click("U0ALICE"), store=store, clock=clock_at(FIXED)).outcome == "recorded"


@pytest.mark.parametrize(
    ("policy", "outcome"), [("block", "unknown_author"), ("allow", "recorded")]
)
def test_an_unknown_author_blocks_approval_only_when_the_policy_says_so(
    store: ApprovalStore, policy: str, outcome: str
) -> None:
    open_request(store, author_users=(), rules=make_rules(unknown_author=policy))

    result = record_vote(click("U0BOB"), store=store, clock=clock_at(FIXED))

    assert result.outcome == outcome
    assert (store.get(SAMPLE_APPROVAL_ID).votes != ()) == (outcome == "recorded")


def test_group_lookup_fails_closed_nothing_is_recorded(store: ApprovalStore) -> None:
    open_request(store, rules=make_rules(approvers=Approvers(groups=("S0RELEASE",))))
    groups = GroupDirectory(GroupSlack(error="plan_upgrade_required"))

    result = record_vote(click("U0CAROL"), store=store, clock=clock_at(FIXED), groups=groups)

    assert result.outcome == "group_lookup_failed"
    assert "<!subteam^S0RELEASE>" in result.ephemeral
    assert "plan_upgrade_required" in result.ephemeral
    assert store.get(SAMPLE_APPROVAL_ID).votes == ()


def test_escalation_approvers_count_only_once_escalated(store: ApprovalStore) -> None:
    rules = make_rules(
        approvers=Approvers(users=("U0ALICE",)),
        escalation=Escalation(channel="C0ONCALL", approvers=Approvers(groups=("S0ONCALL",))),
    )
    groups = GroupDirectory(GroupSlack({"S0ONCALL": ["U0DAVE"]}))
    open_request(store, rules=rules)

    before = record_vote(click("U0DAVE"), store=store, clock=clock_at(FIXED), groups=groups)
    store.mark_escalated(SAMPLE_APPROVAL_ID)
    after = record_vote(click("U0DAVE"), store=store, clock=clock_at(FIXED), groups=groups)

    assert (before.outcome, after.outcome) == ("not_approver", "recorded")


# --------------------------------------------------------------------------- the doc


REPO = Path(__file__).resolve().parents[2]
#: What interactions.py may also import from the domain: values, types and checks that are
#: not steps of the path (a new step belongs in one of the path's files, or in the doc).
LIBRARIES = {"clicks", "clock", "groups", "messages", "slack", "store"}
_STEP = re.compile(r"^\d\. `(?P<path>functions/[a-z_/]+\.py)` — `(?P<name>[a-z_]+)`", re.M)


def _called_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return called


def _defines(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def test_the_documented_click_path_is_the_code() -> None:
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## The path of a click", 1)[1].split("\n## ", 1)[0]
    steps = [(REPO / m["path"], m["name"]) for m in _STEP.finditer(section)]

    assert 3 <= len(steps) <= 5, "the path of a click is at most five files"
    for path, name in steps:
        assert _defines(path, name), f"{path.name} defines no {name}()"
    (handler, _), (entry, entry_name) = steps[0], steps[1]
    assert entry_name in _called_names(handler)
    assert {name for _, name in steps[2:]} <= _called_names(entry)
    imported = {
        node.module.split(".")[1]
        for node in ast.walk(ast.parse(entry.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("approval_gate.")
    }
    assert imported <= LIBRARIES | {path.stem for path, _ in steps[2:]}
