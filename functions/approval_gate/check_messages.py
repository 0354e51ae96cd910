"""The health checks as the request and the held request show them (DESIGN §8.3): one line
per check, and why Approve is blocked."""

from __future__ import annotations

from approval_gate.checks import CheckResult, failing
from approval_gate.records import Approval
from approval_gate.text import cut_at_word, escape_mrkdwn, mrkdwn_link, slack_date

#: Slack's limit on a section's text.
_SECTION_LIMIT = 3000

_CHECK_SYMBOLS = {"OK": ":white_check_mark:", "PASSED": ":white_check_mark:"}


def check_line(result: CheckResult) -> str:
    """ "✅ prod-db-cpu OK", "❌ prod-api-5xx ALARM: Threshold Crossed …", "⚠️ prod-db-cpu
    INSUFFICIENT_DATA" (blocking or not: an alarm without data says so), with its link."""
    if result.state == "INSUFFICIENT_DATA":
        symbol = ":warning:"
    elif result.passed:
        symbol = _CHECK_SYMBOLS.get(result.state, ":white_check_mark:")
    else:
        symbol = ":x:"
    name = escape_mrkdwn(result.name)
    shown = mrkdwn_link(result.url, name) if result.url else name
    summary = (
        "" if result.passed and result.summary == "ok" else f": {escape_mrkdwn(result.summary)}"
    )
    return f"{symbol} {shown} {result.state}{summary}"


def checks_text(approval: Approval) -> str:
    """The health checks as last read (DESIGN §8.3) and, while one fails, why there is no
    Approve: "Approve is blocked while prod-api-5xx is ALARM (since …). Reject still works." """
    lines = ["*Health checks*", *(check_line(result) for result in approval.checks)]
    blocking = failing(approval.checks)
    if blocking:
        first = blocking[0]
        lines.append(
            f":no_entry_sign: Approve is blocked while *{escape_mrkdwn(first.name)}* is "
            f"{first.state} ({'since' if first.kind == 'alarm' else 'checked'} "
            f"{slack_date(first.at)}). Reject still works."
        )
    return cut_at_word("\n".join(lines), _SECTION_LIMIT)
