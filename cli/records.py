"""The approvals a time range holds, streamed from the audit index.

For each month from ``since`` to ``until`` one Query (``audit_month = :m AND requested_at
BETWEEN :a AND :b``), ascending and paged, so the approvals come oldest first and never
all at once. The index holds keys only (its writes happen once, when a request is made,
and it holds no token), so each page's items are read with BatchGetItem, 100 keys a call,
and put back in the page's order. Each item reads back through the domain
(approval_gate.store), and its decision record is the domain's too
(``Approval.decision_record``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from approval_gate.approval_items import AUDIT_INDEX, AUDIT_MONTH, audit_month
from approval_gate.clock import iso
from approval_gate.records import HELD, PENDING, Approval
from approval_gate.store import _from_item  # the one reading of an item (as the feed's)

from cli.errors import CliError
from cli.target import Target

_RELATIVE = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours"}


def parse_time(text: str, now: datetime, *, option: str) -> datetime:
    """``30d``/``12h`` (that long before ``now``) or an ISO 8601 date or time (UTC when it
    names no offset; a date is its 00:00 UTC); CliError naming ``option`` otherwise."""
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2).lower()]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{option} {text!r}: give Nd, Nh, or an ISO date or time (2026-10-01T00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def months(since: datetime, until: datetime) -> Iterator[str]:
    """Each ``YYYY-MM`` from the month of ``since`` to that of ``until``, in order."""
    year, month = since.astimezone(UTC).year, since.astimezone(UTC).month
    last = audit_month(until)
    while (current := f"{year:04d}-{month:02d}") <= last:
        yield current
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def approvals(
    target: Target, since: datetime, until: datetime, *, open_only: bool = False
) -> Iterator[Approval]:
    """The approvals requested from ``since`` to ``until`` (both included), oldest first,
    read one index page at a time; ``open_only``: those PENDING or HELD."""
    for month in months(since, until):
        query: dict[str, Any] = {
            "TableName": target.table,
            "IndexName": AUDIT_INDEX,
            "KeyConditionExpression": "#month = :month AND requested_at BETWEEN :since AND :until",
            "ExpressionAttributeNames": {"#month": AUDIT_MONTH},
            "ExpressionAttributeValues": {
                ":month": {"S": month},
                ":since": {"S": iso(since)},
                ":until": {"S": iso(until)},
            },
            "ScanIndexForward": True,
        }
        # A page of keys at most PAGE long: its items are read and written out before the
        # next is asked for, so memory stays flat whatever the range holds.
        query["Limit"] = target.page_size or PAGE
        while True:
            page = target.dynamodb.query(**query)
            keys = [item["approval_id"]["S"] for item in page.get("Items", ())]
            for start in range(0, len(keys), BATCH):
                for item in _items(target, keys[start : start + BATCH]):
                    approval = _from_item(item)
                    if not open_only or approval.status in (PENDING, HELD):
                        yield approval
            if not page.get("LastEvaluatedKey"):
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


#: Keys one index page holds at most (DynamoDB's 1 MB of keys would be ~10,000).
PAGE = 1000
#: Keys a BatchGetItem call takes at most.
BATCH = 100
#: How many times keys DynamoDB left unprocessed (throttling) are asked for again, and the
#: first pause before that, doubled each time.
RETRIES = 8
FIRST_PAUSE = 0.05


def _items(target: Target, approval_ids: list[str]) -> list[dict[str, Any]]:
    """The items of ``approval_ids``, in that order (an id whose item is gone since the
    index listed it, expired by TTL, is left out)."""
    wanted: dict[str, Any] = {
        target.table: {"Keys": [{"approval_id": {"S": i}} for i in approval_ids]}
    }
    found: dict[str, dict[str, Any]] = {}
    pause = FIRST_PAUSE
    for attempt in range(RETRIES + 1):
        answer = target.dynamodb.batch_get_item(RequestItems=wanted)
        for item in answer.get("Responses", {}).get(target.table, ()):
            found[item["approval_id"]["S"]] = item
        wanted = answer.get("UnprocessedKeys") or {}
        if not wanted:
            break
        if attempt < RETRIES:
            time.sleep(pause)
            pause *= 2
    else:
        raise CliError("DynamoDB kept throttling the approvals table's reads: try again later")
    return [found[i] for i in approval_ids if i in found]


def audit_record(approval: Approval) -> dict[str, Any]:
    """The decision record (DESIGN §4 and §8) and the execution's console link."""
    return {**approval.decision_record(), "console_link": approval.console_link}
