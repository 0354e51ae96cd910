"""What a click is answered with, in Vietnamese (issue 25, DESIGN §8.5): every refusal, tally
and hold answer of clicks, votes, hold_clicks and answers reads the approval's
``rules.language``; none of the catalog's English reaches a Vietnamese clicker (the oracle of
tests/english.py), each carries the words expected, and the English render is unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

import pytest
from approval_gate.answers import answer, modal_failed_text
from approval_gate.checks import CheckResult
from approval_gate.clicks import (
    Click,
    ClickResult,
    already_decided_text,
    already_voted_text,
    busy_text,
    check_failing_text,
    group_failure_text,
    needed_later_text,
    not_an_approver_text,
    not_your_turn_text,
    reason_required_text,
    self_approval_text,
    steps_done_text,
    tally_text,
    unknown_approval_text,
    unknown_author_text,
)
from approval_gate.groups import GroupDirectory, GroupLookupFailed
from approval_gate.hold_clicks import checks_hold_text, not_held_text, override_reason_text
from approval_gate.interactions import record_click
from approval_gate.messages import REASON_BLOCK
from approval_gate.policy import Approvers
from approval_gate.rules import Freeze, FreezeOverride, Rules, Step
from approval_gate.store import APPROVED, EXPIRED, PENDING, REJECTED, Approval, ApprovalStore, Vote
from slack_sdk.errors import SlackApiError

from tests.english import english_in, shown_texts
from tests.unit.fakes import FIXED, GroupSlack, RecordingSfn, RecordingSlack, clock_at
from tests.unit.fakes import make_approval as _make_approval
from tests.unit.fakes import make_rules as _make_rules

AT = FIXED + timedelta(minutes=5)
QA = Step("QA", Approvers(users=("U0DAN",), groups=("S0QA",)), 1)
RELEASE = Step("Release", Approvers(users=("U0ALICE", "U0BOB", "U0CAROL")), 2)
CHECK = CheckResult(
    "web-5xx-rate", "ALARM", False, "ALARM", "Threshold Crossed: 3 datapoints", FIXED
)
NOTE = "Held for the Year-end freeze, then the deadline passed"
#: What the renders below were given: names, ids and people's words, not the gate's.
DATA = [
    "prod-web",
    "Approve",
    "ProductionGate",
    "QA",
    "Release",
    CHECK.name,
    CHECK.summary,
    NOTE,
    "plan_upgrade_required",
    "TimeoutError",
    "Year-end freeze",
    "Canary looks fine, revenue at risk",
]


def rules(language: str, **more: Any) -> Rules:
    return _make_rules(language=language, **more)


def approval(language: str, **more: Any) -> Approval:
    more.setdefault("rules", rules(language))
    return _make_approval(**more)


def step_approval(language: str, *votes: Vote) -> Approval:
    step_rules = rules(
        language,
        approvers=Approvers(("U0DAN", "U0ALICE", "U0BOB", "U0CAROL"), ("S0QA",)),
        required_approvals=3,
        steps=(QA, RELEASE),
        steps_order="sequence",
    )
    return _make_approval(rules=step_rules, votes=votes)


def vote(user: str, step: str | None = None) -> Vote:
    return Vote(user_id=user, name=user[3:].lower(), vote="approve", at=AT, step=step)


def decided(language: str, status: str, *, when: bool = True, note: str | None = None) -> Approval:
    return approval(
        language,
        status=status,
        decided_by=("U0ALICE",),
        decided_at=AT if when else None,
        note=note,
    )


class Case(NamedTuple):
    render: Callable[[str], str]
    vietnamese: str  # words the Vietnamese render has
    english: str  # words the English render has


def _group(**failure: Any) -> Callable[[str], str]:
    return lambda language: group_failure_text(GroupLookupFailed("S0QA", **failure), language)


CASES: dict[str, Case] = {
    "already approved, when": Case(
        lambda lang: already_decided_text(decided(lang, APPROVED)),
        "đã được phê duyệt lúc <!date^",
        "Already approved by <@U0ALICE> <!date^",
    ),
    "already approved": Case(
        lambda lang: already_decided_text(decided(lang, APPROVED, when=False)),
        "(người quyết định: <@U0ALICE>). Lần bấm của bạn không thay đổi gì.",
        "Already approved by <@U0ALICE>. Your click changed nothing.",
    ),
    "already approved by nobody": Case(
        lambda lang: already_decided_text(
            approval(lang, status=APPROVED, decided_at=None, decided_by=())
        ),
        "người quyết định: chưa có ai",
        "Already approved by nobody.",
    ),
    "already rejected, when": Case(
        lambda lang: already_decided_text(decided(lang, REJECTED)),
        "đã bị từ chối lúc <!date^",
        "Already rejected by <@U0ALICE> <!date^",
    ),
    "already rejected": Case(
        lambda lang: already_decided_text(decided(lang, REJECTED, when=False)),
        "Yêu cầu này đã bị từ chối (người quyết định: <@U0ALICE>).",
        "Already rejected by <@U0ALICE>. Your click",
    ),
    "expired, when, noted": Case(
        lambda lang: already_decided_text(decided(lang, EXPIRED, note=NOTE)),
        "Yêu cầu này đã hết hạn lúc <!date^",
        "This request already expired <!date^",
    ),
    "expired": Case(
        lambda lang: already_decided_text(decided(lang, EXPIRED, when=False)),
        "Yêu cầu này đã hết hạn: không có quyết định trước hạn chót.",
        "This request already expired: no decision in time.",
    ),
    "closed": Case(
        lambda lang: already_decided_text(decided(lang, "DECIDED_ELSEWHERE", when=False)),
        "Yêu cầu này đã đóng: đã được quyết định ngoài Slack.",
        "This request was already closed: decided outside Slack.",
    ),
    "closed, noted": Case(
        lambda lang: already_decided_text(decided(lang, "DECIDED_ELSEWHERE", note=NOTE)),
        f"Yêu cầu này đã đóng: {NOTE}.",
        f"This request was already closed: {NOTE}.",
    ),
    "a check fails": Case(
        lambda lang: check_failing_text(approval(lang, checks=(CHECK,))),
        "Phê duyệt bị chặn khi có kiểm tra sức khỏe thất bại (web-5xx-rate ALARM: Threshold",
        "Approve is blocked while a health check fails (web-5xx-rate ALARM",
    ),
    "not an approver": Case(
        lambda lang: not_an_approver_text(approval(lang)),
        "Bạn không phải người phê duyệt của prod-web / Approve. Người phê duyệt: <@U0ALICE>",
        "You are not an approver for prod-web / Approve. Approvers: <@U0ALICE>",
    ),
    "tally": Case(
        lambda lang: tally_text(
            approval(lang, rules=rules(lang, required_approvals=3), votes=(vote("U0ALICE"),))
        ),
        "Đã ghi nhận phê duyệt của bạn. Đã phê duyệt: <@U0ALICE>; cần thêm 2 lượt phê duyệt.",
        "Your approval is recorded. Approved so far by <@U0ALICE>; 2 more approvals needed.",
    ),
    "tally, one more": Case(
        lambda lang: tally_text(
            approval(lang, rules=rules(lang, required_approvals=2), votes=(vote("U0ALICE"),))
        ),
        "cần thêm 1 lượt phê duyệt.",
        "Approved so far by <@U0ALICE>; 1 more approval needed.",
    ),
    "tally in steps": Case(
        lambda lang: tally_text(step_approval(lang, vote("U0DAN", "QA"))),
        "Đã ghi nhận phê duyệt của bạn. Tiến độ: QA ✅ <@U0DAN>",
        "Your approval is recorded. Progress: QA ✅ <@U0DAN>",
    ),
    "already voted, nobody approving": Case(
        lambda lang: already_voted_text(approval(lang)),
        "Bạn đã bỏ phiếu rồi; lần bấm thứ hai không được tính. Đã phê duyệt: chưa có ai;",
        "You already voted; a second click does not count. Approved so far by nobody; 1 more",
    ),
    "unknown request": Case(
        unknown_approval_text,
        "Approval Gate không biết yêu cầu này",
        "Approval Gate does not know this request",
    ),
    "self-approval": Case(
        self_approval_text, "không thể tự phê duyệt", "You made this change, so you cannot"
    ),
    "unknown author": Case(
        unknown_author_text,
        "Không xác định được tác giả của thay đổi này",
        "The author of this change could not be determined",
    ),
    "reason required": Case(
        reason_required_text,
        "Hãy cho biết lý do bạn từ chối lần triển khai này",
        "Say why you reject this deployment",
    ),
    "group, Slack said": Case(
        _group(error="plan_upgrade_required"),
        "(Slack báo lỗi: plan_upgrade_required). Chưa có gì được ghi nhận; yêu cầu vẫn mở.",
        "(Slack said: plan_upgrade_required). Nothing was recorded; the request stays open.",
    ),
    "group, Slack said nothing": Case(
        _group(error=None), "(Slack báo có lỗi)", "(Slack said: an error)"
    ),
    "group, Slack silent": Case(
        _group(error="TimeoutError", answered=False),
        "Approval Gate không kiểm tra được bạn có thuộc <!subteam^S0QA> hay không (Slack không "
        "phản hồi: TimeoutError).",
        "Approval Gate could not check whether you are in <!subteam^S0QA> (Slack did not "
        "answer: TimeoutError).",
    ),
    "not your turn": Case(
        lambda lang: not_your_turn_text(step_approval(lang).steps[0], lang),
        "Đang đến lượt bước *QA* (<@U0DAN>, <!subteam^S0QA>)",
        "It is the *QA* step's turn (<@U0DAN>, <!subteam^S0QA>)",
    ),
    "steps done": Case(
        lambda lang: steps_done_text(step_approval(lang, vote("U0DAN", "QA"))),
        "Các bước bạn phê duyệt đã hoàn tất; yêu cầu đang chờ *Release*.",
        "The steps you approve in are complete; the request waits for *Release*.",
    ),
    "steps done, last approvals": Case(
        lambda lang: steps_done_text(
            step_approval(
                lang,
                vote("U0DAN", "QA"),
                vote("U0ALICE", "Release"),
                vote("U0BOB", "Release"),
            )
        ),
        "yêu cầu đang chờ những lượt phê duyệt cuối cùng.",
        "the request waits for the last approvals.",
    ),
    "needed later": Case(
        lambda lang: needed_later_text(step_approval(lang).steps[1], lang),
        "Phê duyệt của bạn cần cho bước *Release*",
        "Your approval is needed in the *Release* step",
    ),
    "busy": Case(busy_text, "Bạn hãy bấm lại.", "Please click again."),
    "override reason": Case(
        override_reason_text,
        "Hãy cho biết vì sao cần triển khai ngay",
        "Say why it must deploy now",
    ),
    "checks hold": Case(
        checks_hold_text,
        "Triển khai ngay chỉ vượt đóng băng",
        "Deploy now overrides a freeze",
    ),
    "not held": Case(
        lambda lang: not_held_text(approval(lang, status=PENDING)),
        "Yêu cầu này không (còn) đang tạm giữ",
        "This request is not held (any more)",
    ),
    "modal failed": Case(
        lambda lang: modal_failed_text(ClickResult("modal", approval=approval(lang))),
        "Không mở được biểu mẫu kịp lúc: bạn hãy bấm lại.",
        "The form could not open in time: please click again.",
    ),
}


@pytest.mark.parametrize("kind", CASES)
def test_each_answer_is_vietnamese_for_a_vietnamese_rule(kind: str) -> None:
    case = CASES[kind]

    text = case.render("vi")

    assert english_in(list(shown_texts(text)), DATA) == []
    assert case.vietnamese in text


@pytest.mark.parametrize("kind", CASES)
def test_each_answer_stays_english_for_an_english_rule(kind: str) -> None:
    case = CASES[kind]

    text = case.render("en")

    assert case.english in text
    assert english_in([text], DATA) != []  # the oracle sees English where there is some


def test_the_date_of_an_earlier_decision_is_in_the_rules_language() -> None:
    text = already_decided_text(decided("vi", APPROVED))

    assert "đã được phê duyệt lúc <!date^" in text
    assert "^{time}, {date_short_pretty}|" in text
    assert "{date_short_pretty} at {time}" not in text


def test_a_modal_result_without_an_approval_falls_back_to_english() -> None:
    assert modal_failed_text(ClickResult("modal")) == (
        "The form could not open in time: please click again."
    )


# --------------------------------------------------------------------------- the path of a click

ID = "0123456789abcdef0123456789abcdef"


def _click(user: str, action: str, **more: Any) -> Click:
    return Click(action, ID, user, user.lower(), None, None, "C0DEPLOYS", **more)


def _ephemerals(slack: RecordingSlack) -> list[str]:
    return [kw["text"] for method, kw in slack.calls if method == "chat_postEphemeral"]


def test_a_click_on_a_vietnamese_request_is_refused_in_vietnamese(store: ApprovalStore) -> None:
    store.create(approval("vi", approval_id=ID))
    slack = RecordingSlack()
    click = _click("U0MALLORY", "approve")

    result = record_click(click, store=store, sfn=RecordingSfn(), clock=clock_at(AT))
    answer(result, click, slack=slack, store=store, clock=clock_at(AT))

    (told,) = _ephemerals(slack)
    assert told.startswith("Bạn không phải người phê duyệt của prod-web / Approve.")
    assert english_in([told], DATA) == []


def test_a_click_on_a_request_the_table_lacks_is_answered_in_english(store: ApprovalStore) -> None:
    """No approval, no rules: the click's path has no policy at hand, so English."""
    result = record_click(
        _click("U0ALICE", "approve"), store=store, sfn=RecordingSfn(), clock=clock_at(AT)
    )

    assert result.ephemeral == unknown_approval_text("en")


