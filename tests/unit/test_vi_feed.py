"""The status feed in Vietnamese (DESIGN §8.5, issue 25): every kind of message the feed
sends (the run's message in each state, its stage and action lines, the held lines, its
context lines, the thread's lines, the settlement notes) carries no English of the catalog
when the pipeline's rules say `language: vi`, says what we expect in Vietnamese, and says
it in English otherwise."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from approval_gate.feed import feed_view, hold_shower
from approval_gate.feed.details import ActionDetails
from approval_gate.feed.events import ACTION, STAGE, STATES, PipelineEvent
from approval_gate.feed.render import FeedView, thread_line, wanted_lines
from approval_gate.feed.settlement import notes, settlement
from approval_gate.feed.state import Feed, Revision, StepState
from approval_gate.store import DECIDED_ELSEWHERE

from tests.english import english_in, shown_texts
from tests.unit.fakes import APPROVAL_ID, make_approval, make_rules
from tests.unit.test_feed import (
    BUILD_ERROR,
    BUILD_LOGS,
    FAILED_BUILD,
    POLICY,
    SUCCESSFUL_RUN,
    FakeCodePipeline,
    _open_approval,
    make_feed,
    redelivered,
    sample,
)

T0 = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)
EXECUTION = "b7a0e5f2-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
PIPELINE = "prod-web"
STAGES = ("Source", "Build", "Approval", "Deploy")
ACTIONS = ("Checkout", "CodeBuild", "ProductionGate", "DeployToECS")
SUMMARY = "Fix the checkout total"
ERROR = "exit status 2 in phase BUILD"
TRIGGER_DETAIL = "arn:aws:sts::123456789012:assumed-role/Admin/jane"
#: What the render was given: names, commit messages, errors (not the gate's words).
DATA = [PIPELINE, *STAGES, *ACTIONS, SUMMARY, ERROR, "assumed-role/Admin/jane", "rule/x"]
VI_POLICY = POLICY + "pipelines:\n  - match: prod-*\n    language: vi\n"


def step(state: str, minutes: float = 0, **more: Any) -> StepState:
    return StepState(state, 1, 1, T0 + timedelta(minutes=minutes), since=T0, **more)


def make_run(state: str | None, **overrides: Any) -> Feed:
    """A run of prod-web: Source done, Build running (or ended as the run did)."""
    values: dict[str, Any] = {
        "execution_id": EXECUTION,
        "pipeline": PIPELINE,
        "region": "us-east-2",
        "account": "123456789012",
        "pipeline_state": step(state, 26.5) if state else None,
        "stages": {"Source": step("SUCCEEDED", 1), "Build": step(state or "STARTED", 20)},
        "actions": {("Source", "Checkout"): step("SUCCEEDED", 1)},
        "started_at": T0,
        "trigger_type": "StartPipelineExecution",
        "trigger_detail": TRIGGER_DETAIL,
        "revision": Revision("3f9c2e1d7b4a5c6e8f90", SUMMARY, "https://github.com/x/web/c/1"),
    }
    values.update(overrides)
    return Feed(**values)


def texts(view: FeedView) -> list[str]:
    return [view.text, *shown_texts(view.blocks)]


def no_english(view: FeedView | list[str] | str) -> None:
    shown = texts(view) if isinstance(view, FeedView) else view
    shown = [shown] if isinstance(shown, str) else shown
    assert english_in(shown, DATA) == []


# --------------------------------------------------------------------------- the message

#: Each state of the run: what its first line says, in Vietnamese and in English.
HEADLINES = {
    None: ("▶️ prod-web đang chạy", "▶️ prod-web in progress"),
    "RESUMED": ("▶️ prod-web đang chạy", "▶️ prod-web in progress"),
    "STOPPING": ("⏳ prod-web đang dừng", "⏳ prod-web stopping"),
    "SUCCEEDED": ("✅ prod-web thành công sau 26 phút 30 giây", "✅ prod-web succeeded in 26m 30s"),
    "FAILED": (
        "❌ prod-web thất bại ở stage Build sau 26 phút 30 giây",
        "❌ prod-web failed in stage Build after 26m 30s",
    ),
    "STOPPED": ("⏹ prod-web đã dừng sau 26 phút 30 giây", "⏹ prod-web stopped after 26m 30s"),
    "CANCELED": ("⏹ prod-web bị hủy sau 26 phút 30 giây", "⏹ prod-web cancelled after 26m 30s"),
    "ABANDONED": ("⏹ prod-web bị bỏ dở sau 26 phút 30 giây", "⏹ prod-web abandoned after 26m 30s"),
    "SUPERSEDED": (
        "⏭ prod-web bị thay thế sau 26 phút 30 giây",
        "⏭ prod-web superseded after 26m 30s",
    ),
}


@pytest.mark.parametrize("state", list(HEADLINES))
def test_the_run_s_message_in_each_state_is_vietnamese(state):
    vietnamese, english = HEADLINES[state]
    run = make_run(state)

    shown = feed_view(run, "vi")

    no_english(shown)
    assert shown.text == vietnamese
    headline = shown.blocks[0]["text"]["text"]
    symbol, said = vietnamese.split(" prod-web ")
    assert headline.startswith(f"{symbol} *<https://") and headline.endswith(f"|prod-web>* {said}")
    context = [element["text"] for element in shown.blocks[2]["elements"]]
    assert context[0] == "Commit `3f9c2e1` <https://github.com/x/web/c/1|Fix the checkout total>"
    assert context[1] == "Kích hoạt: `assumed-role/Admin/jane` khởi chạy"
    assert (
        context[2].startswith("Bắt đầu <!date^") and "^{time}, {date_short_pretty}|" in context[2]
    )
    assert context[2].endswith("UTC ngày 06/12/2026> · lần chạy `b7a0e5f2`")
    english_view = feed_view(run, "en")
    assert english_view.text == english
    assert [e["text"] for e in english_view.blocks[2]["elements"]][1:] == [
        "Trigger: started by `assumed-role/Admin/jane`",
        f"Started <!date^{int(T0.timestamp())}^{{date_short_pretty}} at {{time}}"
        "|2026-12-06 13:00 UTC> · execution `b7a0e5f2`",
    ]


@pytest.mark.parametrize(
    "state", ["SUCCEEDED", "FAILED", "STOPPED", "CANCELED", "ABANDONED", "SUPERSEDED"]
)
def test_an_ended_run_without_a_known_start_says_no_duration(state):
    run = make_run(state, started_at=None, stages={}, actions={})

    shown = feed_view(run, "vi")

    no_english(shown)
    assert "sau" not in shown.text and "phút" not in shown.text
    assert shown.blocks[-1]["elements"][-1]["text"] == "lần chạy `b7a0e5f2`"
    assert "execution `b7a0e5f2`" in texts(feed_view(run, "en"))


def test_a_failed_run_without_a_known_start_says_failed_alone():
    run = make_run("FAILED", started_at=None, stages={}, actions={})

    assert feed_view(run, "vi").text == "❌ prod-web thất bại"
    assert feed_view(run, "en").text == "❌ prod-web failed"
    timed = replace(run, started_at=T0)
    assert feed_view(timed, "vi").text == "❌ prod-web thất bại sau 26 phút 30 giây"
    assert feed_view(timed, "en").text == "❌ prod-web failed after 26m 30s"


#: Each trigger: how the context line says it (with the detail, without it).
TRIGGERS = {
    "StartPipelineExecution": ("Kích hoạt: `rule/x` khởi chạy", "Kích hoạt: khởi chạy thủ công"),
    "CloudWatchEvent": ("thay đổi nguồn, quy tắc EventBridge `rule/x`", None),
    "PollForSourceChanges": ("thay đổi nguồn, kiểm tra định kỳ `rule/x`", None),
    "Webhook": ("Kích hoạt: webhook `rule/x`", "Kích hoạt: webhook"),
    "WebhookV2": ("Kích hoạt: webhook `rule/x`", None),
    "PutActionRevision": ("phiên bản nguồn mới `rule/x`", None),
    "CreatePipeline": ("pipeline được tạo hoặc cập nhật `rule/x`", None),
    "ManualRollback": ("rollback thủ công `rule/x`", None),
    "AutomatedRollback": ("rollback tự động `rule/x`", None),
    "SomethingNew": ("Kích hoạt: SomethingNew `rule/x`", "Kích hoạt: SomethingNew"),
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_every_trigger_is_said_in_vietnamese(trigger):
    with_detail, alone = TRIGGERS[trigger]
    run = make_run("SUCCEEDED", trigger_type=trigger, trigger_detail="arn:aws:events:rule/x")

    line = feed_view(run, "vi").blocks[2]["elements"][1]["text"]
    bare = feed_view(replace(run, trigger_detail=None), "vi").blocks[2]["elements"][1]["text"]

    no_english([line, bare])
    assert with_detail in line and line.startswith("Kích hoạt: ")
    assert bare == (alone or line.removesuffix(" `rule/x`"))
    english = feed_view(run, "en").blocks[2]["elements"][1]["text"]
    assert english.startswith("Trigger: ") and english.endswith("`rule/x`")


@pytest.mark.parametrize(
    ("revision", "vietnamese", "english"),
    [
        (Revision("3f9c2e1d7b4a5c6e8f90"), "Commit `3f9c2e1`", "Commit `3f9c2e1`"),
        (
            Revision("3f9c2e1d7b4a5c6e8f90", SUMMARY),
            "Commit `3f9c2e1` Fix the checkout total",
            "Commit `3f9c2e1` Fix the checkout total",
        ),
        (Revision("v1.42.0"), "Phiên bản nguồn `v1.42.0`", "Revision `v1.42.0`"),
        (
            Revision("v1.42.0", None, "https://s3/x"),
            "Phiên bản nguồn `v1.42.0` <https://s3/x|xem>",
            "Revision `v1.42.0` <https://s3/x|view>",
        ),
        (
            Revision("v1.42.0", SUMMARY, "https://s3/x"),
            "Phiên bản nguồn `v1.42.0` <https://s3/x|Fix the checkout total>",
            "Revision `v1.42.0` <https://s3/x|Fix the checkout total>",
        ),
    ],
)
def test_the_source_revision_line_is_vietnamese(revision, vietnamese, english):
    run = make_run("SUCCEEDED", revision=revision, trigger_type=None)

    line = feed_view(run, "vi").blocks[2]["elements"][0]["text"]

    no_english([line])
    assert line == vietnamese
    assert feed_view(run, "en").blocks[2]["elements"][0]["text"] == english


def test_the_stage_line_and_the_held_approvals_are_vietnamese():
    until = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
    running = {
        "Source": step("SUCCEEDED", 1),
        "Build": step("FAILED", 5),
        "Approval": step("STARTED", 10),
        "Deploy": step("STOPPING", 12),
    }
    later = make_run(None, stages=running, held={("Approval", "ProductionGate"): until})
    checks = replace(later, held={("Approval", "ProductionGate"): None})

    stages = feed_view(later, "vi").blocks[1]["text"]["text"]
    waiting = feed_view(checks, "vi").blocks[1]["text"]["text"]

    no_english([stages, waiting])
    assert stages == (
        "✅ Source  →  ❌ Build  →  ⏸ Approval: đã phê duyệt, triển khai lúc "
        f"<!date^{int(until.timestamp())}^{{time}}, {{date_short_pretty}}"
        "|22:00 UTC ngày 06/12/2026>  →  ⏳ Deploy"
    )
    assert "⏸ Approval: đã phê duyệt, đang tạm giữ chờ kiểm tra sức khỏe đạt" in waiting
    assert (
        "⏸ Approval: approved, deploys at <!date^"
        in feed_view(later, "en").blocks[1]["text"]["text"]
    )
    assert "approved, waiting for the health checks to pass" in str(feed_view(checks, "en").blocks)


def test_the_language_is_part_of_what_the_message_shows():
    """The digest covers the words: a policy that changes the language updates the message."""
    run = make_run("SUCCEEDED")

    assert feed_view(run, "vi").digest != feed_view(run, "en").digest
    assert feed_view(run, "vi").digest == feed_view(run, "vi").digest


# --------------------------------------------------------------------------- the thread

STAGE_WORDS = {
    "STARTED": "đang chạy",
    "RESUMED": "đang chạy",
    "STOPPING": "đang dừng",
    "SUCCEEDED": "thành công",
    "FAILED": "thất bại",
    "STOPPED": "đã dừng",
    "CANCELED": "bị hủy",
    "ABANDONED": "bị bỏ dở",
    "SUPERSEDED": "bị thay thế",
}


@pytest.mark.parametrize("state", STATES)
def test_every_stage_and_action_line_is_vietnamese(state):
    stage_line = thread_line(STAGE, "Build", None, step(state), "vi")
    action = step(state, summary=ERROR, url="https://example.com/build")
    action_line = thread_line(ACTION, "Build", "CodeBuild", action, "vi")

    no_english([stage_line, action_line])
    assert stage_line.endswith(f" Stage Build {STAGE_WORDS[state]}")
    assert action_line.endswith(
        f" Action Build/CodeBuild {STAGE_WORDS[state]}: {ERROR}"
        " · <https://example.com/build|nhật ký>"
    )
    english = thread_line(ACTION, "Build", "CodeBuild", action, "en")
    assert english.startswith(f"{action_line.split()[0]} Action Build/CodeBuild ")
    assert english.endswith(f": {ERROR} · <https://example.com/build|logs>")


@pytest.mark.parametrize(
    ("state", "vietnamese", "english"),
    [
        ("SUCCEEDED", "✅ Action Approval/ProductionGate đã được phê duyệt", "approved"),
        ("FAILED", "❌ Action Approval/ProductionGate đã bị từ chối", "rejected"),
    ],
)
def test_an_approval_action_s_line_says_approved_or_rejected(state, vietnamese, english):
    decided = step(state, category="Approval")

    line = thread_line(ACTION, "Approval", "ProductionGate", decided, "vi")

    no_english([line])
    assert line == vietnamese
    assert thread_line(ACTION, "Approval", "ProductionGate", decided, "en").endswith(english)


def test_the_thread_messages_due_are_vietnamese():
    run = make_run(
        "FAILED",
        stages={"Source": step("SUCCEEDED", 1), "Build": step("FAILED", 20)},
        actions={
            ("Source", "Checkout"): step("SUCCEEDED", 1),
            ("Build", "CodeBuild"): step("FAILED", 20, summary=ERROR),
        },
    )

    lines = [line.text for line in wanted_lines(run, frozenset({STAGE, ACTION}), "vi")]

    no_english(lines)
    assert lines == [
        "✅ Stage Source thành công\n✅ Action Source/Checkout thành công\n"
        f"❌ Stage Build thất bại\n❌ Action Build/CodeBuild thất bại: {ERROR}"
    ]
    (english,) = wanted_lines(run, frozenset({STAGE, ACTION}), "en")
    assert english.text.startswith("✅ Stage Source succeeded\n")


# --------------------------------------------------------------------------- settlements


def event(kind: str, state: str) -> PipelineEvent:
    return PipelineEvent(
        kind=kind,
        event_id="e1",
        time=T0,
        region="us-east-2",
        account="123456789012",
        pipeline=PIPELINE,
        execution_id=EXECUTION,
        state=state,
        stage="Approval" if kind == ACTION else None,
        action="ProductionGate" if kind == ACTION else None,
        category="Approval" if kind == ACTION else None,
    )


JANE = "arn:aws:sts::123456789012:assumed-role/Dev/jane"


@pytest.mark.parametrize(
    ("kind", "state", "details", "vietnamese"),
    [
        (ACTION, "SUCCEEDED", None, "Đã phê duyệt trong console CodePipeline"),
        (
            ACTION,
            "SUCCEEDED",
            ActionDetails(updated_by=JANE),
            "Đã phê duyệt trong console CodePipeline",
        ),
        (ACTION, "FAILED", None, "Đã từ chối trong console CodePipeline, hoặc đã hết hạn ở đó"),
        (
            ACTION,
            "FAILED",
            ActionDetails(summary="Canary is red"),
            "Đã từ chối trong console CodePipeline, hoặc đã hết hạn ở đó: Canary is red",
        ),
        (ACTION, "FAILED", ActionDetails(updated_by=JANE), "Đã từ chối trong console CodePipeline"),
        (ACTION, "CANCELED", None, "Đã bị hủy trong CodePipeline"),
        ("pipeline", "SUPERSEDED", None, "Bị thay thế bởi một lần chạy mới hơn"),
        ("pipeline", "STOPPED", None, "Lần chạy pipeline đã bị dừng"),
        ("pipeline", "FAILED", None, "Lần chạy pipeline đã kết thúc trước khi có quyết định"),
    ],
)
def test_every_settlement_note_is_vietnamese(kind, state, details, vietnamese):
    said = settlement(event(kind, state), details, "vi")

    assert said is not None
    no_english([said.note.replace("Canary is red", "")])
    assert said.note == vietnamese
    english = settlement(event(kind, state), details, "en")
    assert english is not None
    assert english.note.startswith(("Approved", "Rejected", "Cancelled", "Superseded", "The "))


def test_the_notes_english_is_their_constants():
    """The constants other code compares with are the catalog's English."""
    assert all(key == value for key, value in notes("en").items())
    assert all(key != value for key, value in notes("vi").items())


