"""The Block Kit side of confirm and approver inputs (DESIGN §8.4, issue 22): Slack's
confirm dialog on the Approve button, the input blocks of the modals that ask the policy's
inputs (approval_gate.messages.decision_view: the Approve modal, itself the confirmation,
so the button then has no dialog; hold_messages: Approve for later), and what each
approver gave, on the closed request. approval_gate.approver_inputs checks the values.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ConfirmObject,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from approval_gate.approver_inputs import MAX_INPUT_VALUE, confirm_text, inputs_lines
from approval_gate.i18n import tr, trp
from approval_gate.records import Approval
from approval_gate.rules import ApproverInput, Rules
from approval_gate.text import cut_at_word


def approve_confirm(approval: Approval) -> ConfirmObject | None:
    """Slack's "Deploy?" dialog for the Approve button; None when the policy turns it off,
    or when Approve opens the inputs modal (the modal confirms)."""
    rules = approval.rules
    if not rules.confirm_approve or rules.inputs:
        return None
    language = rules.language
    return ConfirmObject(
        # Translators: the title of Slack's confirm dialog on Approve (at most 100
        # characters; keep it short).
        title=PlainTextObject(text=tr(language, "Deploy?")),
        text=PlainTextObject(text=confirm_text(approval)),
        # Translators: the confirm dialog's button that approves (at most 30 characters).
        confirm=PlainTextObject(text=trp(language, "button", "Approve")),
        # Translators: the confirm dialog's button that closes it (at most 30 characters).
        deny=PlainTextObject(text=trp(language, "button", "Cancel")),
    )


def input_block(spec: ApproverInput, language: str) -> InputBlock:
    """One policy input: a text input, or a select of its options; block and action id
    are the input's id."""
    element: PlainTextInputElement | StaticSelectElement
    if spec.options:
        element = StaticSelectElement(
            action_id=spec.id,
            # Translators: the placeholder of a select in a modal (at most 150 characters).
            placeholder=PlainTextObject(text=tr(language, "Choose")),
            options=[Option(value=option, text=option) for option in spec.options],
        )
    else:
        element = PlainTextInputElement(action_id=spec.id, max_length=MAX_INPUT_VALUE)
    return InputBlock(
        block_id=spec.id,
        label=PlainTextObject(text=spec.label),
        optional=not spec.required,
        element=element,
    )


def input_blocks(rules: Rules) -> list[InputBlock]:
    return [input_block(spec, rules.language) for spec in rules.inputs]


def inputs_section(approval: Approval) -> SectionBlock | None:
    """The closed request's lines of what each approver gave; None when nobody gave any."""
    lines = inputs_lines(approval)
    if not lines:
        return None
    return SectionBlock(text=MarkdownTextObject(text=cut_at_word("\n".join(lines), 3000)))
