"""The organization's archive pulls what a member's new group held before its filter (#31).

A member cannot write into the archive's stream, and must never write records claiming another account; so the archive
reads the gap itself. After a member's subscribe handler puts its filter (to this archive's CloudWatch Logs destination)
on a new group, it puts a replay request on the fleet bus: the group, the filter's name and its replay bounds, nothing
else. Then:

1. **Intake** (the bus rule's target): the request is queued on a FIFO queue with ``MessageGroupId`` = the event's
   ``account``, which EventBridge sets from the sender (a member cannot name another: localaws/FIDELITY.md O11). The
   queue is FIFO so that each member's requests are taken one batch at a time, by one container: FilterLogEvents and
   DescribeSubscriptionFilters are the member's quotas, and the archive spends at most ``PULL_QUOTA_SHARE`` of each,
   however many of its groups wait (an EventBridge rule sets only a fixed MessageGroupId on an SQS target, hence the
   intake). Other members' requests go on in other containers.
2. **Pull** (the queue's consumer): the archive assumes the member's read-only role
   (``MEMBER_READER_ROLE``, trusted by this function's role alone) in *that* account, and through it (a) looks the group
   up (its ``creationTime``: the life the ledger keys by), (b) reads the filter as DescribeSubscriptionFilters tells it:
   it must ship to this archive's destination, and its ``creationTime`` bounds the window (no time the request claims is
   used), (c) reads the group by ingestion time as the member's own replay does (``governor.replay.Replayer``, ``_Step``,
   the ledger), and writes each document into the archive's stream as CloudWatch Logs would (gzip'd DATA_MESSAGE, ``owner``
   the member's account), so ship-logs takes it like any other record.

Exactly once: the ledger (this archive's table) is keyed by account and group, and holds the group's life; a
redelivered request finds it and sends nothing. Resumable: a replay that outlasts its slice is queued again (same
message group) and goes on from the recorded page; one that fails comes back from the queue. Bounded by the member's own
replayWindowMinutes / replayMaxEvents / replayMaxBytes, as its own replay would be. Reported: metrics by outcome, an alarm on failures (a
member whose role cannot be assumed is finished with that reason and alarms), and a log line per request naming the
account, the group and the window.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.exceptions import ClientError

from shared.config import ConfigError

from .aws import LogsGateway, Pacer, ReplayProgress, client_config
from .config import DEFAULT_API_QUOTAS_TPS, Destination, parse_policy_config
from .policy import Policy
from .primitives import parse_destination
from .delivery_gaps import DISABLED_MS, LONG_LOOKBACK_MS, MINUTE_MS
from .replay import Replayer, ReplayResult

from .archive_names import (ARCHIVE_PULLER_ROLE, ENV_DESTINATION_ARN, ENV_QUEUE_URL, ENV_STREAM_ARN, ENV_TABLE, MEMBER_READER_ROLE,  # noqa: F401
                            PULL_FAILED_METRIC, REPLAY_DETAIL_TYPE, REPLAY_SOURCE)

#: The share of each of a member's CloudWatch Logs quotas the archive's pull spends (the member's event handlers take
#: eventQuotaShare, 0.3 by default, of the same account's; the pull is their replay done from the archive).
PULL_QUOTA_SHARE = 0.3
PULL_OPERATIONS = ("DescribeLogGroups", "DescribeSubscriptionFilters", "FilterLogEvents")
#: The longest delivery gap a member's watch can find (governor.delivery_gaps: its look-back, a disabled period, the lead).
MAX_GAP_MS = LONG_LOOKBACK_MS + DISABLED_MS + 2 * MINUTE_MS
#: A log group's name (the CloudWatch Logs model's pattern and length); a filter's name (no ':' or '*').
_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")
_FILTER_NAME = re.compile(r"[^:*]{1,512}")
_ACCOUNT = re.compile(r"\d{12}")
#: The member's replay keys a request may carry (the configuration's own names and ranges, checked by its parser).
BOUND_KEYS = ("replayWindowMinutes", "replayMaxEvents", "replayMaxBytes")


#: Metrics (namespace and service of the fleet's): events pulled into the stream, those past the bounds, requests
#: finished without a replay because the member's role cannot be assumed or the request reads nothing (alarmed), an
#: unfinished pull queued again, and the lag from the group's creation to its replay's end.
PULL_REQUESTED_METRIC = "ArchivePullRequested"
PULLED_METRIC = "ArchivePulledEvents"
PULL_TRUNCATED_METRIC = "ArchivePullTruncated"
PULL_REFUSED_METRIC = "ArchivePullRefused"
PULL_CONTINUED_METRIC = "ArchivePullContinued"
PULL_LAG_METRIC = "ArchivePullLag"
#: Why a request was finished without reading (the log line's ``reason``; the Reason dimension of PULL_FAILED_METRIC
#: and PULL_REFUSED_METRIC).
ROLE_NOT_ASSUMABLE = "member-role-not-assumable"
NOT_IN_MEMBER = "group-not-in-member-account"

#: Leave this much of an invocation for the record of a request and the answer (as the member's handlers do).
RECORD_MARGIN_S = 30.0

wall_clock = time.time


#: How far a member's clock and CloudWatch Logs' may disagree about one put, and the put's own duration: a filter created
#: later than a request by more than this is not the filter the request was made for.
REQUEST_TOLERANCE_MS = 5_000


class _AsRequested:
    """The member's CloudWatch Logs, its filter as the request asked for it (review of #31): when the filter in place was
    created well after the request (someone deleted it and the governor put it back), the lines between the first
    filter and the second were delivered by the first (or are a delivery gap, not a new group's); the window ends at the
    request's time instead of the new filter's, so nothing the first filter delivered is sent again (but what was
    ingested between the first put and the request, a fraction of a second, may be)."""

    def __init__(self, logs: Any, requested_at_ms: int | None) -> None:
        self._logs, self._asked, self.capped_from_ms = logs, requested_at_ms, None

    def own_filter(self, log_group: str, filter_name: str) -> Any:
        found = self._logs.own_filter(log_group, filter_name)
        if found is not None and self._asked is not None and found.created_ms > self._asked + REQUEST_TOLERANCE_MS:
            self.capped_from_ms = found.created_ms
            return replace(found, created_ms=self._asked)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logs, name)


class MemberRoleRefused(Exception):
    """STS refused to let the archive assume the member's reader role (absent, or trusting someone else)."""


@dataclass(frozen=True)
class PullRequest:
    #: The member's account: the EventBridge event's ``account``, never a claim of its detail.
    account: str
    log_group: str
    filter_name: str
    #: Epoch seconds the archive took the request in (its own clock).
    received_at: float
    #: The EventBridge event's id: two deliveries of one event are one message (the FIFO queue's deduplication).
    event_id: str
    #: The member's own replayWindowMinutes, replayMaxEvents and replayMaxBytes (its policy for its own groups, held to the
    #: keys' ranges: they change how much of the member's own data is read, never whose or from when).
    bounds: Mapping[str, int] = field(default_factory=dict)
    #: The member's clock when it asked, just after its put (epoch ms; None: an older member): a filter created well after
    #: it was put again since, and the window ends here instead (review of #31). A member's claim bounds only its own data.
    requested_at_ms: int | None = None
    #: A delivery gap's window (ingestion times, epoch ms, both included) the member's watch found in its filter's metrics
    #: (governor.delivery_gaps); None: a new group's first lines.
    gap: tuple[int, int] | None = None

    def body(self) -> str:
        return json.dumps({"account": self.account, "logGroup": self.log_group, "filterName": self.filter_name,
                           "receivedAt": self.received_at, "eventId": self.event_id, "bounds": dict(self.bounds),
                           **({"requestedAtMs": self.requested_at_ms} if self.requested_at_ms is not None else {}),
                           **({"gap": list(self.gap)} if self.gap is not None else {})}, sort_keys=True)

    @classmethod
    def from_body(cls, body: str) -> PullRequest:
        raw = json.loads(body)
        gap = raw.get("gap")
        return cls(raw["account"], raw["logGroup"], raw["filterName"], float(raw["receivedAt"]), raw["eventId"], raw.get("bounds") or {},
                   raw.get("requestedAtMs"), (int(gap[0]), int(gap[1])) if gap else None)

    def deduplication_id(self, attempt: str = "") -> str:
        gap = f"{self.gap[0]}-{self.gap[1]}" if self.gap else ""
        return hashlib.sha256(f"{self.account}\0{self.log_group}\0{self.event_id}\0{attempt}\0{gap}".encode()).hexdigest()


@dataclass(frozen=True)
class PullOutcome:
    request: PullRequest
    result: ReplayResult
    #: The window read, as the member's CloudWatch Logs and the ledger tell it: events ingested up to the filter's
    #: ``creationTime`` (``until_ms``), with a timestamp from ``from_ms`` (None: nothing was read).
    from_ms: int | None = None
    until_ms: int | None = None
    #: Why nothing was read (a reason of this module's, or the replay's own skip).
    reason: str | None = None
    #: Seconds from the group's creation (its creationTime) to the end of its replay (None: not finished now).
    lag_s: float | None = None
    #: The creationTime of a filter put again after the request (the window ended at the request's time instead).
    filter_put_again_ms: int | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"account": self.request.account, "logGroup": self.request.log_group, **self.result.as_dict()}
        if self.request.gap is not None:
            found["gap"] = {"ingestedFromMs": self.request.gap[0], "ingestedUntilMs": self.request.gap[1]}
        elif self.until_ms is not None:
            found["window"] = {"fromTimestampMs": self.from_ms, "ingestedUntilMs": self.until_ms}
        if self.reason:
            found["reason"] = self.reason
        if self.lag_s is not None:
            found["lagSeconds"] = round(self.lag_s, 3)
        if self.filter_put_again_ms is not None:
            found["filterPutAgainMs"] = self.filter_put_again_ms
        return found