# --------------------------------------------------------------------------- end to end


def test_a_pipeline_whose_rule_says_vi_gets_its_feed_in_vietnamese(dynamodb):
    feed = make_feed(dynamodb, policy=VI_POLICY)

    feed.run(SUCCESSFUL_RUN)

    text, blocks = feed.slack.shown()
    assert text == "✅ prod-web thành công sau 26 phút 32 giây"
    shown = [text, *shown_texts(blocks), *feed.slack.thread(), feed.slack.posts()[0]["text"]]
    assert english_in(shown, [*DATA, "CodeBuild", "Source"]) == []
    assert feed.slack.thread()[2] == (
        "✅ Stage Approval thành công\n✅ Action Approval/ProductionGate đã được phê duyệt"
    )
    assert feed.slack.posts()[0]["text"] == "▶️ prod-web đang chạy"
    english = make_feed(dynamodb, policy=POLICY)
    english.run(SUCCESSFUL_RUN, execution_id="0e0e0e0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    assert english.slack.shown()[0] == "✅ prod-web succeeded in 26m 32s"


def test_a_failed_run_in_vietnamese_says_where(dynamodb):
    feed = make_feed(dynamodb, policy=VI_POLICY)

    feed.run(FAILED_BUILD)

    text, blocks = feed.slack.shown()
    assert text.startswith("❌ prod-web thất bại ở stage Build sau ")
    shown = [text, *shown_texts(blocks), *feed.slack.thread()]
    assert english_in(shown, [*DATA, BUILD_ERROR, BUILD_LOGS]) == []
    assert feed.slack.thread()[-1].startswith(
        "❌ Stage Build thất bại\n❌ Action Build/CodeBuild thất bại"
    )


def test_a_pipeline_without_the_rule_stays_english(dynamodb):
    feed = make_feed(dynamodb, policy=VI_POLICY)

    feed.run(SUCCESSFUL_RUN[:5], pipeline="staging-web")

    assert feed.slack.posts()[0]["text"] == "▶️ staging-web in progress"
    assert feed.slack.thread() == ["✅ Stage Source succeeded\n✅ Action Source/Source succeeded"]


def test_a_superseded_run_closes_its_approval_with_a_vietnamese_note(dynamodb, store):
    feed = make_feed(dynamodb, policy=VI_POLICY)
    _open_approval(store)

    feed.run([*SUCCESSFUL_RUN[:11], "pipeline_superseded"])

    approval = store.get(APPROVAL_ID)
    assert approval is not None and approval.status == DECIDED_ELSEWHERE
    assert approval.note == "Bị thay thế bởi một lần chạy mới hơn"
    assert feed.slack.shown()[0] == "⏭ prod-web bị thay thế sau 10 phút"


def test_a_console_decision_is_noted_in_the_approval_s_language(dynamodb, store):
    """An action's event notes in the rules of its stage and action: here a rule for the
    approval's stage alone says vi, the pipeline's message stays English."""
    policy = POLICY + "pipelines:\n  - match: prod-*\n    stage: Approval\n    language: vi\n"
    codepipeline = FakeCodePipeline(approval_summary="Canary is red")
    feed = make_feed(dynamodb, policy=policy, codepipeline=codepipeline)
    _open_approval(store)
    rejected = redelivered(sample("action_approval_succeeded", state="FAILED"))

    feed.send(*(sample(n) for n in SUCCESSFUL_RUN[:11]), rejected)

    approval = store.get(APPROVAL_ID)
    assert approval is not None
    assert (
        approval.note
        == "Đã từ chối trong console CodePipeline, hoặc đã hết hạn ở đó: Canary is red"
    )
    assert feed.slack.posts()[0]["text"] == "▶️ prod-web in progress"


def test_a_hold_shows_in_the_run_s_message_in_the_approval_s_language(dynamodb):
    feed = make_feed(dynamodb, policy=VI_POLICY)
    feed.run(SUCCESSFUL_RUN[:11])
    approval = make_approval(stage="Approval", rules=make_rules(language="vi"))
    until = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)

    hold_shower(feed.store, lambda: feed.slack)(approval, until)

    text, blocks = feed.slack.shown()
    stages = blocks[1]["text"]["text"]
    assert "⏸ Approval: đã phê duyệt, triển khai lúc <!date^" in stages
    assert english_in([text, *shown_texts(blocks)], DATA) == []