def test_a_group_lookup_failure_is_told_in_the_rules_language(store: ApprovalStore) -> None:
    store.create(
        approval("vi", approval_id=ID, rules=rules("vi", approvers=Approvers((), ("S0QA",))))
    )
    groups = GroupSlack(error="plan_upgrade_required")

    result = record_click(
        _click("U0CAROL", "approve"),
        store=store,
        sfn=RecordingSfn(),
        clock=clock_at(AT),
        groups=GroupDirectory(groups),
    )

    assert result.outcome == "group_lookup_failed"
    assert "(Slack báo lỗi: plan_upgrade_required)" in (result.ephemeral or "")
    assert english_in([result.ephemeral or ""], DATA) == []


def test_a_submitted_reject_without_reason_shows_vietnamese_under_the_input(
    store: ApprovalStore,
) -> None:
    store.create(approval("vi", approval_id=ID, rules=rules("vi", require_reason_on_reject=True)))
    click = _click("U0ALICE", "reject", submitted=True)

    result = record_click(click, store=store, sfn=RecordingSfn(), clock=clock_at(AT))
    http = answer(result, click, slack=RecordingSlack(), store=store, clock=clock_at(AT))

    shown = json.loads(http.body)["errors"][REASON_BLOCK]
    assert shown.startswith("Hãy cho biết lý do bạn từ chối")
    assert english_in([shown], DATA) == []


