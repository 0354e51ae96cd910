"""Sample events (tests/events/*.json), loaded by name.

The samples belong together: `sns_approval` is the request whose approval id the Slack
button in `block_actions_approve` carries, and `http_api_slack_interaction` is that click
as API Gateway delivers it, signed with `SIGNING_SECRET` at its own timestamp.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"

#: The CodePipeline approval token in `sns_approval` (and the first of `sns_two_records`).
SAMPLE_TOKEN = "5f2c8e1a-9b3d-4c7e-8a1f-2d6b9e0c4a71"
#: The approval id of that request: the button value in `block_actions_approve`.
SAMPLE_APPROVAL_ID = "226e6f2fadf438e657976df5984fcdc2"
#: The secret `http_api_slack_interaction` is signed with (the sandbox's default).
SIGNING_SECRET = "sandbox-signing-secret"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json, so a test may change it freely."""
    filename = name if name.endswith(".json") else f"{name}.json"
    with open(EVENTS / filename, encoding="utf-8") as handle:
        event: dict[str, Any] = json.load(handle)
    return event