class _MemberLedger:
    """The archive's ledger seen as one member's: the records of each member's groups under their own key."""

    def __init__(self, table: Any, account: str) -> None:
        self.table, self.prefix = table, f"{account}#"

    def replay_progress(self, log_group: str) -> ReplayProgress | None:
        return self.table.replay_progress(self.prefix + log_group)

    def claim_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> bool:
        return self.table.claim_replay(self.prefix + log_group, progress, holder=holder, lease_until_s=lease_until_s)

    def record_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> None:
        self.table.record_replay(self.prefix + log_group, progress, holder=holder, lease_until_s=lease_until_s)


def stream_destination(stream_arn: str) -> Destination:
    """The archive's stream as the replay's writer takes it: written with the function's own role, no delivery role."""
    return replace(parse_destination(stream_arn, f"arn:aws:iam::{stream_arn.split(':')[4]}:role/none"), role_arn=None)


def member_reader_role(account: str, region: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{MEMBER_READER_ROLE.format(region=region)}"


class ArchivePuller:
    """The archive's side of the pull: ``intake`` queues a member's request under its account, ``pull`` reads and writes it.

    ``member_logs(account)``: CloudWatch Logs of that account, through its reader role (raises MemberRoleRefused).
    ``writer``: delivers documents to ``stream`` (a ReplayWriter). ``ledger``: the archive's replay records (a StateTable).
    ``send(body, group_id, deduplication_id)``: the FIFO queue."""

    def __init__(self, *, region: str, destination_arn: str, stream: Destination, member_logs: Callable[[str], Any], writer: Any,
                 ledger: Any, send: Callable[[str, str, str], None] | None, clock: Callable[[], float] = time.time,
                 settings: Mapping[str, Any] | None = None) -> None:
        self.region, self.destination_arn, self.stream = region, destination_arn, stream
        self.member_logs, self.writer, self.ledger, self.send, self.clock = member_logs, writer, ledger, send, clock
        self.settings = dict(settings or {})

    # --- intake ------------------------------------------------------------------------------------------------------
    def request_of(self, event: Any) -> PullRequest | str:
        """The request an EventBridge event carries, or why it is none."""
        if not isinstance(event, Mapping) or event.get("source") != REPLAY_SOURCE or event.get("detail-type") != REPLAY_DETAIL_TYPE:
            return "not a replay request"
        account, detail = event.get("account"), event.get("detail")
        if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
            return "no sender account"
        if event.get("region") != self.region:
            return f"a request of region {event.get('region')!r}: this archive reads {self.region}'s groups only"
        if not isinstance(detail, Mapping):
            return "no detail"
        group, filter_name = detail.get("logGroup"), detail.get("filterName")
        if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
            return "logGroup is not a log group's name (an ARN or another account's group is never read)"
        if not isinstance(filter_name, str) or not _FILTER_NAME.fullmatch(filter_name):
            return "filterName is not a subscription filter's name"
        bounds = {key: detail[key] for key in BOUND_KEYS if isinstance(detail.get(key), int) and not isinstance(detail.get(key), bool)}
        try:
            self._policy(filter_name, bounds)
        except ConfigError as error:
            return f"the member's replay bounds are refused: {error}"
        asked = detail.get("requestedAtMs")
        asked = asked if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0 else None
        gap = None
        if "gapFromMs" in detail or "gapUntilMs" in detail:
            gap = self._gap(detail.get("gapFromMs"), detail.get("gapUntilMs"))
            if isinstance(gap, str):
                return gap
        return PullRequest(account, group, filter_name, self.clock(), str(event.get("id") or f"{account}:{group}"), bounds, asked, gap)

    def _gap(self, from_ms: Any, until_ms: Any) -> tuple[int, int] | str:
        """A delivery gap's window as a member claims it, or why it is refused: it only chooses which minutes of the
        member's own group are read (through its own role), so it is held to what a watch can find, no more."""
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (from_ms, until_ms)):
            return "gapFromMs and gapUntilMs are not times in epoch ms"
        if until_ms < from_ms or until_ms - from_ms > MAX_GAP_MS:
            return f"a gap is at most {MAX_GAP_MS // 60_000} minutes, its end after its start"
        if until_ms > self.clock() * 1000 + REQUEST_TOLERANCE_MS:
            return "a gap that has not ended yet"
        return (from_ms, until_ms)

    def intake(self, event: Any) -> dict[str, Any]:
        """Queue the request an event carries under its sender's account (FIFO group); answers what was done."""
        request = self.request_of(event)
        if isinstance(request, str):
            return {"status": "ignored", "reason": request, "account": event.get("account") if isinstance(event, Mapping) else None}
        assert self.send is not None
        self.send(request.body(), request.account, request.deduplication_id())
        return {"status": "queued", "account": request.account, "logGroup": request.log_group}

    # --- pull ----------------------------------------------------------------------------------------------------------
    def _policy(self, filter_name: str, bounds: Mapping[str, int]) -> Policy:
        return Policy(parse_policy_config({"destinationArn": self.destination_arn, "filterName": filter_name, **self.settings, **bounds}))

    def pull(self, request: PullRequest, *, holder: str, now_s: float, lease_until_s: float, stop_by_s: float | None = None) -> PullOutcome:
        """Read the request's group through its account's role and write what came before its filter into the stream."""
        try:
            logs = self.member_logs(request.account)
            info = logs.describe_log_groups([request.log_group]).get(request.log_group)
        except MemberRoleRefused as refused:
            return PullOutcome(request, ReplayResult(skipped=str(refused)), reason=ROLE_NOT_ASSUMABLE)
        if info is None:
            # Never read anywhere else: the role is this account's. A group deleted meanwhile ends here too.
            return PullOutcome(request, ReplayResult(skipped="the member's account has no such group"), reason=NOT_IN_MEMBER)
        policy = self._policy(request.filter_name, request.bounds)
        ledger = _MemberLedger(self.ledger, request.account)
        source = _AsRequested(logs, request.requested_at_ms)
        replayer = Replayer(lambda: policy, source, self.writer, ledger, clock=self.clock,
                            writes_to=lambda arn: self.stream if arn == self.destination_arn else None)
        if request.gap is not None:
            result = replayer.gap(request.log_group, info.created_ms, request.gap[0], request.gap[1], owner=request.account, holder=holder,
                                  now_s=now_s, lease_until_s=lease_until_s, stop_by_s=stop_by_s)
        else:
            result = replayer.after_subscribe(request.log_group, info.created_ms, owner=request.account, holder=holder, now_s=now_s,
                                              lease_until_s=lease_until_s, stop_by_s=stop_by_s)
        if result.skipped and result.skipped.startswith("the governor's filter ships to"):
            result = ReplayResult(skipped="the filter does not ship to this archive's destination: nothing is read")
        finished = result.skipped is None and not result.unfinished
        if request.gap is not None:  # the window as the member's metrics found it; the lag from its end
            return PullOutcome(request, result, from_ms=request.gap[0], until_ms=request.gap[1],
                               lag_s=self.clock() - request.gap[1] / 1000 if finished else None)
        record = ledger.replay_progress(request.log_group)
        mine = record is not None and info.created_ms is not None and record.life_of(info.created_ms) == 0
        return PullOutcome(request, result, from_ms=record.since_ms if mine else None, until_ms=record.filter_created_ms if mine else None,
                           lag_s=self.clock() - info.created_ms / 1000 if finished and info.created_ms is not None else None,
                           filter_put_again_ms=source.capped_from_ms)


