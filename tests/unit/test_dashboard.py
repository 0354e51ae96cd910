"""The CloudWatch dashboard of template.yaml: valid JSON once CloudFormation substitutes it,
a widget for every decision metric the functions emit (with the dimensions they emit them
under), and every alarm the template defines."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from approval_gate.decision_metrics import at_close, at_reminder, emf_lines
from approval_gate.runtime import METRICS_NAMESPACE
from approval_gate.settings import SERVICE
from approval_gate.store import APPROVED, EXPIRED, Hold

from sandbox.template import load_template
from tests.unit.fakes import FIXED, REPO, make_approval

TEMPLATE = load_template(REPO / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
DASHBOARDS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Dashboard"}
ALARMS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm")
PSEUDO = {"AWS::Region": "eu-west-1", "AWS::StackName": "gate", "AWS::AccountId": "123456789012"}
SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"', '(\w+)', (\d+)\)")


def _substituted(template: str) -> str:
    """The text CloudFormation makes of a Fn::Sub string: every ${...} must name a
    pseudo parameter, a resource, or a resource's attribute."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in PSEUDO:
            return PSEUDO[name]
        resource, _, attribute = name.partition(".")
        assert resource in RESOURCES, f"${{{name}}} names no resource"
        return f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{resource}" if attribute else name

    return re.sub(r"\$\{([^}!]+)\}", value, template)


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    (dashboard,) = DASHBOARDS.values()
    return json.loads(_substituted(dashboard["Properties"]["DashboardBody"]["Fn::Sub"]))


def _emitted_dimensions() -> dict[str, set[str]]:
    """Each metric the functions emit and its dimension names, from the EMF they print."""
    decided = make_approval(status=APPROVED, decided_at=FIXED + timedelta(minutes=1))
    held = make_approval(
        status=APPROVED,
        decided_at=FIXED + timedelta(minutes=1),
        held=Hold(until=FIXED + timedelta(hours=1), why="window"),
        reported_at=FIXED + timedelta(hours=1),
    )
    expired = make_approval(status=EXPIRED, decided_at=FIXED + timedelta(hours=1))
    measurements = [
        *at_close(decided),
        *at_close(held),
        *at_close(expired),
        *at_reminder(make_approval(), {"reminded": True, "escalated": True}),
    ]
    found: dict[str, set[str]] = {}
    for line in emf_lines(measurements, namespace=METRICS_NAMESPACE, service=SERVICE):
        (directive,) = json.loads(line)["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]:
            found[metric["Name"]] = set(directive["Dimensions"][0])
    return found


def test_the_dashboard_is_named_after_the_stack_and_its_url_is_an_output():
    (name,) = DASHBOARDS
    assert "${AWS::StackName}" in RESOURCES[name]["Properties"]["DashboardName"]["Fn::Sub"]
    url = TEMPLATE["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?")
    assert url.endswith(f"#dashboards:name=${{{name}}}")  # Ref of a dashboard: its name


def test_every_decision_metric_has_a_widget_with_the_dimensions_it_is_emitted_under(body):
    emitted = _emitted_dimensions()
    assert set(emitted) == {
        "Decisions",
        "TimeToDecision",
        "Reminders",
        "Escalations",
        "Expired",
        "HeldSeconds",
    }
    searched: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    match = SEARCH.fullmatch(item["expression"])
                    assert match, item["expression"]
                    namespace, *dimensions = match.group(1).split(",")
                    assert namespace == "ApprovalGate"
                    searched[match.group(2)] = set(dimensions)
    # A SEARCH whose schema differs from the emitted dimensions finds nothing.
    assert searched == emitted


def test_time_to_decision_shows_the_median_and_the_90th_percentile(body):
    stats = {
        SEARCH.fullmatch(item["expression"]).group(3)
        for widget in body["widgets"]
        for row in widget["properties"].get("metrics", [])
        for item in row
        if "TimeToDecision" in item.get("expression", "")
    }
    assert stats == {"p50", "p90"}


def test_the_dashboard_shows_every_alarm_the_template_defines(body):
    shown = [
        arn.rsplit(":", 1)[1]
        for widget in body["widgets"]
        if widget["type"] == "alarm"
        for arn in widget["properties"]["alarms"]
    ]
    assert ALARMS  # the template has alarms to show
    assert sorted(shown) == ALARMS
