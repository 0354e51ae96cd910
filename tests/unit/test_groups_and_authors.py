"""Group membership (cached, fail closed) and finding a change's author."""

from __future__ import annotations

import pytest
from approval_gate.authors import change_authors, slack_user_for
from approval_gate.groups import GroupDirectory, GroupLookupFailed, is_member
from botocore.exceptions import ClientError
from slack_sdk.errors import SlackApiError

from tests.unit.fakes import GroupSlack


def test_membership_is_cached_briefly():
    now = [0.0]
    slack = GroupSlack({"S0RELEASE": ["U0CAROL"]})
    directory = GroupDirectory(slack, ttl=60, monotonic=lambda: now[0])

    assert is_member(directory, "U0CAROL", ("S0RELEASE",))
    assert not is_member(directory, "U0MALLORY", ("S0RELEASE",))
    assert slack.calls == 1
    now[0] = 61
    directory.members("S0RELEASE")
    assert slack.calls == 2


@pytest.mark.parametrize("error", ["plan_upgrade_required", "missing_scope", "no_such_subteam"])
def test_a_group_slack_cannot_list_fails_closed_and_names_the_group(error):
    directory = GroupDirectory(GroupSlack(error=error))

    with pytest.raises(GroupLookupFailed) as failed:
        is_member(directory, "U0CAROL", ("S0RELEASE",))

    assert failed.value.group_id == "S0RELEASE"
    assert failed.value.reason == f"Slack said: {error}"


def test_a_timeout_fails_closed_too():
    class Slow:
        def usergroups_users_list(self, usergroup):
            raise TimeoutError("timed out")

    with pytest.raises(GroupLookupFailed, match="did not answer"):
        GroupDirectory(Slow()).members("S0RELEASE")


class LookupSlack:
    def __init__(self, users):
        self.users = users

    def users_lookupByEmail(self, email):
        if email not in self.users:
            raise SlackApiError("not found", {"ok": False, "error": "users_not_found"})
        return {"ok": True, "user": {"id": self.users[email]}}


def test_the_people_map_wins_then_slack_by_email():
    slack = LookupSlack({"bob@example.com": "U0BOB"})
    people = {"Alice@Example.com": "U0ALICE", "arn:aws:iam::123456789012:user/ci": "U0CI"}

    assert slack_user_for("alice@example.com", people, slack) == "U0ALICE"
    assert slack_user_for("bob@example.com", people, slack) == "U0BOB"
    assert slack_user_for("arn:aws:iam::123456789012:user/ci", people, slack) == "U0CI"
    assert slack_user_for("nobody@example.com", people, slack) is None
    session = "arn:aws:sts::123456789012:assumed-role/Deployers/bob@example.com"
    assert slack_user_for(session, people, slack) == "U0BOB"
    assert slack_user_for("arn:aws:iam::123456789012:role/robot", people, slack) is None


class Pipeline:
    def __init__(self, execution=None, error=None):
        self.execution = execution
        self.error = error

    def get_pipeline_execution(self, pipelineName, pipelineExecutionId):
        if self.error:
            raise ClientError(
                {"Error": {"Code": self.error, "Message": "x"}}, "GetPipelineExecution"
            )
        return {"pipelineExecution": self.execution}


class Repo:
    def get_commit(self, repositoryName, commitId):
        assert repositoryName == "web-repo"
        return {"commit": {"commitId": commitId, "author": {"email": "alice@example.com"}}}


def test_the_commit_author_and_the_person_who_started_the_run_are_both_authors():
    execution = {
        "artifactRevisions": [
            {
                "revisionId": "9f2c1e7a" * 5,
                "revisionSummary": "Add checkout",
                "revisionUrl": "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/"
                "repositories/web-repo/commit/" + "9f2c1e7a" * 5 + "?region=us-east-1",
            }
        ],
        "trigger": {
            "triggerType": "StartPipelineExecution",
            "triggerDetail": "arn:aws:sts::123456789012:assumed-role/Deployers/bob@example.com",
        },
    }

    authors = change_authors(
        codepipeline=Pipeline(execution),
        codecommit=Repo(),
        slack=LookupSlack({"bob@example.com": "U0BOB"}),
        people={"alice@example.com": "U0ALICE"},
        pipeline="web",
        execution_id="e-1",
    )

    assert authors.slack_users == ("U0ALICE", "U0BOB")
    assert authors.change == "9f2c1e7 Add checkout"
    assert authors.known


def test_an_author_that_cannot_be_found_is_unknown_not_an_error():
    for pipeline in (Pipeline(error="AccessDeniedException"), Pipeline({"artifactRevisions": []})):
        authors = change_authors(
            codepipeline=pipeline,
            codecommit=Repo(),
            slack=LookupSlack({}),
            people={},
            pipeline="web",
            execution_id="e-1",
        )
        assert not authors.known and authors.slack_users == ()
