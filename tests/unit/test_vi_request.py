"""The request message and its modals in Vietnamese (DESIGN §8.5, issue 25): every kind of
text approval_gate.messages, input_messages, approver_inputs, revision_messages,
check_messages and steps render for a rule with ``language: vi`` shows no English catalog
text (tests/english.py, the oracle), says what we expect in Vietnamese (so a catalog that
is missing or stale fails), and the same render in English still reads in English."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from approval_gate.approver_inputs import checked_inputs, inputs_invalid_text
from approval_gate.check_messages import check_line
from approval_gate.checks import CheckResult
from approval_gate.closed_messages import (
    closed_blocks,
    closed_text,
)
from approval_gate.messages import (
    APPROVE,
    REJECT,
    deadline_outcome,
    decision_view,
    request_blocks,
    request_text,
    step_complete_text,
)
from approval_gate.reminder_messages import (
    escalation_note,
    escalation_text,
    reminder_text,
)
from approval_gate.revision_messages import changes_text
from approval_gate.revisions import Revision, Since
from approval_gate.rules import ApproverInput, Approvers, Escalation, Step
from approval_gate.steps import progress, progress_line
from approval_gate.store import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXPIRED,
    REJECTED,
    Approval,
    Vote,
)

from tests.english import english_in, shown_texts
from tests.unit.fakes import FIXED, make_approval, make_rules

PIPELINE, STAGE, ACTION = "prod-web", "Prod", "Gate"
DECIDED_AT = FIXED + timedelta(minutes=25)
SHA = "a1b2c3d4" * 5
TICKET = ApproverInput("ticket", "Change ticket", pattern=r"CHG\d+", required=True)
ROLLOUT = ApproverInput("rollout", "Rollout", options=("10%", "50%"))
STEPS = (
    Step("QA", Approvers(users=("U0DAN",))),
    Step("Release", Approvers(("U0ALICE", "U0BOB")), 2),
)
#: What a render is given rather than says: names, people's words, check summaries, commits.
DATA = [
    PIPELINE,
    STAGE,
    ACTION,
    "QA",
    "Release",
    "Release 42, see the ticket",
    "error rate up",
    "looks good",
    "prod-api-5xx",
    "change-ticket-check",
    "Threshold Crossed: 3 datapoints",
    "ticket not found",
    "no such alarm",
    "AccessDenied",
    "answered nothing",
    "Fix the login redirect",
    "example-org/web",
    "alice",
    "1e3c820 Update deps",
    "dev@example.com",
    "Change ticket",
    "Rollout",
    "CHG123",
    "Outside the deploy window: rejected by policy",
    "deploy-bot",
    "GitHub",
    "CodeCommit",
    "web",
]

ALARM = CheckResult(
    "prod-api-5xx",
    "alarm",
    False,
    "ALARM",
    "Threshold Crossed: 3 datapoints",
    FIXED,
    "https://console/x",
)
FUNCTION_FAILED = CheckResult(
    "change-ticket-check", "function", False, "FAILED", "ticket not found", FIXED
)
OWN_STATES = (
    CheckResult("change-ticket-check", "function", True, "PASSED", "ok", FIXED),
    CheckResult("prod-api-5xx", "alarm", False, "MISSING", "no such alarm", FIXED),
    CheckResult("prod-api-5xx", "alarm", False, "UNREADABLE", "AccessDenied", FIXED),
    CheckResult("change-ticket-check", "function", False, "ERROR", "answered nothing", FIXED),
)


def github(n: int = 0, revision: str = SHA) -> Revision:
    return Revision(
        f"Source{n}",
        "GitHub",
        "example-org/web",
        revision,
        "Fix the login redirect",
        "https://github.com/example-org/web/commit/" + revision,
        author="alice",
    )


def vote(user: str, kind: str = "approve", **more: Any) -> Vote:
    return Vote(user_id=user, name=user.lower(), vote=kind, at=DECIDED_AT, **more)


def approval(language: str, rules: dict[str, Any] | None = None, **fields: Any) -> Approval:
    values: dict[str, Any] = {
        "pipeline": PIPELINE,
        "stage": STAGE,
        "action": ACTION,
        "rules": make_rules(language=language, **(rules or {})),
        "console_link": "https://console.aws.amazon.com/codesuite/codepipeline/x",
        "external_entity_link": "https://example.com/review",
        "custom_data": "Release 42, see the ticket",
    }
    values.update(fields)
    return make_approval(**values)


def _request_with_everything(language: str) -> Any:
    return request_blocks(
        approval(
            language,
            {"required_approvals": 2, "allow_scheduling": True},
            author_users=("U0DEV",),
            change="1e3c820 Update deps",
            votes=(vote("U0ALICE"),),
            reminders=2,
            escalated=True,
            revisions=(github(),),
            previous_revisions=(github(revision="0" * 40),),
            compare_url="https://github.com/example-org/web/compare/0...a",
            since=Since("compared", "12 commits"),
        ),
        FIXED,
    )


def _request_in_steps_blocked_by_an_alarm(language: str) -> Any:
    return request_blocks(
        approval(
            language,
            {"steps": STEPS, "on_deadline": "approve", "unknown_author": "block"},
            authors=("dev@example.com",),
            votes=(vote("U0DAN", step="QA"),),
            checks=(ALARM,),
            since=Since("first"),
        ),
        FIXED + timedelta(minutes=10),
    )


def _request_in_any_order_blocked_by_a_function(language: str) -> Any:
    return request_blocks(
        approval(
            language,
            {"steps": STEPS, "steps_order": "any"},
            authors=("dev@example.com",),
            checks=(FUNCTION_FAILED, *OWN_STATES),
            revisions=(github(),),
            previous_revisions=(github(),),
            since=Since("same"),
        )
    )


def _request_author_unknown_block(language: str) -> Any:
    return request_blocks(
        approval(
            language,
            {"unknown_author": "block", "required_approvals": 2},
            revisions=(github(),),
            previous_revisions=(Revision("Source0", "CodeCommit", "web", "f" * 40, "Old", None),),
            since=Since("changed", "CodeCommit web to GitHub example-org/web"),
        )
    )


def _request_author_unknown_allow(language: str) -> Any:
    return request_blocks(
        approval(
            language,
            {"allow_self_approval": True},
            change="1e3c820 Update deps",
            revisions=(github(),),
            since=Since("unknown", "AccessDenied from a lookup"),
        )
    )


def _request_text(language: str) -> Any:
    return request_text(approval(language))


def _reject_modal(language: str) -> Any:
    return decision_view(approval(language), REJECT)


def _approve_modal_with_inputs(language: str) -> Any:
    return decision_view(approval(language, {"inputs": (TICKET, ROLLOUT)}), APPROVE)


def _approve_modal(language: str) -> Any:
    return decision_view(approval(language), APPROVE)


def _input_errors(language: str) -> Any:
    rules = make_rules(language=language, inputs=(TICKET, ROLLOUT))
    missing = checked_inputs(rules, {"rollout": "99%"})[1]
    too_long = checked_inputs(rules, {"ticket": "CHG" + "1" * 300})[1]
    wrong = checked_inputs(rules, {"ticket": "deploy-bot"})[1]
    return [missing, too_long, wrong, inputs_invalid_text(language)]


def _reminders(language: str) -> Any:
    later = FIXED + timedelta(minutes=30)
    in_steps = approval(language, {"steps": STEPS, "on_deadline": "approve"}, reminders=1)
    plain = approval(language, reminders=1)
    return [reminder_text(in_steps, later), reminder_text(plain, later)]


def _escalations(language: str) -> Any:
    later = FIXED + timedelta(minutes=30)
    escalation = Escalation(channel="C0ESC", mention_groups=("S0ONCALL",))
    in_steps = approval(
        language, {"steps": STEPS, "on_deadline": "approve", "escalation": escalation}, reminders=2
    )
    plain = approval(language, reminders=2)
    return [
        escalation_text(in_steps, "https://slack.example/p1", later),
        escalation_text(plain, None, later),
        escalation_note(in_steps),
        escalation_note(approval(language, {"escalation": escalation}, reminders=2)),
        escalation_note(approval(language, {"steps": STEPS}, reminders=2)),
        escalation_note(plain),
    ]


def _step_complete(language: str) -> Any:
    done = approval(language, {"steps": STEPS}, votes=(vote("U0DAN", step="QA"),))
    return step_complete_text(done, "QA")


def _closed_approved(language: str) -> Any:
    return closed_blocks(
        approval(
            language,
            {"steps": STEPS, "inputs": (TICKET, ROLLOUT)},
            status=APPROVED,
            votes=(
                vote("U0DAN", step="QA", inputs={"ticket": "CHG123"}),
                vote("U0ALICE", step="Release", inputs={"rollout": "50%"}),
                vote("U0BOB", step="Release"),
            ),
            decided_by=("U0DAN", "U0ALICE", "U0BOB"),
            decided_at=DECIDED_AT,
            reason="looks good",
        )
    )


def _closed_others(language: str) -> Any:
    def closed(status: str, **fields: Any) -> Approval:
        return approval(language, status=status, decided_at=DECIDED_AT, **fields)

    rejected = closed(REJECTED, votes=(vote("U0BOB", "reject"),), decided_by=("U0BOB",))
    by_policy = closed(REJECTED, note="Outside the deploy window: rejected by policy")
    expired = closed(EXPIRED)
    elsewhere = closed(DECIDED_ELSEWHERE, decided_by=("arn:aws:sts::1:assumed-role/deploy-bot",))
    nobody = closed(APPROVED, reason="error rate up")
    found = []
    for each in (rejected, by_policy, expired, elsewhere, nobody):
        found += [closed_blocks(each), closed_text(each)]
    return found


def _progress_of_a_rule_without_steps(language: str) -> Any:
    rules = make_rules(language=language, required_approvals=2)
    return [
        progress_line(progress(rules, [vote("U0ALICE")]), language),
        deadline_outcome(approval(language)),
        deadline_outcome(approval(language, {"on_deadline": "approve"})),
    ]


def _check_states(language: str) -> Any:
    return [check_line(result, language) for result in (ALARM, FUNCTION_FAILED, *OWN_STATES)]


def _changes(language: str) -> Any:
    many = tuple(github(n) for n in range(12))
    kinds = [
        {"since": Since("compared", "50+ commits"), "compare_url": "https://x/compare"},
        {"since": Since("compared", "1 commit"), "compare_url": "https://x/compare"},
        {"since": Since("compared"), "compare_url": "https://x/compare"},
        {"since": Since("compared")},
        {"since": Since("changed", "CodeCommit web to GitHub example-org/web")},
    ]
    texts = [
        changes_text(
            approval(language, revisions=many, previous_revisions=(github(revision="0" * 40),), **k)
        )
        for k in kinds
    ]
    unnamed = Revision("MyArtifact", "Source", None, "v1", None, None)
    texts.append(changes_text(approval(language, revisions=(unnamed,))))
    texts.append(changes_text(approval(language, since=Since("changed"))))
    return texts


Render = Callable[[str], Any]
#: (render, Vietnamese it must say, English its English render says).
CASES: dict[str, tuple[Render, list[str], list[str]]] = {
    "request": (
        _request_with_everything,
        [
            "Cần phê duyệt: prod-web",
            "Xem trong CodePipeline",
            "Lần chạy b7a0e5f2",
            "Thay đổi cần xem xét",
            "*Stage / action*",
            "yêu cầu sẽ *bị từ chối* theo chính sách",
            "Thay đổi `1e3c820 Update deps` do <@U0DEV> thực hiện. Họ không được tự phê duyệt",
            "Lượt phê duyệt: 1/2 (<@U0ALICE>)",
            "đã gửi 2 lời nhắc · đã chuyển cấp · còn 1 giờ",
            "|12 commit>",
            "Kể từ lần triển khai trước:",
            "Triển khai?",
            "Triển khai prod-web a1b2c3d lên Prod?",
            "Phê duyệt, triển khai sau",
            "Từ chối",
            "Hủy",
        ],
        ["Approval needed: prod-web", "Review in CodePipeline", "Approve for later", "12 commits"],
    ),
    "request in steps, an alarm fails": (
        _request_in_steps_blocked_by_an_alarm,
        [
            "Các bước, lần lượt: QA ✅ <@U0DAN> · Release 0/2 · đến lượt: *Release*",
            "Phê duyệt bị chặn khi *prod-api-5xx* ở trạng thái ALARM (từ <!date^",
            "*được phê duyệt* theo chính sách",
            "không thể phê duyệt trong Slack (unknown_author: block)",
            "Lần triển khai đầu tiên",
            "Kiểm tra sức khỏe",
        ],
        ["Steps, in order", "Approve is blocked while", "First deployment"],
    ),
    "request in any order, a function fails": (
        _request_in_any_order_blocked_by_a_function,
        [
            "Các bước, theo thứ tự bất kỳ: QA 0/1 · Release 0/2",
            "ở trạng thái KHÔNG ĐẠT (kiểm tra lúc",
            "bất kỳ ai trong danh sách đều có thể phê duyệt (unknown_author: allow)",
            "Cùng phiên bản nguồn",
        ],
        ["Steps, in any order", "(checked", "Same revision"],
    ),
    "request, author unknown (block)": (
        _request_author_unknown_block,
        [
            "Thay đổi: *không rõ tác giả*. Khi đó chính sách này",
            "Lượt phê duyệt: 0/2 (chưa có ai)",
            "Nguồn đã đổi từ CodeCommit web sang GitHub example-org/web",
        ],
        ["*author unknown*", "nobody yet", "Source changed from CodeCommit web to GitHub"],
    ),
    "request, author unknown (allow)": (
        _request_author_unknown_allow,
        ["kể cả người đã tạo ra thay đổi", "Thay đổi kể từ lần triển khai trước: không rõ"],
        ["including whoever made it", "Changes since the last deployment: unknown"],
    ),
    "request text": (
        _request_text,
        ["Cần phê duyệt: prod-web / Prod / Gate"],
        ["Approval needed: prod-web / Prod / Gate"],
    ),
    "reject modal": (
        _reject_modal,
        ["Từ chối triển khai", "Lý do?", "Hủy"],
        ["Reject deployment", "Why?", "Cancel"],
    ),
    "approve modal with inputs": (
        _approve_modal_with_inputs,
        ["Phê duyệt", "Chọn", "Ghi chú", "Hủy"],
        ["Choose", "Comment"],
    ),
    "approve modal": (_approve_modal, ["Phê duyệt triển khai"], ["Approve deployment"]),
    "input errors": (
        _input_errors,
        [
            "Cần điền Change ticket.",
            "Hãy chọn một trong: 10%, 50%.",
            "Tối đa 200 ký tự, bạn đã nhập 303.",
            "(“deploy-bot” không khớp)",
            "Một số giá trị bạn nhập không hợp lệ",
        ],
        ["is required", "Choose one of", "At most 200", "does not", "cannot be taken"],
    ),
    "reminders": (
        _reminders,
        [
            "Lời nhắc: vẫn đang chờ *QA* (0/1) từ <@U0DAN>.",
            "Lời nhắc: vẫn đang chờ <@U0ALICE>, <@U0BOB> quyết định.",
            "Còn 30 phút: đến <!date^",
            "yêu cầu sẽ *được phê duyệt*",
            "yêu cầu sẽ *bị từ chối*",
        ],
        ["Reminder: still waiting for", "a decision", "30m left"],
    ),
    "escalations": (
        _escalations,
        [
            "Chuyển cấp: prod-web / Prod đã chờ qua 2 lời nhắc, vẫn chờ *QA* (0/1).",
            "Xem <https://slack.example/p1|yêu cầu phê duyệt>; còn 30 phút",
            "Xem yêu cầu phê duyệt;",
            "Đã chuyển cấp tới <#C0ESC> sau 2 lời nhắc, vẫn chờ",
            "Đã chuyển cấp tới <#C0ESC> sau 2 lời nhắc.",
            "Đã chuyển cấp sau 2 lời nhắc, vẫn chờ",
            "Đã chuyển cấp sau 2 lời nhắc.",
            "Người có thể phê duyệt lúc này",
            "Người có thể quyết định lúc này",
        ],
        ["Escalated: prod-web / Prod has waited through 2 reminders", "May decide now"],
    ),
    "step complete": (
        _step_complete,
        ["*QA* đã hoàn tất (<@U0DAN>). Tiếp theo là *Release*: <@U0ALICE>, <@U0BOB>, cần 2"],
        ["is complete", "2 approvals needed"],
    ),
    "closed, approved in steps": (
        _closed_approved,
        [
            "Đã phê duyệt: prod-web / Prod / Gate",
            "*Đã phê duyệt* bởi <@U0DAN>, <@U0ALICE>, <@U0BOB>",
            "Các bước, lần lượt: QA ✅ <@U0DAN> · Release ✅",
            "<@U0DAN>: Change ticket `CHG123`",
            "Gửi yêu cầu lúc <!date^",
            "đã chờ 25 phút",
            "mã phê duyệt `0123456789ab`",
        ],
        ["Approved: prod-web", "Requested", "waited 25m"],
    ),
    "closed otherwise": (
        _closed_others,
        [
            "Đã từ chối: prod-web / Prod / Gate",
            "*Đã từ chối* bởi <@U0BOB>",
            "*Đã từ chối*: Outside the deploy window",
            "Đã hết hạn: prod-web",
            ":hourglass: *Đã hết hạn*",
            "Đã được quyết định ngoài Slack: prod-web",
            "*Đã được quyết định ngoài Slack bởi deploy-bot*",
            "*Đã phê duyệt* bởi không ai",
        ],
        ["Rejected: prod-web", "Expired", "Decided outside Slack by deploy-bot", "by nobody"],
    ),
    "progress of the one step": (
        _progress_of_a_rule_without_steps,
        ["Người phê duyệt 1/2 (<@U0ALICE>)", "bị từ chối", "được phê duyệt"],
        ["Approvers 1 of 2", "rejected", "approved"],
    ),
    "check states": (
        _check_states,
        ["ALARM: Threshold Crossed", "KHÔNG ĐẠT", "ĐẠT", "KHÔNG TỒN TẠI", "KHÔNG ĐỌC ĐƯỢC", "LỖI"],
        ["FAILED", "PASSED", "MISSING", "UNREADABLE", "ERROR"],
    ),
    "changes": (
        _changes,
        [
            "*Thay đổi*",
            "|50+ commit>",
            "|1 commit>",
            "|so sánh với 0000000>",
            "phiên bản nguồn mới (trước đó là `0000000`)",
            "Nguồn đã đổi từ GitHub example-org/web sang GitHub example-org/web",
            "Nguồn đã đổi sang một nguồn khác",
            "và 2 mục khác",
            "Nguồn MyArtifact",
        ],
        ["*Changes*", "50+ commits", "compare with", "and 2 more", "Source MyArtifact"],
    ),
}


def _texts(payload: Any) -> list[str]:
    return list(shown_texts(payload))


@pytest.mark.parametrize("case", list(CASES))
def test_each_text_of_the_request_shows_no_english_in_vietnamese(case: str) -> None:
    render, _, _ = CASES[case]
    assert english_in(_texts(render("vi")), DATA) == []


@pytest.mark.parametrize("case", list(CASES))
def test_each_text_of_the_request_says_what_we_expect_in_vietnamese(case: str) -> None:
    render, vietnamese, _ = CASES[case]
    shown = "\n".join(_texts(render("vi")))
    assert [phrase for phrase in vietnamese if phrase not in shown] == []


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_render_in_english_reads_in_english(case: str) -> None:
    render, _, english = CASES[case]
    shown = "\n".join(_texts(render("en")))
    assert [phrase for phrase in english if phrase not in shown] == []
    assert english_in(_texts(render("en")), DATA) != []


def test_the_vietnamese_modal_titles_and_buttons_stay_within_slacks_limits() -> None:
    """Slack refuses a modal whose title or buttons pass 24 characters."""
    views = [_reject_modal("vi"), _approve_modal("vi"), _approve_modal_with_inputs("vi")]
    for view in views:
        for key in ("title", "submit", "close"):
            assert len(view[key]["text"]) <= 24, view[key]


def test_the_stored_step_name_and_commit_count_stay_english() -> None:
    """Only the display is translated: the stored one-step name and commit count are
    English data (approval_gate.rules.SINGLE_STEP, approval_gate.revisions)."""
    rules = make_rules(language="vi")
    (state,) = progress(rules, [vote("U0ALICE")])
    assert state.name == "Approvers"
    assert state.record()["name"] == "Approvers"
