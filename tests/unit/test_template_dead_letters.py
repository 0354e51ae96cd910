"""Every EventBridge rule that sends its undeliverable events to the dead-letter queue may
do so: SQS refuses EventBridge's SendMessage unless the queue's policy names the rule, and
the event is then lost without a trace (issue 24: the alarm rule's were)."""

from __future__ import annotations

from typing import Any

from sandbox.template import load_template
from tests.unit.fakes import REPO

RESOURCES: dict[str, Any] = load_template(REPO / "template.yaml")["Resources"]


def _rules_with_dead_letters() -> set[str]:
    """The logical ids SAM gives the EventBridge rules of functions' events (the function's
    id and the event's name) whose events have a dead-letter queue."""
    found = set()
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event, spec in (resource["Properties"].get("Events") or {}).items():
            if spec["Type"] == "EventBridgeRule" and "DeadLetterConfig" in spec["Properties"]:
                assert spec["Properties"]["DeadLetterConfig"]["Arn"] == {
                    "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
                }
                found.add(name + event)
    return found


def _rules_the_queue_admits() -> set[str]:
    statements = RESOURCES["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    admitted = set()
    for statement in statements:
        if statement.get("Principal") != {"Service": "events.amazonaws.com"}:
            continue
        sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        for source in sources if isinstance(sources, list) else [sources]:
            rule, attribute = source["Fn::GetAtt"]
            assert attribute == "Arn"
            admitted.add(rule)
    return admitted


def test_the_dead_letter_queue_admits_every_rule_that_sends_it_dead_letters() -> None:
    rules = _rules_with_dead_letters()
    assert {
        "PipelineEventsFunctionPipelineStateChange",
        "AlarmEventsFunctionAlarmStateChange",
    } <= rules
    assert _rules_the_queue_admits() == rules