class _NoModal(RecordingSlack):
    def views_open(self, **kwargs: Any) -> dict[str, Any]:
        raise SlackApiError("expired_trigger_id", {"ok": False, "error": "expired_trigger_id"})


def test_a_modal_that_could_not_open_is_said_in_vietnamese(store: ApprovalStore) -> None:
    store.create(approval("vi", approval_id=ID, rules=rules("vi", require_reason_on_reject=True)))
    slack = _NoModal()
    click = _click("U0ALICE", "reject", trigger_id="1337.42")

    result = record_click(click, store=store, sfn=RecordingSfn(), clock=clock_at(AT))
    answer(result, click, slack=slack, store=store, clock=clock_at(AT))

    assert result.outcome == "modal"
    assert _ephemerals(slack) == ["Không mở được biểu mẫu kịp lúc: bạn hãy bấm lại."]


# --------------------------------------------------------------------------- held requests

FREEZE = Freeze(
    reason="Year-end freeze", begins=FIXED - timedelta(hours=1), ends=FIXED + timedelta(hours=2)
)
SRE = FreezeOverride(approvers=Approvers(users=("U0SRE1", "U0SRE2")), required_approvals=2)


def _held(store: ApprovalStore, language: str, approval_id: str, **more: Any) -> None:
    """A request approved by U0ALICE during the freeze: held."""
    held_rules = rules(language, freezes=(FREEZE,), **more)
    store.create(_make_approval(approval_id=approval_id, rules=held_rules))
    store.save_task_token(approval_id, "ask-token")
    click = _click("U0ALICE", "approve")._replace(approval_id=approval_id)
    result = record_click(click, store=store, sfn=RecordingSfn(), clock=clock_at(AT))
    assert result.outcome == "recorded"
    store.save_hold_token(approval_id, "hold-token")


