"""`approval-gate sandbox --language` and `demo --language` (issue 25): the policy in force
speaks the language asked for (its ``defaults.language``), whatever the file says; any
other value is refused by argparse. These tests look at the policy in force and at the
rules an approval was started with, not at the words Slack shows (the catalog's work)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from approval_gate.policy import load_policy
from approval_gate.store import ApprovalStore

from cli.main import main
from sandbox.client import SandboxClient, wait_for
from sandbox.demo import DEMO_POLICY, ENDED, RUNNING, _status_message, run_demo
from sandbox.engine import policy_in_language
from sandbox.server import SandboxServer
from tests.conftest import POLICIES, SLACK_FIXTURE

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'functions'}"}


def _policy_in_force(url: str) -> Any:
    return load_policy(SandboxClient(url).get("/_sandbox/aws")["policy"])


def _languages(policy: Any) -> list[str]:
    """The language of the defaults, then of each rule, as resolved for a request."""
    names = [selectors["match"].replace("*", "x") for selectors, _ in policy.pipelines]
    stages = [
        selectors.get("stage", "").replace("*", "x") or None for selectors, _ in policy.pipelines
    ]
    actions = [
        selectors.get("action", "").replace("*", "x") or None for selectors, _ in policy.pipelines
    ]
    rules = [policy.resolve(*selected) for selected in zip(names, stages, actions, strict=True)]
    return [policy.resolve("matches-no-rule-at-all").language, *(r.language for r in rules)]


# --- the document ---------------------------------------------------------------------


def test_the_language_is_set_in_the_defaults_and_every_other_key_kept():
    text = (POLICIES / "standard.yaml").read_text(encoding="utf-8")

    english, vietnamese = load_policy(text), load_policy(policy_in_language(text, "vi"))

    assert "language" not in english.defaults
    assert vietnamese.defaults == {**english.defaults, "language": "vi"}
    assert vietnamese.pipelines == english.pipelines
    assert vietnamese.people == english.people
    assert set(_languages(english)) == {"en"}
    assert set(_languages(vietnamese)) == {"vi"}


def test_the_flag_replaces_the_files_language_but_not_a_rules_own():
    text = (
        "defaults:\n  channel: C0DEPLOYS\n  approvers: {users: [U0ALICE]}\n  language: vi\n"
        "pipelines:\n  - match: 'en-*'\n    language: en\n  - match: 'web-*'\n"
    )

    assert _languages(load_policy(text)) == ["vi", "en", "vi"]
    assert _languages(load_policy(policy_in_language(text, "en"))) == ["en", "en", "en"]
    assert _languages(load_policy(policy_in_language(text, "vi"))) == ["vi", "en", "vi"]


def test_a_policy_without_defaults_gets_them_and_a_broken_one_is_left_to_the_loader():
    text = "pipelines:\n  - match: 'web-*'\n    channel: C0X\n    approvers: {users: [U0A]}\n"

    document = yaml.safe_load(policy_in_language(text, "vi"))
    assert document == {**yaml.safe_load(text), "defaults": {"language": "vi"}}
    for broken in ("defaults: [1, 2]\n", "- a list\n", "defaults: {channel: [\n"):
        assert policy_in_language(broken, "vi") == broken


# --- the command line -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["sandbox", "demo"])
def test_another_language_is_refused_with_argparses_error(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--language", "fr"])

    assert exited.value.code == 2
    assert "argument --language: invalid choice: 'fr' (choose from 'en', 'vi')" in (
        capsys.readouterr().err
    )


def test_the_help_says_the_flag_overrides_the_policy_files_language(capsys):
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())

    assert "--language {en,vi}" in help_text
    assert "overriding the --policy file's own" in help_text


def test_the_sandbox_command_serves_its_default_policy_in_vietnamese():
    process = subprocess.Popen(
        [*CLI, "sandbox", "--port", "0", "--language", "vi"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match = re.fullmatch(r"sandbox ready on (\S+)\n", process.stdout.readline())
        assert match, process.stderr.read() if process.poll() is not None else "no ready line"
        policy = _policy_in_force(match.group(1))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=45) == 0

    shipped = load_policy((ROOT / "config" / "policy.yaml").read_text(encoding="utf-8"))
    assert set(_languages(shipped)) == {"en"}
    assert set(_languages(policy)) == {"vi"}
    assert policy.defaults == {**shipped.defaults, "language": "vi"}


def test_with_a_policy_file_the_flag_decides_and_an_approval_is_started_in_it():
    """In process (run_sandbox's SandboxServer, given the language the flag parses to):
    the test policy's requests start with ``rules.language`` vi."""
    server = SandboxServer(
        policy_file=POLICIES / "standard.yaml", port=0, slack_fixture=SLACK_FIXTURE, language="vi"
    ).start()
    try:
        assert _policy_in_force(server.url).defaults["language"] == "vi"
        client = SandboxClient(server.url)
        client.start_run("web-app")
        store = ApprovalStore(server.sandbox.table_name, server.sandbox.client("dynamodb"))
        approval = wait_for(lambda: next(iter(store.all()), None), what="the approval")
        assert approval.rules.language == "vi"
    finally:
        server.stop()  # the request still waits: nothing to wait for


def test_without_the_flag_the_policy_is_served_as_written():
    server = SandboxServer(policy_file=POLICIES / "standard.yaml", port=0).start()
    try:
        served = SandboxClient(server.url).get("/_sandbox/aws")["policy"]
    finally:
        server.stop()

    assert served == (POLICIES / "standard.yaml").read_text(encoding="utf-8")


# --- the demo ---------------------------------------------------------------------------


def test_the_demo_runs_to_its_end_in_vietnamese():
    lines: list[str] = []

    assert run_demo(decision="reject", out=lines.append, language="vi") == 0, lines
    assert lines[-1].startswith("CodePipeline recorded Rejected by U0ALICE")
    # What the approver typed is Vietnamese too: the demo's people speak its language.
    assert any('gave the reason "Canary báo lỗi ở bước thanh toán"' in line for line in lines)


def test_the_demos_policy_in_vietnamese():
    server = SandboxServer(policy_file=DEMO_POLICY, port=0, language="vi").start()
    try:
        policy = _policy_in_force(server.url)
    finally:
        server.stop()

    assert _languages(policy) == ["vi", "vi"]


class _Messages:
    """A SandboxClient's two reads, for _status_message."""

    def __init__(self, messages: list[dict[str, Any]], approvals: list[str]) -> None:
        self._messages, self._approvals = messages, approvals

    def messages(self) -> list[dict[str, Any]]:
        return self._messages

    def approvals(self) -> list[dict[str, Any]]:
        return [{"approval_id": approval_id} for approval_id in self._approvals]


def _message(text: str, link: str, *, extra: str = "", thread_ts: str | None = None) -> Any:
    block = {"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|x> {extra}"}}
    return {"text": text, "blocks": [block], "thread_ts": thread_ts, "ts": text}


def test_the_demo_finds_the_feed_message_by_execution_and_emoji_whatever_its_words():
    """Whatever words the catalog gives the feed's message (here made-up Vietnamese), the
    demo tells it from the request (which links to the same execution) and from another
    run's message, and sees the run end by its emoji."""
    link = "https://x/pipelines/demo-web-app/executions/{}/timeline?region=us-east-1"
    request = _message("✅ Đã phê duyệt: demo-web-app", link.format("e1"), extra="approval-1")
    other_run = _message("✅ demo-web-app thành công", link.format("e2"))
    thread_line = _message("✅ Approval", link.format("e1"), thread_ts="1.0")
    running = _message("▶️ demo-web-app đang chạy", link.format("e1"))
    ended = _message("❌ demo-web-app thất bại ở stage Approval", link.format("e1"))
    before = [request, other_run, thread_line, running]

    found = _status_message(_Messages(before, ["approval-1"]), "e1", RUNNING + ENDED)
    assert found is running
    assert _status_message(_Messages(before, ["approval-1"]), "e1", ENDED) is None
    assert _status_message(_Messages([request, ended], ["approval-1"]), "e1", ENDED) is ended
