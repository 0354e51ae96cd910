"""An independent check of Slack's documented Block Kit limits, for tests.

slack_sdk's `Block.parse_all` builds objects without validating lengths, and the gate's
own builders cut text to the limits they know; this module knows the limits again, from
Slack's reference (Block Kit blocks, block elements, composition objects, modals,
chat.postMessage), and shares no code or constant with the product. Each function
answers the list of broken limits, as readable strings: empty means within limits.
"""

from __future__ import annotations

from typing import Any

#: chat.postMessage: `text` is truncated past 40,000 characters; at most 50 blocks.
MESSAGE_TEXT = 40_000
MESSAGE_BLOCKS = 50
#: A modal: at most 100 blocks; title, submit and close 24 characters each.
VIEW_BLOCKS = 100
VIEW_TITLE = 24
VIEW_BUTTON = 24
VIEW_PRIVATE_METADATA = 3000
VIEW_CALLBACK_ID = 255
#: Any text object; section fields are shorter, headers shorter still.
TEXT = 3000
SECTION_FIELDS = 10
SECTION_FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
INPUT_LABEL = 2000
BLOCK_ID = 255
ACTION_ID = 255
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
PLAIN_TEXT_INPUT_MAX = 3000
#: A static select: 1 to 100 options; an option's text 75 characters, its value 150.
SELECT_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
TEXT_TYPES = ("plain_text", "mrkdwn")


def message_violations(text: str | None, blocks: list[dict[str, Any]] | None) -> list[str]:
    """What a chat.postMessage / chat.update with this `text` and `blocks` breaks."""
    broken: list[str] = []
    if text is not None and len(text) > MESSAGE_TEXT:
        broken.append(f"message text has {len(text)} characters > {MESSAGE_TEXT}")
    if blocks is not None:
        if len(blocks) > MESSAGE_BLOCKS:
            broken.append(f"message has {len(blocks)} blocks > {MESSAGE_BLOCKS}")
        broken += blocks_violations(blocks)
    return broken


def view_violations(view: dict[str, Any]) -> list[str]:
    """What a views.open with this modal breaks."""
    broken: list[str] = []
    if view.get("type") != "modal":
        broken.append(f"view type {view.get('type')!r} is not a modal")
    for name, limit in (("title", VIEW_TITLE), ("submit", VIEW_BUTTON), ("close", VIEW_BUTTON)):
        if name in view:
            broken += _text_object(view[name], f"view {name}", limit, plain_only=True)
    if "title" not in view:
        broken.append("a modal needs a title")
    if len(view.get("private_metadata") or "") > VIEW_PRIVATE_METADATA:
        broken.append(f"private_metadata > {VIEW_PRIVATE_METADATA}")
    if len(view.get("callback_id") or "") > VIEW_CALLBACK_ID:
        broken.append(f"callback_id > {VIEW_CALLBACK_ID}")
    blocks = view.get("blocks") or []
    if len(blocks) > VIEW_BLOCKS:
        broken.append(f"modal has {len(blocks)} blocks > {VIEW_BLOCKS}")
    has_input = any(b.get("type") == "input" for b in blocks)
    if has_input and "submit" not in view:
        broken.append("a modal with an input needs a submit button")
    return broken + blocks_violations(blocks)


def blocks_violations(blocks: list[dict[str, Any]]) -> list[str]:
    broken: list[str] = []
    for n, block in enumerate(blocks):
        where = f"block {n} ({block.get('type')})"
        block_id = block.get("block_id")
        if block_id is not None and len(block_id) > BLOCK_ID:
            broken.append(f"{where}: block_id > {BLOCK_ID}")
        broken += _block(block, where)
    return broken


