"""Which open approvals list which CloudWatch alarms (DESIGN §8.3, issue 21): the index the
alarm-event function reads to find the requests an alarm's state change concerns.

One item per alarm entry of a policy (a name, or a prefix ``prod-api-*``), in the approvals
table under ``watch#alarm#<entry>``, holding the ids of the open approvals that list it (a
string set). Asking adds the approval (idempotent, at every ask); closing removes it; an
event that finds a closed approval removes it too, so a lost removal costs one read.

An alarm named N is found under N itself and under every prefix entry it starts with:
``watch#alarm#N`` and ``watch#alarm#<N[:i]>*`` for each i, read in one BatchGetItem per
100 keys (an alarm name has at most 255 characters: at most three calls, usually one),
whatever the policy in force says now: an approval asked under an older policy is found.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

WATCH_PREFIX = "watch#alarm#"
#: The most keys one BatchGetItem takes (DynamoDB's limit).
KEYS_PER_BATCH = 100
#: Unprocessed keys (throttling) are asked for again this many times, backing off.
BATCH_ATTEMPTS = 5
#: A watch item outlives its last approval by this much (DynamoDB TTL), so an entry a
#: policy no longer names does not stay forever; every ask renews it.
WATCH_RETENTION = timedelta(days=35)


def watch_key(entry: str) -> dict[str, Any]:
    return {"approval_id": {"S": WATCH_PREFIX + entry}}


def keys_for_alarm(name: str) -> list[str]:
    """The entries that may list the alarm `name`: the name, and each prefix entry."""
    return [name, *(name[:end] + "*" for end in range(1, len(name) + 1))]


def watch(client: Any, table: str, approval_id: str, entries: Iterable[str], now: datetime) -> None:
    """Add the approval to the watch item of each alarm entry it lists."""
    for entry in sorted(set(entries)):
        client.update_item(
            TableName=table,
            Key=watch_key(entry),
            UpdateExpression="ADD approvals :id SET expire_at = :expire",
            ExpressionAttributeValues={
                ":id": {"SS": [approval_id]},
                ":expire": {"N": str(int((now + WATCH_RETENTION).timestamp()))},
            },
        )


def unwatch(client: Any, table: str, approval_id: str, entries: Iterable[str]) -> None:
    """Remove the approval from each entry's watch item (an empty set leaves the item
    without `approvals`; its TTL removes it)."""
    for entry in sorted(set(entries)):
        client.update_item(
            TableName=table,
            Key=watch_key(entry),
            UpdateExpression="DELETE approvals :id",
            ExpressionAttributeValues={":id": {"SS": [approval_id]}},
        )


def watchers(client: Any, table: str, alarm: str) -> dict[str, list[str]]:
    """The approvals that list the alarm `alarm`, each with the entries that list it."""
    entries = keys_for_alarm(alarm)
    found: dict[str, list[str]] = {}
    for start in range(0, len(entries), KEYS_PER_BATCH):
        batch = entries[start : start + KEYS_PER_BATCH]
        for item in _batch_get(client, table, [watch_key(entry) for entry in batch]):
            entry = item["approval_id"]["S"][len(WATCH_PREFIX) :]
            for approval_id in item.get("approvals", {}).get("SS", ()):
                found.setdefault(approval_id, []).append(entry)
    return {approval_id: sorted(entries) for approval_id, entries in sorted(found.items())}


def _batch_get(client: Any, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every item of `keys` that exists; unprocessed keys asked for again, backing off."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        table: {"Keys": keys, "ProjectionExpression": "approval_id, approvals"}
    }
    for attempt in range(BATCH_ATTEMPTS):
        response = client.batch_get_item(RequestItems=request)
        items.extend(response.get("Responses", {}).get(table, ()))
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return items
        time.sleep(0.05 * 2**attempt)  # DynamoDB asks callers to back off on these
    raise RuntimeError(f"DynamoDB left {len(request[table]['Keys'])} watch keys unprocessed")
