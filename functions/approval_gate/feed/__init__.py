"""The pipeline status feed: one Slack message per pipeline execution, updated in place,
with how each stage and action ended in its thread, built from CodePipeline's EventBridge
events; approvals CodePipeline settled itself are closed on the way. `events` reads and
validates the events, `state` and `store` keep what the feed knows of each execution in
the approvals table (a conditional write per event, so state only moves forward),
`render` draws the message and its thread lines, `details` asks CodePipeline what the
events leave out, `settlement` says why an approval was settled outside Slack, and
`handle` applies one event and brings Slack up to date (docs/status-feed.md).
"""

from approval_gate.feed.events import InvalidEvent, PipelineEvent, parse_event
from approval_gate.feed.handle import handle_event, hold_shower, receive, show_hold
from approval_gate.feed.render import FeedView, feed_view
from approval_gate.feed.state import Feed
from approval_gate.feed.store import FEED_PREFIX, FeedStore

__all__ = [
    "FEED_PREFIX",
    "Feed",
    "FeedStore",
    "FeedView",
    "InvalidEvent",
    "PipelineEvent",
    "feed_view",
    "handle_event",
    "hold_shower",
    "parse_event",
    "receive",
    "show_hold",
]