def _block(block: dict[str, Any], where: str) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return _text_object(block.get("text"), where, HEADER_TEXT, plain_only=True)
    if kind == "section":
        broken: list[str] = []
        fields = block.get("fields") or []
        if "text" not in block and not fields:
            broken.append(f"{where}: a section needs text or fields")
        if "text" in block:
            broken += _text_object(block["text"], where, TEXT)
        if len(fields) > SECTION_FIELDS:
            broken.append(f"{where}: {len(fields)} fields > {SECTION_FIELDS}")
        for field in fields:
            broken += _text_object(field, f"{where} field", SECTION_FIELD_TEXT)
        if "accessory" in block:
            broken += _element(block["accessory"], f"{where} accessory")
        return broken
    if kind == "context":
        elements = block.get("elements") or []
        broken = [] if elements else [f"{where}: a context needs elements"]
        if len(elements) > CONTEXT_ELEMENTS:
            broken.append(f"{where}: {len(elements)} elements > {CONTEXT_ELEMENTS}")
        for element in elements:
            if element.get("type") in TEXT_TYPES:
                broken += _text_object(element, f"{where} element", TEXT)
        return broken
    if kind == "actions":
        elements = block.get("elements") or []
        broken = [] if elements else [f"{where}: an actions block needs elements"]
        if len(elements) > ACTIONS_ELEMENTS:
            broken.append(f"{where}: {len(elements)} elements > {ACTIONS_ELEMENTS}")
        for element in elements:
            broken += _element(element, f"{where} element")
        return broken
    if kind == "input":
        broken = _text_object(block.get("label"), f"{where} label", INPUT_LABEL, plain_only=True)
        return broken + _element(block.get("element") or {}, f"{where} element")
    if kind == "divider":
        return []
    return [f"{where}: a block type this oracle does not know"]


def _element(element: dict[str, Any], where: str) -> list[str]:
    broken: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None and len(action_id) > ACTION_ID:
        broken.append(f"{where}: action_id > {ACTION_ID}")
    kind = element.get("type")
    if kind == "button":
        broken += _text_object(element.get("text"), f"{where} text", BUTTON_TEXT, plain_only=True)
        if len(element.get("value") or "") > BUTTON_VALUE:
            broken.append(f"{where}: value > {BUTTON_VALUE}")
        if len(element.get("url") or "") > BUTTON_URL:
            broken.append(f"{where}: url > {BUTTON_URL}")
        if element.get("style") not in (None, "primary", "danger"):
            broken.append(f"{where}: style {element['style']!r}")
    elif kind == "plain_text_input":
        longest = element.get("max_length")
        if longest is not None and not 1 <= longest <= PLAIN_TEXT_INPUT_MAX:
            broken.append(f"{where}: max_length {longest} outside 1..{PLAIN_TEXT_INPUT_MAX}")
    elif kind == "static_select":
        options = element.get("options") or []
        if not 1 <= len(options) <= SELECT_OPTIONS:
            broken.append(f"{where}: {len(options)} options, not 1..{SELECT_OPTIONS}")
        for option in options:
            broken += _text_object(
                option.get("text"), f"{where} option", OPTION_TEXT, plain_only=True
            )
            if not 1 <= len(option.get("value") or "") <= OPTION_VALUE:
                broken.append(f"{where}: option value not 1..{OPTION_VALUE} characters")
    else:
        broken.append(f"{where}: an element type this oracle does not know ({kind})")
    if "confirm" in element:
        broken += _confirm(element["confirm"], f"{where} confirm")
    return broken


def _confirm(confirm: dict[str, Any], where: str) -> list[str]:
    return (
        _text_object(confirm.get("title"), f"{where} title", CONFIRM_TITLE, plain_only=True)
        + _text_object(confirm.get("text"), f"{where} text", CONFIRM_TEXT)
        + _text_object(confirm.get("confirm"), f"{where} confirm", CONFIRM_BUTTON, plain_only=True)
        + _text_object(confirm.get("deny"), f"{where} deny", CONFIRM_BUTTON, plain_only=True)
    )


def _text_object(value: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(value, dict) or value.get("type") not in TEXT_TYPES:
        return [f"{where}: not a text object: {value!r:.80}"]
    if plain_only and value["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    text = value.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}: empty text"]
    if len(text) > limit:
        return [f"{where}: {len(text)} characters > {limit}"]
    return []
