"""Approver inputs and the confirm step on Approve (DESIGN §8.4, issue 22), without Slack's
models: what a submitted modal gave, whether the policy takes it, and how the values read
in CodePipeline's summary and the closed request. approval_gate.input_messages builds the
Block Kit side (the confirm dialog, the modal's input blocks).

The gate checks every value itself, whatever the modal's client did: a required input
left empty, a text that does not match its ``pattern`` (the whole text), or a choice the
policy does not offer is refused, and only the policy's inputs are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from approval_gate.i18n import tr
from approval_gate.records import Approval
from approval_gate.rules import ApproverInput, Rules
from approval_gate.text import escape_mrkdwn

#: The longest text an approver may give for one input: the modal's text input takes no
#: more, and the values of every approver share the 512 characters of the summary.
MAX_INPUT_VALUE = 200
#: A short commit id: what the request's change line starts with ("1e3c820 Update ...").
_COMMIT = re.compile(r"[0-9a-f]{7,40}")
#: Slack's limit on a confirm dialog's text.
MAX_CONFIRM_TEXT = 300


def inputs_invalid_text(language: str) -> str:
    """Said when a submitted modal's inputs cannot be taken (each input says why)."""
    return tr(language, "Some of the values given cannot be taken: see the form.")


def _problem(spec: ApproverInput, value: str | None, language: str) -> str | None:
    """Why `value` cannot be taken for `spec` (shown under its input, at most 150
    characters), or None."""
    if not value:
        if not spec.required:
            return None
        # Translators: under a modal's input, at most 150 characters; %(label)s: the
        # input's label, as the policy names it.
        return tr(language, "%(label)s is required.", label=spec.label)
    if len(value) > MAX_INPUT_VALUE:
        # Translators: under a modal's text input: the most characters it takes, and how
        # many the approver gave.
        return tr(
            language,
            "At most %(limit)d characters, got %(count)d.",
            limit=MAX_INPUT_VALUE,
            count=len(value),
        )
    if spec.options and value not in spec.options:
        # Translators: under a modal's select; %(options)s: the choices, comma-separated.
        return tr(language, "Choose one of: %(options)s.", options=", ".join(spec.options))
    if spec.pattern and re.fullmatch(spec.pattern, value) is None:
        # Translators: under a modal's text input; %(pattern)s: the regular expression the
        # policy asks the text to match; %(value)s: the text given.
        return tr(
            language,
            "Must match %(pattern)s (“%(value)s” does not).",
            pattern=spec.pattern,
            value=value,
        )
    return None


def checked_inputs(rules: Rules, given: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the values to record, errors by block id): only the policy's inputs, in its order,
    text trimmed; ids the policy does not have are ignored."""
    accepted: dict[str, str] = {}
    errors: dict[str, str] = {}
    for spec in rules.inputs:
        value = (given.get(spec.id) or "").strip() or None
        problem = _problem(spec, value, rules.language)
        if problem is not None:
            errors[spec.id] = problem
        elif value is not None:
            accepted[spec.id] = value
    return accepted, errors


def _shown(value: str) -> str:
    """A value in ``id=value``: quoted when spaces or separators would blur it."""
    if value and not any(ch.isspace() or ch in ';="' for ch in value):
        return value
    return '"' + value.replace('"', "'") + '"'


def inputs_text(inputs: Mapping[str, str]) -> str:
    """``ticket=CHG123456 rollout=50%``: one approver's inputs, "" without any."""
    return " ".join(f"{key}={_shown(value)}" for key, value in inputs.items())


def summary_inputs(approval: Approval) -> str:
    """The approving votes' inputs for CodePipeline's summary: one approver's as
    ``ticket=CHG1 rollout=50%``; several approvers' each after their name
    (``alice: ticket=CHG1; bob: ticket=CHG2``); "" when none gave any."""
    approving = [vote for vote in approval.votes if vote.vote == "approve"]
    if len(approving) == 1:
        return inputs_text(approving[0].inputs)
    return "; ".join(
        f"{vote.name}: {inputs_text(vote.inputs)}" for vote in approving if vote.inputs
    )


def inputs_lines(approval: Approval) -> list[str]:
    """Per approver, what they gave (Slack mrkdwn, user text escaped), for the closed
    request: ``<@U0ALICE>: Change ticket *CHG123456* · Rollout *50%*``."""
    labels = {spec.id: spec.label for spec in approval.rules.inputs}
    lines = []
    for vote in approval.votes:
        if vote.vote != "approve" or not vote.inputs:
            continue
        given = " · ".join(
            f"{_escape(labels.get(key, key))} `{_escape(value)}`"
            for key, value in vote.inputs.items()
        )
        lines.append(f"<@{vote.user_id}>: {given}")
    return lines


def _escape(text: str) -> str:
    """User text inside a `code` span: escaped, and no backtick to end the span early."""
    return escape_mrkdwn(text).replace("`", "'")


def short_revision(change: str | None) -> str | None:
    """The short commit id the request's change line starts with, if it starts with one."""
    if not change:
        return None
    first = change.split(maxsplit=1)[0] if change.split() else ""
    return first if _COMMIT.fullmatch(first) else None


def confirm_text(approval: Approval) -> str:
    """ "Deploy web-app a1b2c3d to Prod?": the pipeline (cut when long), the run's first
    source revision (or the commit the change names), and the stage; within Slack's 300
    characters."""
    revision = (
        approval.revisions[0].short_id if approval.revisions else short_revision(approval.change)
    )
    stage = approval.stage[:100]
    language = approval.rules.language

    def question(pipeline: str) -> str:
        if revision:
            # Translators: Slack's confirm dialog on Approve, at most 300 characters with
            # the names; %(revision)s: the short commit id; %(stage)s: the stage's name.
            return tr(
                language,
                "Deploy %(pipeline)s %(revision)s to %(stage)s?",
                pipeline=pipeline,
                revision=revision,
                stage=stage,
            )
        # Translators: Slack's confirm dialog on Approve, at most 300 characters.
        return tr(language, "Deploy %(pipeline)s to %(stage)s?", pipeline=pipeline, stage=stage)

    room = MAX_CONFIRM_TEXT - len(question(""))
    pipeline = approval.pipeline
    if len(pipeline) > room:
        pipeline = pipeline[: room - 1] + "…"
    return question(pipeline)