# --- the Lambda entry point ----------------------------------------------------------------------------------------------
class MemberSessions:
    """CloudWatch Logs clients of members, each through its reader role (kept while its credentials last), each paced at
    PULL_QUOTA_SHARE of the member's quotas. One container takes one member's requests at a time (the FIFO group)."""

    def __init__(self, region: str, partition: str, *, sts: Any = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.region, self.partition = region, partition
        self._sts = sts
        self._clock, self._sleep = clock, sleep
        self._sessions: dict[str, tuple[float, LogsGateway]] = {}

    def __call__(self, account: str) -> LogsGateway:
        held = self._sessions.get(account)
        if held is not None and held[0] > time.time():
            return held[1]
        sts = self._sts = self._sts or boto3.client("sts", region_name=self.region, config=client_config())
        role = member_reader_role(account, self.region, self.partition)
        try:
            credentials = sts.assume_role(RoleArn=role, RoleSessionName="log-group-governor-archive-replay", DurationSeconds=900)["Credentials"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("AccessDenied", "AccessDeniedException"):
                raise MemberRoleRefused(f"the archive may not assume {role}: {error}") from error
            raise
        client = boto3.client("logs", region_name=self.region, aws_access_key_id=credentials["AccessKeyId"],
                              aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"],
                              config=client_config())
        rates = {op: DEFAULT_API_QUOTAS_TPS[op] * PULL_QUOTA_SHARE for op in PULL_OPERATIONS}
        gateway = LogsGateway(client, pacer=Pacer(rates, clock=self._clock, sleep=self._sleep))
        self._sessions[account] = (time.time() + 600, gateway)  # the credentials last 900 s
        return gateway


class FifoQueue:
    def __init__(self, url: str, client: Any = None) -> None:
        self.url, self._client = url, client

    def __call__(self, body: str, group_id: str, deduplication_id: str) -> None:
        client = self._client = self._client or boto3.client("sqs", config=client_config())
        client.send_message(QueueUrl=self.url, MessageBody=body, MessageGroupId=group_id, MessageDeduplicationId=deduplication_id)
