"""Health checks in the policy (DESIGN §8.3, issue 21): the ``checks`` key, its load
errors, the merge, the round trip through an approval's stored rules, and policy_checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from approval_gate.policy import Policy, PolicyError, Rules, load_policy, policy_checks
from approval_gate.rules import Checks

from tests.unit.policy_docs import doc, error_of

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:lambda:us-east-1:123456789012:function:change-ticket-check"

#: DESIGN §8.3's example, with the defaults it needs.
DESIGN_EXAMPLE = f"""\
defaults:
  channel: C0DEPLOYS
  approvers: {{users: [U0ALICE]}}
pipelines:
  - match: "prod-*"
    checks:
      alarms: ["prod-api-*", prod-db-cpu]
      alarm_states: [ALARM]
      functions: ["{ARN}"]
      on_failing: hold
"""


def test_the_design_example_resolves_to_checks() -> None:
    policy = load_policy(DESIGN_EXAMPLE)
    assert policy.resolve("prod-web").checks == Checks(
        alarms=("prod-api-*", "prod-db-cpu"),
        alarm_states=("ALARM",),
        functions=(ARN,),
        on_failing="hold",
    )
    assert policy.resolve("dev-web").checks is None


def test_built_in_defaults_fill_alarm_states_and_on_failing() -> None:
    checks = Policy.from_document(doc({"checks": {"alarms": ["a"]}})).resolve("p").checks
    assert checks == Checks(alarms=("a",), alarm_states=("ALARM",), functions=(), on_failing="hold")


def test_a_rule_replaces_the_defaults_checks_whole() -> None:
    defaults = {"checks": {"alarms": ["shared"], "alarm_states": ["ALARM", "INSUFFICIENT_DATA"]}}
    rules = (
        {"match": "prod-*", "checks": {"functions": [ARN], "on_failing": "reject"}},
        {"match": "sandbox-*", "checks": None},
    )
    policy = Policy.from_document(doc(defaults, *rules))
    assert policy.resolve("prod-web").checks == Checks(functions=(ARN,), on_failing="reject")
    assert policy.resolve("sandbox-web").checks is None
    assert policy.resolve("dev-web").checks == Checks(
        alarms=("shared",), alarm_states=("ALARM", "INSUFFICIENT_DATA")
    )


GOOD_ARNS = [
    ARN,
    "arn:aws:lambda:eu-west-3:000000000000:function:a",
    "arn:aws:lambda:us-east-1:123456789012:function:check:live",
    "arn:aws:lambda:us-east-1:123456789012:function:check:$LATEST",
    "arn:aws:lambda:us-east-1:123456789012:function:check:7",
    "arn:aws-cn:lambda:cn-north-1:123456789012:function:check",
    "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:Check_2",
]


@pytest.mark.parametrize("arn", GOOD_ARNS)
def test_function_arns_accepted(arn: str) -> None:
    checks = Policy.from_document(doc({"checks": {"functions": [arn]}})).resolve("p").checks
    assert checks is not None and checks.functions == (arn,)


@pytest.mark.parametrize(
    "alarm", ["prod-db-cpu", "prod-api-*", "a", "x" * 255, "x" * 255 + "*", "Prod API (5xx) é"]
)
def test_alarm_names_accepted(alarm: str) -> None:
    checks = Policy.from_document(doc({"checks": {"alarms": [alarm]}})).resolve("p").checks
    assert checks is not None and checks.alarms == (alarm,)


HINT_ARN = "a Lambda function ARN, like arn:aws:lambda:us-east-1:123456789012:function:change-check"
HINT_ALARM = 'a CloudWatch alarm name, or a prefix ending in *, like "prod-api-*"'


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ("prod-api", "defaults.checks: expected a mapping with alarms, alarm_states, "
         "functions, on_failing, got 'prod-api'"),
        ({}, "defaults.checks: lists no alarms and no functions; list at least one, or "
         "leave checks out"),
        ({"alarms": [], "functions": []}, "defaults.checks: lists no alarms and no functions; "
         "list at least one, or leave checks out"),
        ({"alarms": ["a"], "alarm": ["b"]}, "defaults.checks.alarm: unknown key (did you mean "
         "'alarms'?)"),
        ({"alarms": "prod-db-cpu"}, "defaults.checks.alarms: expected a list of CloudWatch "
         "alarm names, got 'prod-db-cpu'"),
        ({"alarms": [""]}, f"defaults.checks.alarms[0]: expected {HINT_ALARM}, got ''"),
        ({"alarms": ["a", 5]}, f"defaults.checks.alarms[1]: expected {HINT_ALARM}, got 5"),
        ({"alarms": ["*"]}, "defaults.checks.alarms[0]: '*' alone would match every alarm "
         'in the account; name the alarms, or a prefix like "prod-api-*"'),
        ({"alarms": ["prod-*-5xx"]}, "defaults.checks.alarms[0]: * may only end a name "
         "(making it a prefix), got 'prod-*-5xx'"),
        ({"alarms": ["prod-**"]}, "defaults.checks.alarms[0]: * may only end a name "
         "(making it a prefix), got 'prod-**'"),
        ({"alarms": ["prod\napi"]}, "defaults.checks.alarms[0]: an alarm name may not "
         "contain control characters, got 'prod\\napi'"),
        ({"alarms": ["x" * 256]}, "defaults.checks.alarms[0]: an alarm name is at most 255 "
         "characters, got 256"),
        ({"alarms": ["x" * 256 + "*"]}, "defaults.checks.alarms[0]: an alarm name is at most "
         "255 characters, got 256"),
        ({"alarms": [f"a{i}" for i in range(101)]}, "defaults.checks.alarms: at most 100 "
         "CloudWatch alarm names, got 101"),
        ({"alarms": ["a", "b", "a"]}, "defaults.checks.alarms[2]: 'a' is already "
         "defaults.checks.alarms[0]"),
        ({"alarms": ["a"], "alarm_states": []}, "defaults.checks.alarm_states: the list is "
         "empty, so no alarm could ever block; list the states that block (default [ALARM])"),
        ({"alarms": ["a"], "alarm_states": ["ALARM", "alarm"]}, "defaults.checks."
         "alarm_states[1]: expected one of OK, ALARM, INSUFFICIENT_DATA, got 'alarm'"),
        ({"alarms": ["a"], "alarm_states": "ALARM"}, "defaults.checks.alarm_states: expected "
         "a list of OK, ALARM, INSUFFICIENT_DATA, got 'ALARM'"),
        ({"functions": ARN}, "defaults.checks.functions: expected a list of Lambda function "
         f"ARNs, got {ARN!r}"),
        ({"functions": ["change-ticket-check"]}, f"defaults.checks.functions[0]: expected "
         f"{HINT_ARN}, got 'change-ticket-check'"),
        ({"functions": [ARN.replace("123456789012", "1234")]}, "defaults.checks.functions[0]: "
         f"expected {HINT_ARN}, got 'arn:aws:lambda:us-east-1:1234:function:change-ticket-check'"),
        ({"functions": [ARN.replace(":lambda:", ":s3:")]}, "defaults.checks.functions[0]: "
         f"expected {HINT_ARN}, got {ARN.replace(':lambda:', ':s3:')!r}"),
        ({"functions": [ARN + ":a:b"]}, f"defaults.checks.functions[0]: expected {HINT_ARN}, "
         f"got '{ARN}:a:b'"),
        ({"functions": [ARN, ARN]}, f"defaults.checks.functions[1]: {ARN!r} is "
         "already defaults.checks.functions[0]"),
        ({"functions": [ARN[:-1] + str(i) for i in range(21)]}, "defaults.checks.functions: "
         "at most 20 Lambda function ARNs, got 21"),
        ({"alarms": ["a"], "on_failing": "approve"}, "defaults.checks.on_failing: expected "
         "'hold' or 'reject', got 'approve'"),
        ({"alarms": ["a"], "on_failing": True}, "defaults.checks.on_failing: expected 'hold' "
         "or 'reject', got True"),
    ],
)  # fmt: skip
def test_bad_checks_are_refused_naming_the_key_and_value(checks: Any, message: str) -> None:
    assert error_of(doc({"checks": checks})) == message


def test_a_rules_error_names_the_rule() -> None:
    rule = {"match": "prod-*", "checks": {"functions": [ARN], "on_failing": "later"}}
    assert error_of(doc({}, rule)) == (
        "pipelines[0].checks.on_failing: expected 'hold' or 'reject', got 'later'"
    )


def test_the_yaml_loader_names_the_path_too() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(DESIGN_EXAMPLE.replace('"prod-api-*"', '"*"'))
    assert str(caught.value).startswith("pipelines[0].checks.alarms[0]: '*' alone")


def test_rules_round_trip_through_the_stored_item() -> None:
    rules = load_policy(DESIGN_EXAMPLE).resolve("prod-web")
    stored = json.loads(json.dumps(rules.to_dict()))
    assert stored["checks"] == {
        "alarms": ["prod-api-*", "prod-db-cpu"],
        "alarm_states": ["ALARM"],
        "functions": [ARN],
        "on_failing": "hold",
    }
    assert Rules.from_dict(stored) == rules
    without = load_policy(DESIGN_EXAMPLE).resolve("dev-web")
    stored = json.loads(json.dumps(without.to_dict()))
    assert stored["checks"] is None
    assert Rules.from_dict(stored) == without


def test_an_item_stored_before_checks_has_none() -> None:
    stored = load_policy(DESIGN_EXAMPLE).resolve("prod-web").to_dict()
    del stored["checks"]
    assert Rules.from_dict(stored).checks is None


def test_policy_checks_lists_every_alarm_and_function_any_rule_names() -> None:
    other = ARN.replace("change-ticket-check", "smoke")
    policy = Policy.from_document(
        doc(
            {"checks": {"alarms": ["shared", "prod-api-*"]}},
            {"match": "prod-*", "checks": {"alarms": ["prod-api-*", "db"], "functions": [ARN]}},
            {"match": "qa-*", "stage": "Gate", "checks": {"functions": [other, ARN]}},
            {"match": "dev-*", "checks": None},
        )
    )
    assert policy_checks(policy) == (("shared", "prod-api-*", "db"), (ARN, other))
    assert policy_checks(load_policy(DESIGN_EXAMPLE.split("    checks:")[0])) == ((), ())


def test_the_shipped_policy_still_passes_tools_check_policy() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.check_policy", "config/policy.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: config/policy.yaml")


def test_a_policy_with_checks_passes_tools_check_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tools.check_policy", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    path.write_text(DESIGN_EXAMPLE.replace("on_failing: hold", "on_failing: wait"), "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tools.check_policy", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"{path}: pipelines[0].checks.on_failing: expected 'hold' or 'reject', got 'wait'"
    )


def test_policy_checks_module_is_imported_only_for_a_policy_with_checks() -> None:
    code = (
        "import sys; from approval_gate.policy import load_policy; load_policy(sys.argv[1]); "
        "assert 'approval_gate.policy_checks' not in sys.modules; load_policy(sys.argv[2]); "
        "assert 'approval_gate.policy_checks' in sys.modules"
    )
    without = DESIGN_EXAMPLE.split("    checks:")[0]
    subprocess.run(
        [sys.executable, "-c", code, without, DESIGN_EXAMPLE],
        cwd=ROOT / "functions",
        check=True,
        timeout=60,
    )
