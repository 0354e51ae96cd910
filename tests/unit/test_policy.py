"""The policy (DESIGN §3): loading, validation messages, matching and merging."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from approval_gate.policy import (
    Approvers,
    Escalation,
    Policy,
    PolicyError,
    Rules,
    load_policy,
    load_policy_file,
    policy_ids,
)
from approval_gate.policy_fields import format_duration, parse_duration
from approval_gate.rules import WEEKDAYS, DeployWindow, Freeze, FreezeOverride
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.policy_docs import error_of

REPO = Path(__file__).resolve().parents[2]

DESIGN_EXAMPLE = """\
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE], groups: [S0RELEASE]}
  required_approvals: 1
  reminder_every: 4h
  escalate_after_reminders: 2
  escalation: {channel: C0ONCALL, mention_groups: [S0ONCALL], approvers: {groups: [S0ONCALL]}}
  deadline: 24h
  on_deadline: reject
people:                           # change authors → Slack users, for four-eyes
  alice@example.com: U0ALICE      # commit email, or an IAM principal ARN
pipelines:                        # first match wins
  - match: "prod-*"               # glob on pipeline name; optional `stage:` and `action:` globs
    channel: C0PRODDEPLOY
    required_approvals: 2
"""

BASE_DEFAULTS: dict[str, Any] = {
    "channel": "C0DEPLOYS",
    "approvers": {"users": ["U0ALICE", "U0BOB"]},
}


def doc(defaults: dict[str, Any] | None = None, *rules: dict[str, Any], **top: Any) -> Any:
    """A policy document: BASE_DEFAULTS updated with ``defaults``, then the rules."""
    document: dict[str, Any] = {"defaults": {**BASE_DEFAULTS, **(defaults or {})}}
    if rules:
        document["pipelines"] = list(rules)
    document.update(top)
    return document


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("15m", 900), ("4h", 14400), ("2d", 172800), (45, 45), ("90s", 90)],
)
def test_parse_duration_accepts_units_and_plain_seconds(value: str | int, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("4x", "reminder_every: '4x' is not a duration (use 30s, 15m, 4h or 2d)"),
        ("4", "reminder_every: '4' is not a duration (use 30s, 15m, 4h or 2d)"),
        ("1.5h", "reminder_every: '1.5h' is not a duration (use 30s, 15m, 4h or 2d)"),
        ("4 h", "reminder_every: '4 h' is not a duration (use 30s, 15m, 4h or 2d)"),
        ("-5m", "reminder_every: '-5m' is not a duration (use 30s, 15m, 4h or 2d)"),
        ("0s", "reminder_every: a duration must be more than 0, got '0s'"),
        (0, "reminder_every: a duration must be more than 0, got 0"),
        (-30, "reminder_every: a duration must be more than 0, got -30"),
        (True, "reminder_every: expected a duration (use 30s, 15m, 4h or 2d, or whole seconds)"),
        (1.5, "reminder_every: expected a duration (use 30s, 15m, 4h or 2d, or whole seconds)"),
        (None, "reminder_every: expected a duration (use 30s, 15m, 4h or 2d, or whole seconds)"),
    ],
)
def test_parse_duration_rejects_with_the_place_named(value: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_duration(value, "reminder_every")
    assert str(caught.value).startswith(message)


def test_parse_duration_names_duration_when_no_place_given() -> None:
    with pytest.raises(PolicyError, match=r"^duration: 'soon' is not a duration"):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400, "24h"),
        (90, "90s"),
        (172800, "2d"),
        (900, "15m"),
        (3600, "1h"),
        (60, "1m"),
        (1, "1s"),
        (129600, "36h"),
        (604800, "7d"),
        (0, "0s"),
    ],
)
def test_format_duration_uses_the_largest_exact_unit(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


@given(st.integers(min_value=1, max_value=10**9))
def test_format_then_parse_duration_round_trips(seconds: int) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert len(text) <= len(f"{seconds}s")


# --------------------------------------------------------------------------- loading


def test_design_example_loads_and_resolves() -> None:
    policy = load_policy(DESIGN_EXAMPLE)

    prod = policy.resolve("prod-web", "Deploy", "Approve")
    assert prod.channel == "C0PRODDEPLOY"
    assert prod.required_approvals == 2
    assert prod.approvers == Approvers(users=("U0ALICE",), groups=("S0RELEASE",))
    assert prod.escalation == Escalation(
        channel="C0ONCALL", mention_groups=("S0ONCALL",), approvers=Approvers(groups=("S0ONCALL",))
    )
    assert prod.reminder_every == 4 * 3600
    assert prod.deadline == 24 * 3600
    assert prod.rule == 'pipelines[0] (match "prod-*")'

    staging = policy.resolve("staging-web")
    assert staging.channel == "C0DEPLOYS"
    assert staging.required_approvals == 1
    assert staging.rule == "defaults"

    assert policy.people == {"alice@example.com": "U0ALICE"}


def test_deployed_config_policy_loads() -> None:
    policy = load_policy_file(REPO / "config" / "policy.yaml")

    rules = policy.resolve("prod-web", "Approve", "Approve")
    assert rules.rule.startswith("pipelines[0]")
    assert rules.channel == "C0DEPLOYS"
    assert rules.approvers.users == ("U0ALICE", "U0BOB")
    assert rules.required_approvals == 1
    assert policy.resolve("dev-web").required_approvals == 1
    assert policy.people["alice@example.com"] == "U0ALICE"
    assert policy.people["arn:aws:iam::123456789012:user/alice"] == "U0ALICE"


def test_built_in_defaults_fill_what_the_policy_leaves_out() -> None:
    rules = Policy.from_document(doc()).resolve("any")

    assert rules == Rules(
        channel="C0DEPLOYS", approvers=Approvers(users=("U0ALICE", "U0BOB")), rule="defaults"
    )
    assert rules.required_approvals == 1
    assert rules.allow_self_approval is False
    assert rules.unknown_author == "allow"
    assert rules.require_reason_on_reject is True
    assert rules.ask_comment_on_approve is False
    assert rules.reminder_every == 4 * 3600
    assert rules.escalate_after_reminders == 2
    assert rules.escalation == Escalation()
    assert rules.deadline == 24 * 3600
    assert rules.deadline_margin == 600
    assert rules.on_deadline == "reject"
    assert rules.status_channel is None
    assert rules.effective_status_channel == "C0DEPLOYS"
    assert rules.announce == (
        "started",
        "succeeded",
        "failed",
        "stopped",
        "superseded",
        "stage",
        "action",
    )


def test_every_key_can_be_set_and_is_normalised() -> None:
    rules = load_policy(
        textwrap.dedent(
            """\
            defaults:
              channel: G0PRIVATE
              approvers: {users: [W0ENTERPRISE, U0ALICE, U0ALICE], groups: [S0RELEASE]}
              required_approvals: 3
              allow_self_approval: true
              unknown_author: block
              require_reason_on_reject: false
              ask_comment_on_approve: true
              reminder_every: 30m
              escalate_after_reminders: 0
              escalation: {channel: C0ONCALL, mention_groups: [S0ONCALL]}
              deadline: 2d
              deadline_margin: 300
              on_deadline: approve
              status_channel: C0FEED
              announce: [failed, started, failed]
            """
        )
    ).resolve("p")

    assert rules.approvers == Approvers(users=("W0ENTERPRISE", "U0ALICE"), groups=("S0RELEASE",))
    assert rules.required_approvals == 3
    assert rules.allow_self_approval is True
    assert rules.unknown_author == "block"
    assert rules.require_reason_on_reject is False
    assert rules.ask_comment_on_approve is True
    assert rules.reminder_every == 1800
    assert rules.escalate_after_reminders == 0
    assert rules.escalation == Escalation(channel="C0ONCALL", mention_groups=("S0ONCALL",))
    assert rules.deadline == 172800
    assert rules.deadline_margin == 300
    assert rules.on_deadline == "approve"
    assert rules.effective_status_channel == "C0FEED"
    assert rules.announce == ("failed", "started")


def test_policy_keys_cover_every_rules_field() -> None:
    # A new Rules field must also be settable (and validated) in the policy.
    names = set(Rules._fields) - {"rule"}
    for name in names:
        message = error_of(doc({name: object()}))
        assert message.startswith(f"defaults.{name}"), message


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "---\n", "- a\n- b\n", "just a string\n", "42\n"],
)
def test_yaml_that_is_not_a_mapping_is_rejected(text: str) -> None:
    with pytest.raises(PolicyError, match=r"^policy: .*(empty|expected a mapping)"):
        load_policy(text)


def test_yaml_syntax_error_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy("defaults:\n  channel: [C0DEPLOYS\n")
    assert str(caught.value) == (
        "policy: not valid YAML: line 3, column 1: while parsing a flow sequence: "
        "expected ',' or ']', but got '<stream end>'"
    )


def test_duplicate_yaml_keys_are_rejected_not_silently_last_wins() -> None:
    text = textwrap.dedent(
        """\
        defaults:
          channel: C0DEPLOYS
          approvers: {users: [U0ALICE]}
          approvers: {users: [U0MALLORY]}
        """
    )
    with pytest.raises(PolicyError, match=r"^policy: line 4: duplicate key 'approvers'"):
        load_policy(text)


def test_yaml_merge_keys_may_still_override() -> None:
    text = textwrap.dedent(
        """\
        defaults: &base
          channel: C0DEPLOYS
          approvers: {users: [U0ALICE]}
        pipelines:
          - match: "prod-*"
            <<: *base
            channel: C0PROD
        """
    )
    assert load_policy(text).resolve("prod-x").channel == "C0PROD"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy_file(missing)
    assert str(caught.value) == f"{missing}: policy file not found"


def test_unreadable_path_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"cannot read the policy file") as caught:
        load_policy_file(tmp_path)  # a directory
    assert str(caught.value).startswith(str(tmp_path))


def test_errors_from_a_file_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("defaults:\n  channel: C0DEPLOYS\n  colour: blue\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy_file(str(path))
    assert str(caught.value) == f"{path}: defaults.colour: unknown key"


def test_importing_the_module_does_not_import_yaml() -> None:
    code = "import sys, approval_gate.policy; assert 'yaml' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO / "functions", check=True, timeout=60)


# --------------------------------------------------------------------------- matching


def test_first_matching_rule_wins() -> None:
    policy = Policy.from_document(
        doc(
            None,
            {"match": "prod-payments", "channel": "C0PAYMENTS"},
            {"match": "prod-*", "channel": "C0PROD"},
            {"match": "*", "channel": "C0OTHER"},
        )
    )

    assert policy.resolve("prod-payments").channel == "C0PAYMENTS"
    assert policy.resolve("prod-payments").rule == 'pipelines[0] (match "prod-payments")'
    assert policy.resolve("prod-web").channel == "C0PROD"
    assert policy.resolve("prod-web").rule == 'pipelines[1] (match "prod-*")'
    assert policy.resolve("dev-web").channel == "C0OTHER"


def test_a_pipeline_that_matches_no_rule_gets_defaults() -> None:
    policy = Policy.from_document(doc(None, {"match": "prod-*", "channel": "C0PROD"}))
    rules = policy.resolve("staging")
    assert (rules.channel, rules.rule) == ("C0DEPLOYS", "defaults")


def test_globs_are_case_sensitive_and_whole_name() -> None:
    policy = Policy.from_document(doc(None, {"match": "prod-*", "channel": "C0PROD"}))
    assert policy.resolve("Prod-web").channel == "C0DEPLOYS"
    assert policy.resolve("preprod-web").channel == "C0DEPLOYS"
    assert policy.resolve("prod-").channel == "C0PROD"


def test_stage_and_action_globs_narrow_a_rule() -> None:
    policy = Policy.from_document(
        doc(
            None,
            {"match": "web", "stage": "Prod*", "action": "Security*", "channel": "C0SECURITY"},
            {"match": "web", "stage": "Prod*", "channel": "C0PROD"},
        )
    )

    assert policy.resolve("web", "ProdEU", "SecurityReview").channel == "C0SECURITY"
    assert policy.resolve("web", "ProdEU", "SecurityReview").rule == (
        'pipelines[0] (match "web", stage "Prod*", action "Security*")'
    )
    assert policy.resolve("web", "ProdEU", "Approve").channel == "C0PROD"
    assert policy.resolve("web", "Staging", "SecurityReview").channel == "C0DEPLOYS"
    # A stage rule cannot match when the stage is not known.
    assert policy.resolve("web").channel == "C0DEPLOYS"
    assert policy.resolve("api", "ProdEU", "SecurityReview").channel == "C0DEPLOYS"


def test_rule_approvers_replace_defaults_never_widen() -> None:
    policy = Policy.from_document(
        doc(
            {"approvers": {"users": ["U0ALICE", "U0BOB"], "groups": ["S0RELEASE"]}},
            {"match": "prod-*", "approvers": {"users": ["U0CAROL"]}},
        )
    )

    prod = policy.resolve("prod-web")
    assert prod.approvers == Approvers(users=("U0CAROL",))
    assert not prod.may_decide("U0ALICE")
    assert prod.may_decide("U0CAROL")
    assert policy.resolve("dev").may_decide("U0ALICE")


def test_rule_replaces_whole_escalation_not_its_fields() -> None:
    policy = Policy.from_document(
        doc(
            {"escalation": {"channel": "C0ONCALL", "mention_groups": ["S0ONCALL"]}},
            {"match": "prod-*", "escalation": {"channel": "C0PRODONCALL"}},
        )
    )
    assert policy.resolve("prod-web").escalation == Escalation(channel="C0PRODONCALL")


def test_rule_keeps_defaults_for_keys_it_leaves_out() -> None:
    policy = Policy.from_document(
        doc(
            {"deadline": "8h", "on_deadline": "approve", "status_channel": "C0FEED"},
            {"match": "prod-*", "on_deadline": "reject", "status_channel": None},
        )
    )

    prod = policy.resolve("prod-web")
    assert prod.deadline == 8 * 3600
    assert prod.on_deadline == "reject"
    assert prod.effective_status_channel == "C0DEPLOYS"  # null resets to "same as channel"
    assert policy.resolve("dev").effective_status_channel == "C0FEED"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"defaults": BASE_DEFAULTS, "colour": 1}, "colour: unknown key"),
        (doc({"colour": "blue"}), "defaults.colour: unknown key"),
        (doc({"chanel": "C0X1"}), "defaults.chanel: unknown key (did you mean 'channel'?)"),
        (doc({"people": {}}), "defaults.people: unknown key"),
        (doc({"approvers": {"users": ["U0A1"], "admins": []}}), "defaults.approvers.admins"),
        (doc({"escalation": {"room": "C0X1"}}), "defaults.escalation.room: unknown key"),
        (
            doc(None, {"match": "a", "colour": "red"}),
            "pipelines[0].colour: unknown key",
        ),
        (doc(None, {"match": "a"}, {"stage": "Prod"}), "pipelines[1]: missing match"),
        (doc(None, {"match": ""}), "pipelines[0].match: expected a non-empty glob"),
        (doc(None, {"match": 7}), "pipelines[0].match: expected a non-empty glob, like"),
        (doc(None, {"match": "a", "stage": None}), "pipelines[0].stage: expected a non-empty"),
        (doc(None, {"match": "a", "action": ["x"]}), "pipelines[0].action: expected a non-empty"),
        (doc(None, "prod-*"), "pipelines[0]: expected a rule (a mapping"),
        (doc(pipelines={"match": "a"}), "pipelines: expected a list of rules, got a mapping"),
        ({"defaults": ["C0DEPLOYS"]}, "defaults: expected a mapping, got a list"),
        (
            doc(None, {"match": "a"}, {"match": "b", "required_approvals": 0}),
            "pipelines[1].required_approvals: expected an integer >= 1, got 0",
        ),
        (doc({"required_approvals": True}), "defaults.required_approvals: expected an integer"),
        (doc({"required_approvals": "2"}), "defaults.required_approvals: expected an integer"),
        (doc({"required_approvals": 1.0}), "defaults.required_approvals: expected an integer"),
        (
            doc({"escalate_after_reminders": -1}),
            "defaults.escalate_after_reminders: expected an integer >= 0, got -1",
        ),
        (
            doc({"allow_self_approval": "false"}),
            "defaults.allow_self_approval: expected true or false, got 'false'",
        ),
        (doc({"require_reason_on_reject": 1}), "defaults.require_reason_on_reject: expected"),
        (doc({"ask_comment_on_approve": None}), "defaults.ask_comment_on_approve: expected"),
        (
            doc({"unknown_author": "deny"}),
            "defaults.unknown_author: expected 'allow' or 'block', got 'deny'",
        ),
        (
            doc({"on_deadline": "escalate"}),
            "defaults.on_deadline: expected 'reject' or 'approve', got 'escalate'",
        ),
        (
            doc({"reminder_every": "4x"}),
            "defaults.reminder_every: '4x' is not a duration (use 30s, 15m, 4h or 2d)",
        ),
        (doc({"deadline": "0h"}), "defaults.deadline: a duration must be more than 0, got '0h'"),
        (doc({"deadline_margin": 0}), "defaults.deadline_margin: a duration must be more than 0"),
        (doc({"channel": "#deploys"}), "defaults.channel: expected a Slack channel id"),
        (doc({"channel": "D0DIRECT"}), "defaults.channel: expected a Slack channel id"),
        (doc({"channel": "c0deploys"}), "defaults.channel: expected a Slack channel id"),
        (doc({"channel": "C0"}), "defaults.channel: expected a Slack channel id"),
        (doc({"channel": None}), "defaults.channel: expected a Slack channel id, like"),
        (doc({"status_channel": "U0ALICE"}), "defaults.status_channel: expected a Slack channel"),
        (
            doc({"approvers": {"users": ["U0ALICE", "alice"]}}),
            "defaults.approvers.users[1]: expected a Slack user id, like U0123ABCD or W0123ABCD;"
            " not the @name or email, got 'alice'",
        ),
        (
            doc({"approvers": {"users": "U0ALICE"}}),
            "defaults.approvers.users: expected a list of ids, got 'U0ALICE'",
        ),
        (
            doc({"approvers": {"groups": ["U0ALICE"]}}),
            "defaults.approvers.groups[0]: expected a Slack user-group id",
        ),
        (doc({"approvers": ["U0ALICE"]}), "defaults.approvers: expected a mapping with users"),
        (
            doc({"escalation": {"channel": "oncall"}}),
            "defaults.escalation.channel: expected a Slack channel id",
        ),
        (
            doc({"escalation": {"mention_groups": "S0ONCALL"}}),
            "defaults.escalation.mention_groups: expected a list of ids, got 'S0ONCALL'",
        ),
        (
            doc({"escalation": {"approvers": {"users": ["S0ONCALL"]}}}),
            "defaults.escalation.approvers.users[0]: expected a Slack user id",
        ),
        (doc({"escalation": "C0ONCALL"}), "defaults.escalation: expected a mapping"),
        (
            doc({"announce": "failed"}),
            "defaults.announce: expected a list of started, succeeded, failed, stopped, "
            "superseded, stage, action, got 'failed'",
        ),
        (
            doc({"announce": ["failed", "deployed"]}),
            "defaults.announce[1]: expected one of started, succeeded, failed, stopped, "
            "superseded, stage, action, got 'deployed'",
        ),
        (
            doc(people={"alice@example.com": "alice"}),
            "people['alice@example.com']: expected a Slack user id",
        ),
        (doc(people={"": "U0ALICE"}), "people: key '' must be a non-empty string"),
        (doc(people={1: "U0ALICE"}), "people: key 1 must be a non-empty string"),
        (doc(people=["U0ALICE"]), "people: expected a mapping, got a list"),
    ],
)
def test_validation_errors_name_the_key_path_and_value(document: Any, message: str) -> None:
    assert error_of(document).startswith(message)


def test_error_messages_do_not_dump_the_document() -> None:
    message = error_of(doc({"channel": "#" + "x" * 500}))
    assert len(message) < 200


def test_null_top_level_sections_mean_empty() -> None:
    policy = load_policy("defaults: {channel: C0D1, approvers: {users: [U0A1]}}\npeople:\n")
    assert policy.people == {}
    assert policy.pipelines == ()


def test_defaults_alone_need_a_channel() -> None:
    message = error_of({"defaults": {"approvers": {"users": ["U0ALICE"]}}})
    assert message.startswith("defaults: no channel")


def test_defaults_alone_need_approvers() -> None:
    message = error_of({"defaults": {"channel": "C0DEPLOYS"}})
    assert message == "defaults: no approvers (set approvers.users or approvers.groups)"


def test_every_rule_needs_approvers_after_merging() -> None:
    document = doc(
        None,
        {"match": "a"},
        {"match": "b"},
        {"match": "prod-*", "approvers": {"users": [], "groups": []}},
    )
    assert error_of(document) == (
        'pipelines[2] (match "prod-*"): no approvers (set approvers.users or approvers.groups)'
    )


def test_every_rule_needs_a_channel_after_merging() -> None:
    document = {
        "defaults": {"approvers": {"users": ["U0ALICE"]}},
        "pipelines": [
            {"match": "prod-*", "channel": "C0PROD"},
            {"match": "*"},
        ],
    }
    assert error_of(document).startswith('pipelines[1] (match "*"): no channel')
    # A "*" rule narrowed to a stage is no catch-all: defaults alone still need a channel.
    document["pipelines"][1] = {"match": "*", "stage": "Deploy", "channel": "C0DEPLOY"}
    assert error_of(document).startswith("defaults: no channel")


def test_a_catch_all_rule_makes_complete_defaults_unnecessary() -> None:
    policy = Policy.from_document(
        {
            "defaults": {"deadline": "8h"},
            "pipelines": [
                {"match": "prod-*", "channel": "C0PROD", "approvers": {"groups": ["S0SRE"]}},
                {"match": "*", "channel": "C0DEV", "approvers": {"users": ["U0ALICE"]}},
            ],
        }
    )
    assert policy.resolve("anything").channel == "C0DEV"
    assert policy.resolve("anything").deadline == 8 * 3600


def test_required_approvals_that_can_never_be_met_is_rejected() -> None:
    document = doc(None, {"match": "prod-*", "required_approvals": 3})
    assert error_of(document).startswith(
        'pipelines[0] (match "prod-*"): required_approvals is 3 but approvers lists only 2 user'
    )
    # The default's required_approvals against a rule's narrower approvers.
    narrowed = doc(
        {"required_approvals": 2}, {"match": "prod-*", "approvers": {"users": ["U0CAROL"]}}
    )
    assert error_of(narrowed).startswith('pipelines[0] (match "prod-*"): required_approvals is 2')
    # Repeating one user does not make two approvers.
    repeated = doc({"required_approvals": 2, "approvers": {"users": ["U0ALICE", "U0ALICE"]}})
    assert error_of(repeated).startswith("defaults: required_approvals is 2")


def test_required_approvals_above_the_user_count_is_fine_with_groups() -> None:
    policy = Policy.from_document(
        doc({"required_approvals": 3, "approvers": {"users": ["U0A1"], "groups": ["S0REL"]}})
    )
    assert policy.resolve("x").required_approvals == 3


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


# --------------------------------------------------------------------------- Rules


def test_may_decide_counts_escalation_approvers_only_once_escalated() -> None:
    rules = Rules(
        channel="C0DEPLOYS",
        approvers=Approvers(users=("U0ALICE",), groups=("S0RELEASE",)),
        escalation=Escalation(approvers=Approvers(users=("U0ONCALL",))),
    )
    assert rules.may_decide("U0ALICE")
    assert rules.may_decide("U0ALICE", escalated=True)
    assert not rules.may_decide("U0ONCALL")
    assert rules.may_decide("U0ONCALL", escalated=True)
    assert not rules.may_decide("U0MALLORY", escalated=True)
    assert not rules.may_decide("S0RELEASE")  # groups are resolved by the caller
    assert not Rules(channel="C0D1", approvers=Approvers()).may_decide("U0A1", escalated=True)


def test_to_dict_is_plain_json() -> None:
    rules = load_policy(DESIGN_EXAMPLE).resolve("prod-web")
    data = rules.to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["approvers"] == {"users": ["U0ALICE"], "groups": ["S0RELEASE"]}
    assert data["escalation"] == {
        "channel": "C0ONCALL",
        "mention_groups": ["S0ONCALL"],
        "approvers": {"users": [], "groups": ["S0ONCALL"]},
    }
    assert data["reminder_every"] == 14400
    assert data["deadline"] == 86400
    assert data["rule"] == 'pipelines[0] (match "prod-*")'
    assert Rules.from_dict(json.loads(json.dumps(data))) == rules


def test_from_dict_tolerates_items_from_older_and_newer_releases() -> None:
    old = {"channel": "C0D1", "approvers": {"users": ["U0A1"]}, "required_approvals": 1}
    assert Rules.from_dict(old) == Rules(channel="C0D1", approvers=Approvers(users=("U0A1",)))
    newer = {**Rules(channel="C0D1", approvers=Approvers()).to_dict(), "quorum": "x"}
    assert Rules.from_dict(newer) == Rules(channel="C0D1", approvers=Approvers())


ids = st.from_regex(r"[A-Z0-9]{2,8}", fullmatch=True)
users = st.lists(ids.map(lambda s: "U" + s), max_size=3).map(tuple)
groups = st.lists(ids.map(lambda s: "S" + s), max_size=3).map(tuple)
channels = ids.map(lambda s: "C" + s)
approvers = st.builds(Approvers, users=users, groups=groups)
seconds = st.integers(min_value=1, max_value=10**7)
instants = st.datetimes(
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5))])
)
rules_strategy = st.builds(
    Rules,
    channel=channels,
    approvers=approvers,
    required_approvals=st.integers(min_value=1, max_value=5),
    allow_self_approval=st.booleans(),
    unknown_author=st.sampled_from(["allow", "block"]),
    require_reason_on_reject=st.booleans(),
    ask_comment_on_approve=st.booleans(),
    reminder_every=seconds,
    escalate_after_reminders=st.integers(min_value=0, max_value=5),
    escalation=st.builds(
        Escalation,
        channel=st.none() | channels,
        mention_groups=groups,
        approvers=st.none() | approvers,
    ),
    deadline=seconds,
    deadline_margin=seconds,
    on_deadline=st.sampled_from(["reject", "approve"]),
    status_channel=st.none() | channels,
    announce=st.lists(
        st.sampled_from(["started", "succeeded", "failed", "stopped", "superseded", "stage"]),
        unique=True,
    ).map(tuple),
    rule=st.text(max_size=40),
    timezone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
    deploy_windows=st.lists(
        st.builds(
            DeployWindow,
            days=st.sets(st.sampled_from(WEEKDAYS), min_size=1).map(tuple),
            start=st.integers(0, 86399),
            end=st.integers(0, 86399),
        ),
        max_size=2,
    ).map(tuple),
    freezes=st.lists(
        st.builds(
            Freeze,
            reason=st.text(min_size=1, max_size=20),
            begins=instants,
            ends=instants,
            cron=st.none(),
            duration=st.just(0),
        )
        | st.builds(
            Freeze,
            reason=st.text(min_size=1),
            begins=st.none(),
            ends=st.none(),
            cron=st.just("0 17 * * FRI"),
            duration=seconds,
        ),
        max_size=2,
    ).map(tuple),
    outside_window=st.sampled_from(["hold", "reject"]),
    freeze_override=st.none()
    | st.builds(FreezeOverride, approvers=approvers, required_approvals=st.integers(1, 3)),
    allow_scheduling=st.booleans(),
)


@given(rules_strategy)
def test_rules_round_trip_through_json(rules: Rules) -> None:
    assert Rules.from_dict(json.loads(json.dumps(rules.to_dict()))) == rules


# --------------------------------------------------------------------------- policy_ids


def test_policy_ids_collects_every_user_and_group() -> None:
    policy = load_policy(
        textwrap.dedent(
            """\
            defaults:
              channel: C0DEPLOYS
              approvers: {users: [U0ALICE], groups: [S0RELEASE]}
              escalation:
                channel: C0ONCALL
                mention_groups: [S0ONCALL]
                approvers: {users: [U0PAGER], groups: [S0SRE]}
            people:
              dave@example.com: U0DAVE
              arn:aws:iam::123456789012:user/erin: W0ERIN
            pipelines:
              - match: "prod-*"
                approvers: {users: [U0CAROL], groups: [S0PROD]}
                escalation: {mention_groups: [S0PRODONCALL]}
                freeze_override: {approvers: {users: [U0FRANK], groups: [S0BREAKGLASS]}}
            """
        )
    )

    assert policy_ids(policy) == (
        {"U0ALICE", "U0PAGER", "U0DAVE", "W0ERIN", "U0CAROL", "U0FRANK"},
        {"S0RELEASE", "S0ONCALL", "S0SRE", "S0PROD", "S0PRODONCALL", "S0BREAKGLASS"},
    )


def test_policy_ids_of_the_deployed_policy() -> None:
    policy = load_policy_file(REPO / "config" / "policy.yaml")
    assert policy_ids(policy) == ({"U0ALICE", "U0BOB"}, set())
