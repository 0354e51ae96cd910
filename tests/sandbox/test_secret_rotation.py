"""Rotating the Slack signing secret causes no outage; forged requests cause no flood
of secret reads (the cached secret is refreshed at most once a minute)."""

from __future__ import annotations

import json
import secrets as random

from sandbox.fake_slack import form_body, signed_request


def test_a_rotated_signing_secret_is_picked_up_on_the_first_click_signed_with_it(gate):
    run, approval, message = gate.open_approval()
    sandbox = gate.server.sandbox
    new_secret = random.token_hex(16)
    sandbox.client("secretsmanager").put_secret_value(
        SecretId=sandbox.secret_arn,
        SecretString=json.dumps(
            {
                "bot_token": sandbox.slack.bot_token,
                "signing_secret": new_secret,
                "team_id": sandbox.slack.team_id,
                "app_id": sandbox.slack.app_id,
            }
        ),
    )
    reads = []

    # Count the function's reads of the secret while forged requests arrive.
    from approval_gate.slack import SlackCredentialsSource

    real_refreshed = SlackCredentialsSource.refreshed

    def counting(self):
        fresh = real_refreshed(self)
        if fresh is not None:
            reads.append(fresh)
        return fresh

    SlackCredentialsSource.refreshed = counting
    try:
        body = form_body(gate.click_payload(message, "U0ALICE", "approve"))
        assert (
            gate.post_interaction({}, body=body, headers=signed_request(body, new_secret))[0] == 200
        )
        for _ in range(10):  # forged: neither the old nor the new secret
            forged = signed_request(body, "forged-" + random.token_hex(8))
            assert gate.post_interaction({}, body=body, headers=forged)[0] == 401
    finally:
        SlackCredentialsSource.refreshed = real_refreshed

    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])
    assert len(reads) == 1  # one refresh for the rotation; the forgeries read nothing
