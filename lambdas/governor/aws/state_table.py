"""DynamoDB: the governor's state table (``StateTable``): drift counters and conflicts, replay records, locks, the account
subscription policy's bookkeeping; and the records it keeps (``Conflict``, ``ReplayProgress``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .common import DEFAULT_RETRY_ATTEMPTS, _error_code, client_config


@dataclass(frozen=True)
class ReplayProgress:
    #: The governor's first filter on the group: the replay is of what was ingested before it, once per group.
    filter_created_ms: int
    #: Of those events, in order, how many were delivered.
    delivered: int
    done: bool
    #: Where reading goes on: the FilterLogEvents token of the page to read next (None: from the start), and how many
    #: of the events before the filter, and how many of their bytes, precede that page.
    page_token: str | None = None
    read: int = 0
    read_bytes: int = 0
    #: A history replay's (``cli apply --replay-hours``): the earliest event timestamp it sends, epoch ms (None: a new
    #: group's gap, from the earliest timestamp one of its events can carry).
    since_ms: int | None = None
    #: The pattern of the filter the replay stands in for (a rule can give a group its own; None: the configured one).
    filter_pattern: str | None = None
    #: Where that filter ships (a rule can name its own destination; None: destinationArn).
    destination_arn: str | None = None
    #: The life of the group the record belongs to: its ``creationTime`` (epoch ms). A group deleted and created again
    #: under the same name is another life, whose replay no record of an earlier one blocks or misleads. None: a record
    #: written before lives were kept, judged by its filter (``life_of``).
    group_created_ms: int | None = None
    #: A history replay's latest event timestamp, epoch ms, while it sends what an earlier, shorter one left out (None:
    #: up to the latest an event before the filter can carry). A finished record covers ``since_ms`` onwards whole.
    until_ms: int | None = None
    #: A delivery gap's (#31): the earliest ingestion time it sends, epoch ms (None: from the group's first event). The
    #: events of a gap are those ingested from here up to ``filter_created_ms``, which then names the gap's end.
    ingested_from_ms: int | None = None

    def life_of(self, group_created_ms: int) -> int:
        """Whether the record is of the group created at ``group_created_ms`` (0), of an earlier life (-1) or of a later one
        (1). An old record without its life is of an earlier one exactly when its filter predates the group."""
        if self.group_created_ms is None:
            return -1 if self.filter_created_ms < group_created_ms else 0
        return (self.group_created_ms > group_created_ms) - (self.group_created_ms < group_created_ms)


@dataclass(frozen=True)
class Conflict:
    """A group whose aspect another principal keeps changing back: left alone until ``until``."""

    log_group: str
    aspect: str
    principal: str
    #: Epoch seconds.
    since: float
    until: float
    changes: int
    #: The life of the group the fight was with (its ``creationTime``, epoch ms): a group created again under the name
    #: is not held by it. None: not known (a record from before lives were kept), held whatever the life.
    group_created_ms: int | None = None

    def holds(self, group_created_ms: int | None) -> bool:
        """Whether the conflict holds the group created at ``group_created_ms``."""
        return self.group_created_ms is None or group_created_ms is None or self.group_created_ms == group_created_ms


class StateTable:
    """The governor's small shared state in one DynamoDB table (key ``pk``, TTL ``expiresAt``): drift
    fight counters and conflicts, the count of drift repaired since the last reconcile, the reconcile
    lock. Items of the same kind share a key prefix."""

    REPAIRS_KEY = "stats#drift-repaired"
    LOCK_KEY = "lock#reconcile"

    def __init__(self, table_name: str, client: Any = None, *, max_attempts: int = DEFAULT_RETRY_ATTEMPTS) -> None:
        """``max_attempts``: of the client made on first use (a replay's ledger takes fewer, so that a delivery and its
        record fit in the time an invocation has left: governor.replay.DELIVERY_BUDGET_S)."""
        self.table_name = table_name
        self._client = client
        self._max_attempts = max_attempts

    @property
    def client(self) -> Any:
        """Made on first use: an event handler needs the table only before a write, so a cold start
        that finds the group compliant makes no DynamoDB client."""
        if self._client is None:
            self._client = boto3.client("dynamodb", config=client_config(self._max_attempts))
        return self._client

    # --- drift (governor.drift.DriftLedger) -------------------------------------------------------
    def conflict(self, log_group: str, aspect: str, now: float) -> Conflict | None:
        item = self.client.get_item(TableName=self.table_name, Key=_key(f"conflict#{aspect}#{log_group}"), ConsistentRead=True).get("Item")
        if not item or float(item["until"]["N"]) <= now:
            return None
        return _conflict(item)

    def count_change(self, log_group: str, aspect: str, now: float, window_s: int, event_id: str) -> int:
        """Changes are kept in buckets of the window's length (each expires after two), as ``<epoch ms>@<event id>``
        stamps; the count is of the stamps of this bucket and the one before that lie within the last window.
        An event already recorded (a redelivery, in either bucket) is not recorded again."""
        bucket, now_ms = int(now // window_s * window_s), int(now * 1000)
        previous = self._stamps(log_group, aspect, bucket - window_s)
        current: set[str] | None = None
        if not any(stamp.endswith(f"@{event_id}") for stamp in previous):
            try:
                answer = self.client.update_item(
                    TableName=self.table_name, Key=_key(f"changes#{aspect}#{log_group}#{bucket}"),
                    UpdateExpression="ADD eventIds :event, stamps :stamp SET expiresAt = :expires",
                    ConditionExpression="attribute_not_exists(eventIds) OR NOT contains(eventIds, :id)",
                    ExpressionAttributeValues={":event": {"SS": [event_id]}, ":stamp": {"SS": [f"{now_ms}@{event_id}"]},
                                               ":id": {"S": event_id}, ":expires": {"N": str(bucket + 2 * window_s)}},
                    ReturnValues="ALL_NEW")  # the bucket as written: no second read
                current = set(answer["Attributes"]["stamps"]["SS"])
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise  # else: redelivered within this bucket, already counted
        stamps = {*previous, *(current if current is not None else self._stamps(log_group, aspect, bucket))}
        return len({stamp.partition("@")[2] for stamp in stamps if now_ms - window_s * 1000 < int(stamp.partition("@")[0]) <= now_ms})

    def _stamps(self, log_group: str, aspect: str, bucket: int) -> set[str]:
        item = self.client.get_item(TableName=self.table_name, Key=_key(f"changes#{aspect}#{log_group}#{bucket}"),
                                    ConsistentRead=True).get("Item") or {}
        return set(item.get("stamps", {}).get("SS", []))

    def declare_conflict(self, conflict: Conflict) -> None:
        self.client.put_item(TableName=self.table_name, Item={
            **_key(f"conflict#{conflict.aspect}#{conflict.log_group}"),
            "logGroup": {"S": conflict.log_group}, "aspect": {"S": conflict.aspect}, "principal": {"S": conflict.principal},
            "since": {"N": str(conflict.since)}, "until": {"N": str(conflict.until)}, "changes": {"N": str(conflict.changes)},
            "expiresAt": {"N": str(int(conflict.until) + 1)},
            **({"groupCreatedMs": {"N": str(conflict.group_created_ms)}} if conflict.group_created_ms is not None else {}),
        })

    # --- replay (governor.replay.ReplayLedger) ------------------------------------------------------
    #: A group's replay record outlives the replay window many times: a later re-subscription finds it and replays nothing.
    REPLAY_KEEP_S = 7 * 86400

    def replay_progress(self, log_group: str) -> ReplayProgress | None:
        """The group's replay record, of whichever life of the name wrote it last (``ReplayProgress.life_of``)."""
        item = self.client.get_item(TableName=self.table_name, Key=_key(f"replay#{log_group}"), ConsistentRead=True).get("Item")
        if not item:
            return None
        number = lambda key: int(item[key]["N"]) if key in item else None  # noqa: E731
        text = lambda key: item[key]["S"] if key in item else None  # noqa: E731
        return ReplayProgress(int(item["filterCreatedMs"]["N"]), int(item["delivered"]["N"]), item["done"]["BOOL"], text("pageToken"),
                              number("read") or 0, number("readBytes") or 0, number("sinceMs"), text("filterPattern"),
                              text("destinationArn"), number("groupCreatedMs"), number("untilMs"), number("ingestedFromMs"))

    def claim_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> bool:
        """Take the group's replay for ``holder`` until ``lease_until_s`` (the invocation's end: the lease outlasts the
        work it guards). False when another invocation holds it, or the replay is done (unless ``progress`` reaches back
        before what the finished one covered). A record of an earlier life of the name (``progress.group_created_ms`` later
        than the record's) never stands in the way."""
        life = progress.group_created_ms if progress.group_created_ms is not None else 0
        try:
            self.client.put_item(
                TableName=self.table_name, Item=self._replay_item(log_group, progress, holder, lease_until_s),
                ConditionExpression="attribute_not_exists(pk) OR groupCreatedMs < :life"
                                    " OR (attribute_not_exists(groupCreatedMs) AND filterCreatedMs < :life)"
                                    " OR (done = :no AND (holder = :me OR leaseUntil < :now))"
                                    " OR (done = :yes AND sinceMs > :since)",
                ExpressionAttributeValues={":no": {"BOOL": False}, ":yes": {"BOOL": True}, ":me": {"S": holder}, ":now": {"N": str(time.time())},
                                           ":life": {"N": str(life)}, ":since": {"N": str(progress.since_ms if progress.since_ms is not None else 2 ** 62)}})
            return True
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise

    def record_replay(self, log_group: str, progress: ReplayProgress, *, holder: str, lease_until_s: float) -> None:
        """Progress of the holder's replay (each delivery), so a crash resumes past what was sent."""
        self.client.put_item(TableName=self.table_name, Item=self._replay_item(log_group, progress, holder, lease_until_s),
                             ConditionExpression="holder = :me", ExpressionAttributeValues={":me": {"S": holder}})

    def _replay_item(self, log_group: str, progress: ReplayProgress, holder: str, lease_until_s: float) -> dict[str, Any]:
        numbers = {"sinceMs": progress.since_ms, "groupCreatedMs": progress.group_created_ms, "untilMs": progress.until_ms,
                   "ingestedFromMs": progress.ingested_from_ms}
        return {**_key(f"replay#{log_group}"), "filterCreatedMs": {"N": str(progress.filter_created_ms)},
                "delivered": {"N": str(progress.delivered)}, "done": {"BOOL": progress.done}, "holder": {"S": holder},
                "read": {"N": str(progress.read)}, "readBytes": {"N": str(progress.read_bytes)},
                **({"pageToken": {"S": progress.page_token}} if progress.page_token else {}),
                **{key: {"N": str(value)} for key, value in numbers.items() if value is not None},
                **({"filterPattern": {"S": progress.filter_pattern}} if progress.filter_pattern is not None else {}),
                **({"destinationArn": {"S": progress.destination_arn}} if progress.destination_arn else {}),
                "leaseUntil": {"N": str(lease_until_s)}, "expiresAt": {"N": str(int(time.time()) + self.REPLAY_KEEP_S)}}

    def noticed(self, name: str) -> bool:
        """Whether ``name`` was noted (``note``): a delivery gap the watch sees on every run for hours is queued once (#31)."""
        return "Item" in self.client.get_item(TableName=self.table_name, Key=_key(f"notice#{name}"), ConsistentRead=True)

    def note(self, name: str, *, keep_s: int) -> None:
        """Note ``name`` for ``keep_s`` seconds (after what it stands for was done: a crash before it leaves it to be done again)."""
        self.client.put_item(TableName=self.table_name, Item={**_key(f"notice#{name}"), "expiresAt": {"N": str(int(time.time()) + keep_s)}})

    def add_repair(self) -> None:
        self.client.update_item(TableName=self.table_name, Key=_key(self.REPAIRS_KEY), UpdateExpression="ADD repaired :one",
                                ExpressionAttributeValues={":one": {"N": "1"}})

    # --- reconcile ---------------------------------------------------------------------------------
    def conflicts(self, now: float) -> list[Conflict]:
        """Every conflict still held (the table holds few: counters and conflicts expire)."""
        found, request = [], {"TableName": self.table_name, "FilterExpression": "begins_with(pk, :conflict)",
                              "ExpressionAttributeValues": {":conflict": {"S": "conflict#"}}}
        while True:
            answer = self.client.scan(**request)
            for item in answer.get("Items", []):
                if float(item["until"]["N"]) > now:
                    found.append(_conflict(item))
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def take_repairs(self) -> int:
        """The drift repairs counted since the last call; taken by subtracting, so repairs counted
        meanwhile are kept for the next run."""
        item = self.client.get_item(TableName=self.table_name, Key=_key(self.REPAIRS_KEY), ConsistentRead=True).get("Item")
        count = int(item["repaired"]["N"]) if item and "repaired" in item else 0
        if count:
            self.client.update_item(TableName=self.table_name, Key=_key(self.REPAIRS_KEY), UpdateExpression="ADD repaired :taken",
                                    ExpressionAttributeValues={":taken": {"N": str(-count)}})
        return count

    def acquire_lock(self, owner: str, now: float, lease_s: float, *, key: str = LOCK_KEY) -> str | None:
        """Hold the lock ``key`` (default: the reconcile's) for ``lease_s``, renewing it when ``owner``
        holds it. Answers None when taken, else the owner that holds it."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={**_key(key), "owner": {"S": owner}, "expiresAt": {"N": str(int(now + lease_s))}},
                ConditionExpression="attribute_not_exists(pk) OR #owner = :owner OR expiresAt < :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":now": {"N": str(int(now))}},
            )
            return None
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
        item = self.client.get_item(TableName=self.table_name, Key=_key(key), ConsistentRead=True).get("Item", {})
        return item.get("owner", {}).get("S", "another run")

    def acquire_fenced_lock(self, owner: str, now: float, lease_s: float, *, key: str) -> tuple[int | None, str | None]:
        """``acquire_lock`` that also hands out a fencing token: (token, None) when held, (None, holder)
        when another owner holds it. Every acquisition and renewal takes a larger token, so a write
        stamped with a smaller one than the last recorded came from a holder whose lease ran out. The lease is
        ``leaseUntil``, not the table's time-to-live attribute: the item, and so its token counter, is never deleted
        (a counter starting again at 1 would make every later holder's record look older than the last one). An item
        of an earlier version, leased by ``expiresAt``, is taken over the same way and loses its time to live."""
        try:
            answer = self.client.update_item(
                TableName=self.table_name, Key=_key(key),
                UpdateExpression="SET #owner = :owner, leaseUntil = :expires REMOVE expiresAt ADD fence :one",
                ConditionExpression="attribute_not_exists(pk) OR attribute_not_exists(#owner) OR #owner = :owner OR leaseUntil < :now"
                                    " OR (attribute_not_exists(leaseUntil) AND expiresAt < :now)",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":expires": {"N": str(int(now + lease_s))}, ":now": {"N": str(int(now))},
                                           ":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            item = self.client.get_item(TableName=self.table_name, Key=_key(key), ConsistentRead=True).get("Item", {})
            return None, item.get("owner", {}).get("S", "another writer")
        return int(answer["Attributes"]["fence"]["N"]), None

    def release_fenced_lock(self, owner: str, *, key: str) -> None:
        """Let go of a lock of ``acquire_fenced_lock`` without deleting it: its token counter stays, so the
        next holder's token is larger than every one handed out before (deleting it would start again at 1,
        and a later holder's record would be refused as older than one made before it)."""
        try:
            self.client.update_item(TableName=self.table_name, Key=_key(key), UpdateExpression="SET leaseUntil = :gone REMOVE #owner",
                                    ConditionExpression="#owner = :owner", ExpressionAttributeNames={"#owner": "owner"},
                                    ExpressionAttributeValues={":owner": {"S": owner}, ":gone": {"N": "0"}})
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":  # someone else's lock now: not ours to release
                raise

    # --- the account's subscription filter policy (governor.subscription_policy) ----------------------
    POLICY_WRITTEN_KEY = "subscription-policy#written"
    POLICY_PENDING_KEY = "subscription-policy#pending"

    def written_policy(self) -> tuple[frozenset[str], str, int] | None:
        """(names, document, fence) of the list the governor last wrote, or None before the first write."""
        item = self.client.get_item(TableName=self.table_name, Key=_key(self.POLICY_WRITTEN_KEY), ConsistentRead=True).get("Item")
        if not item:
            return None
        return frozenset(json.loads(item["names"]["S"])), item["document"]["S"], int(item["fence"]["N"])

    def record_written(self, names: frozenset[str], document: str, fence: int) -> bool:
        """Keep what was written, unless a holder with a newer token recorded since (then False)."""
        try:
            self.client.put_item(TableName=self.table_name, Item={
                **_key(self.POLICY_WRITTEN_KEY), "names": {"S": json.dumps(sorted(names))}, "document": {"S": document},
                "fence": {"N": str(fence)}}, ConditionExpression="attribute_not_exists(pk) OR fence <= :fence",
                ExpressionAttributeValues={":fence": {"N": str(fence)}})
            return True
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            return False

    def pending_names(self) -> frozenset[str]:
        """Names events found excluded before the governor's first write of the policy (none is parked after it,
        even with the policy deleted: ``written_policy`` is written back then): the first pass's write lists them too."""
        item = self.client.get_item(TableName=self.table_name, Key=_key(self.POLICY_PENDING_KEY), ConsistentRead=True).get("Item", {})
        return frozenset(item.get("names", {}).get("SS", []))

    def change_pending(self, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        for verb, names in (("ADD", sorted(set(add))), ("DELETE", sorted(set(remove)))):
            if names:
                self.client.update_item(TableName=self.table_name, Key=_key(self.POLICY_PENDING_KEY), UpdateExpression=f"{verb} #names :names",
                                        ExpressionAttributeNames={"#names": "names"}, ExpressionAttributeValues={":names": {"SS": names}})

    def release_lock(self, owner: str, *, key: str = LOCK_KEY) -> None:
        try:
            self.client.delete_item(TableName=self.table_name, Key=_key(key), ConditionExpression="#owner = :owner",
                                    ExpressionAttributeNames={"#owner": "owner"}, ExpressionAttributeValues={":owner": {"S": owner}})
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":  # someone else's lock now: not ours to release
                raise


def _conflict(item: Mapping[str, Any]) -> Conflict:
    return Conflict(item["logGroup"]["S"], item["aspect"]["S"], item["principal"]["S"], float(item["since"]["N"]), float(item["until"]["N"]),
                    int(item["changes"]["N"]), int(item["groupCreatedMs"]["N"]) if "groupCreatedMs" in item else None)


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}