def _hold_answers(store: ApprovalStore, language: str) -> dict[str, str]:
    """Every answer hold_clicks gives, for a request in ``language``."""
    overridable, fixed = "a" * 32, "b" * 32
    _held(store, language, overridable, freeze_override=SRE)
    _held(store, language, fixed)
    said: dict[str, str] = {}

    def click(key: str, approval_id: str, user: str, action: str, **more: Any) -> None:
        one = _click(user, action, **more)._replace(approval_id=approval_id)
        result = record_click(one, store=store, sfn=RecordingSfn(), clock=clock_at(AT))
        said[key] = result.ephemeral or ""

    click("not an override approver", overridable, "U0BOB", "deploy_now")
    click("no reason", overridable, "U0SRE1", "deploy_now", submitted=True)
    click("one more", overridable, "U0SRE1", "deploy_now", submitted=True, reason=DATA[-1])
    click("already asked", overridable, "U0SRE1", "deploy_now", submitted=True, reason=DATA[-1])
    click("nobody may override", fixed, "U0SRE1", "deploy_now")
    click("not an approver", fixed, "U0MALLORY", "cancel_hold")
    click("cancelled", fixed, "U0BOB", "cancel_hold")
    click("not held", fixed, "U0BOB", "cancel_hold")
    return said


