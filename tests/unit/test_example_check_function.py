"""The example check function (examples/check-function/app.py) keeps the contract the gate
enforces (DESIGN §8.3): its answers, run through the gate's own run_checks, are read as
PASSED or FAILED, never as junk. SSM is botocore's Stubber: no network."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from approval_gate.checks import ERROR, FAILED, FUNCTION, PASSED, CheckResult, _junk, run_checks
from approval_gate.rules import Checks
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

APP = Path(__file__).resolve().parents[2] / "examples" / "check-function" / "app.py"
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:approval-gate-hold-check"
NOW = datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
REQUEST = {
    "approval_id": "a1",
    "pipeline": "prod-web",
    "stage": "Deploy",
    "action": "Approve",
    "pipeline_execution_id": "e1",
    "revisions": [{"action": "Source", "revision_id": "abc"}],
}
HOLD = "/approval-gate/hold"
HOLD_ENV = "APPROVAL_GATE_HOLD_PARAMETER"
CONSOLE = "https://eu-west-1.console.aws.amazon.com/systems-manager/parameters?region=eu-west-1"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example's module, loaded from its path as Lambda would (its client at import)."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv(HOLD_ENV, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    spec = importlib.util.spec_from_file_location("example_check_function", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def through_the_gate(app: ModuleType) -> tuple[CheckResult, list[Any]]:
    """The gate's run_checks with an invoke that calls the example's handler, JSON both
    ways as Lambda's Invoke; the result and the answers the handler gave."""
    answers: list[Any] = []

    def invoke(arn: str, payload: dict[str, Any]) -> Any:
        assert arn == ARN
        answer = app.handler(json.loads(json.dumps(payload)), None)
        answers.append(answer)
        return json.loads(json.dumps(answer))

    (result,) = run_checks(
        Checks(functions=(ARN,)),
        cloudwatch=None,
        invoke=invoke,
        request=REQUEST,
        clock=lambda: NOW,
        language="en",
    )
    return result, answers


def assert_keeps_the_contract(result: CheckResult, answers: list[Any]) -> None:
    assert result.state in (PASSED, FAILED), result  # ERROR: the gate failed it closed
    (answer,) = answers
    assert _junk(answer, "en") is None, answer
    assert set(answer) <= {"passed", "summary", "url"}, answer
    assert (result.name, result.kind, result.at) == ("approval-gate-hold-check", FUNCTION, NOW)


def test_no_hold_set_passes(app: ModuleType) -> None:
    with Stubber(app.SSM) as ssm:
        ssm.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": HOLD})
        result, answers = through_the_gate(app)
        ssm.assert_no_pending_responses()
    assert_keeps_the_contract(result, answers)
    assert (result.passed, result.state) == (True, PASSED)
    assert result.summary == f"no deploy hold is set ({HOLD})"
    assert result.url is None


def test_a_hold_fails_with_its_reason_and_where_to_lift_it(app: ModuleType) -> None:
    reason = "Incident INC-4711:\n  database failover in progress"
    with Stubber(app.SSM) as ssm:
        ssm.add_response(
            "get_parameter",
            {"Parameter": {"Name": HOLD, "Type": "String", "Value": reason, "Version": 3}},
            expected_params={"Name": HOLD},
        )
        result, answers = through_the_gate(app)
        ssm.assert_no_pending_responses()
    assert_keeps_the_contract(result, answers)
    assert (result.passed, result.state) == (False, FAILED)
    assert result.summary == "deploys are on hold: Incident INC-4711: database failover in progress"
    assert result.url == CONSOLE


def test_a_long_reason_is_cut_to_one_short_line(app: ModuleType) -> None:
    with Stubber(app.SSM) as ssm:
        ssm.add_response(
            "get_parameter",
            {"Parameter": {"Name": HOLD, "Type": "String", "Value": "x " * 2000}},
            expected_params={"Name": HOLD},
        )
        result, answers = through_the_gate(app)
    assert_keeps_the_contract(result, answers)
    assert not result.passed
    assert len(answers[0]["summary"]) <= len("deploys are on hold: ") + app.MAX_REASON
    assert answers[0]["summary"].endswith("…")


def test_a_secure_string_hold_fails_without_showing_its_value(app: ModuleType) -> None:
    with Stubber(app.SSM) as ssm:
        ssm.add_response(
            "get_parameter",
            {"Parameter": {"Name": HOLD, "Type": "SecureString", "Value": "AQICAHh…cipher"}},
            expected_params={"Name": HOLD},
        )
        result, answers = through_the_gate(app)
    assert_keeps_the_contract(result, answers)
    assert (result.passed, result.summary) == (False, f"deploys are on hold ({HOLD})")


def test_the_parameter_named_in_the_environment_is_read(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOLD_ENV, "/prod/deploy-hold")
    with Stubber(app.SSM) as ssm:
        ssm.add_client_error(
            "get_parameter", "ParameterNotFound", expected_params={"Name": "/prod/deploy-hold"}
        )
        result, answers = through_the_gate(app)
        ssm.assert_no_pending_responses()
    assert_keeps_the_contract(result, answers)
    assert result.summary == "no deploy hold is set (/prod/deploy-hold)"


def test_a_hold_nobody_could_read_fails_with_an_answer_not_an_error(app: ModuleType) -> None:
    with Stubber(app.SSM) as ssm:
        ssm.add_client_error("get_parameter", "AccessDeniedException", http_status_code=400)
        result, answers = through_the_gate(app)
    assert_keeps_the_contract(result, answers)
    assert (result.passed, result.state) == (False, FAILED)
    assert result.summary == f"could not read the hold parameter {HOLD}: AccessDeniedException"


def test_ssm_not_answering_in_time_fails_with_an_answer(app: ModuleType) -> None:
    class SlowSsm:
        meta = app.SSM.meta

        def get_parameter(self, **params: Any) -> Any:
            raise ReadTimeoutError(endpoint_url="https://ssm.eu-west-1.amazonaws.com/")

    answer = app.hold_check(SlowSsm(), HOLD)
    assert _junk(answer, "en") is None
    assert answer == {
        "passed": False,
        "summary": f"could not read the hold parameter {HOLD}: ReadTimeoutError",
    }


def test_the_gate_reads_a_junk_answer_as_failing(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the assertions above guard against: were the example to answer
    {"passed": "yes"}, the gate would fail the check closed (ERROR), not pass it."""
    original = app.hold_check
    monkeypatch.setattr(
        app, "hold_check", lambda client, name: {**original(client, name), "passed": "yes"}
    )
    with Stubber(app.SSM) as ssm:
        ssm.add_client_error("get_parameter", "ParameterNotFound")
        result, answers = through_the_gate(app)
    assert _junk(answers[0], "en") == "passed is not true or false"
    assert (result.passed, result.state) == (False, ERROR)
