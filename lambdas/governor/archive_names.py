"""The names the archive's pull (#31, governor.archive_pull) shares with the stacks that deploy it: no dependencies, so the
CDK app imports them without boto3 or Powertools."""

from __future__ import annotations

#: The member's read-only role (stacks/replay_reader.py), named alike in every member (a region of its own each): the
#: archive assumes it in the account a request came from, never in another.
MEMBER_READER_ROLE = "log-group-governor-replay-reader-{region}"
#: The archive's pull function's role in the central account: the only principal the members' reader roles trust.
ARCHIVE_PULLER_ROLE = "log-group-governor-archive-replay-{region}"
#: A member's replay request on the fleet bus (governor.aws.FleetBus.request_replay sends it; the archive's rule matches it).
REPLAY_SOURCE = "log-group-governor"
REPLAY_DETAIL_TYPE = "log-group-governor replay request"
#: The pull function's environment (set by stacks/archive_replay.py).
ENV_QUEUE_URL = "ARCHIVE_PULL_QUEUE_URL"
ENV_TABLE = "ARCHIVE_PULL_TABLE"
ENV_STREAM_ARN = "ARCHIVE_STREAM_ARN"
ENV_DESTINATION_ARN = "ARCHIVE_DESTINATION_ARN"
#: Requests the archive could not pull (the member's role cannot be assumed, or a read or write failed): alarmed.
PULL_FAILED_METRIC = "ArchivePullFailed"