HOLD_WORDS = {
    "not an override approver": (
        "Chỉ những người phê duyệt freeze_override của chính sách",
        "Only the policy's freeze_override approvers",
    ),
    "no reason": ("Hãy cho biết vì sao cần triển khai ngay", "Say why it must deploy now"),
    "one more": (
        "Đã ghi nhận yêu cầu triển khai ngay của bạn; cần thêm 1 người phê duyệt vượt đóng băng.",
        "Your deploy-now is recorded; 1 more override approver needed.",
    ),
    "already asked": (
        "Bạn đã yêu cầu triển khai ngay rồi.",
        "You already asked to deploy now. Nothing changed.",
    ),
    "nobody may override": ("Không thể vượt lần tạm giữ này", "This hold cannot be overridden"),
    "not an approver": (
        "Chỉ người phê duyệt mới được hủy hẹn giờ này (<@U0ALICE>, <@U0BOB>).",
        "Only an approver may cancel this hold (<@U0ALICE>, <@U0BOB>).",
    ),
    "cancelled": ("Bạn đã hủy hẹn giờ: yêu cầu được mở lại", "You cancelled the hold"),
    "not held": ("Yêu cầu này không (còn) đang tạm giữ", "This request is not held (any more)"),
}


def test_each_hold_click_answer_is_vietnamese_for_a_vietnamese_rule(store: ApprovalStore) -> None:
    said = _hold_answers(store, "vi")

    assert said.keys() == HOLD_WORDS.keys()
    for key, text in said.items():
        assert english_in([text], DATA) == [], key
        assert HOLD_WORDS[key][0] in text, key


def test_each_hold_click_answer_stays_english_for_an_english_rule(store: ApprovalStore) -> None:
    said = _hold_answers(store, "en")

    for key, text in said.items():
        assert HOLD_WORDS[key][1] in text, key
