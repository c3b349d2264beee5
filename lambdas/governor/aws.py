"""The one layer that talks to boto3. Everything above it sees plain dataclasses and these exceptions.

Clients are injected (``client or boto3.client(...)``) so tests and the CLI can hand in their own
(moto, another profile, an endpoint URL). Throttling is retried by botocore's standard retry mode,
within a budget that fits the functions' timeouts (``retry_budget_s``). ``OperationAbortedException``
is not retried by botocore (its standard mode knows neither the code nor a model trait for it): it
propagates like a throttle that outlasted the retries, and the caller tries again later (the event
queue redelivers the message; the backfill does the page again). ``LimitExceededException`` from
PutSubscriptionFilter, which botocore counts as throttling, means the group's filter slots filled
up: it is not retried at all but reported as a conflict.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shared.clients import DEFAULT_RETRY_ATTEMPTS, client_config, retry_budget_s  # noqa: F401 (re-exported)

from .config import DEFAULT_API_QUOTAS_TPS

#: Names a DescribeLogGroups look-up by ``logGroupIdentifiers`` takes at once (the model: 1-50).
BULK_IDENTIFIERS = 50
from .policy import SubscriptionFilter

#: The largest page DescribeLogGroups serves.
DESCRIBE_LOG_GROUPS_PAGE_SIZE = 50
#: The most events a FilterLogEvents page holds (the model: 10,000 or 1 MB, whichever comes first).
FILTER_LOG_EVENTS_PAGE_SIZE = 10_000
#: Error codes that say "not now" rather than "not ever": botocore's throttling codes and the
#: transient ones CloudWatch Logs answers.
RETRYABLE_ERROR_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "RequestThrottled", "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    "OperationAbortedException", "ServiceUnavailableException", "ServiceUnavailable", "InternalFailure",
    "InternalServerError", "RequestTimeout", "RequestTimeoutException",
})
#: Codes a pacer reads as "the account's quota is exhausted": slow down.
THROTTLING_ERROR_CODES = frozenset(RETRYABLE_ERROR_CODES - {
    "OperationAbortedException", "ServiceUnavailableException", "ServiceUnavailable", "InternalFailure",
    "InternalServerError", "RequestTimeout", "RequestTimeoutException", "TransactionInProgressException",
})
#: botocore's service id for CloudWatch Logs, as its event names spell it.
LOGS_EVENT_SERVICE = "cloudwatch-logs"


def is_retryable(error: BaseException) -> bool:
    """True when trying the same call later may succeed (throttling, conflicts, outages, timeouts)."""
    if isinstance(error, RetryLater):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _error_code(error) in RETRYABLE_ERROR_CODES or status >= 500
    return isinstance(error, BotoCoreError)  # connection errors, read timeouts


class LogGroupGone(Exception):
    """The log group was deleted before we got to it: nothing to do, nothing to retry."""


class NoFreeFilterSlot(Exception):
    """PutSubscriptionFilter answered LimitExceededException: the group filled up since we looked (or, under load, AWS
    answered so with a slot free: the caller counts the filters before it calls it a conflict)."""


class SenderRoleNotAssumable(Exception):
    """PutSubscriptionFilter answered ValidationException "Make sure you have given CloudWatch Logs permission to assume the
    provided role.": the sender role is missing, does not trust logs.amazonaws.com, or is too new for IAM to have
    propagated it (a StackSet creates it with the functions). Asked again for a while, then a conflict with its fix."""


class RetryLater(Exception):
    """AWS refused a call for a reason that passes: asking again later can succeed. The event comes back; a run does the
    page again."""


class DestinationUnavailable(Exception):
    """PutSubscriptionFilter refused the destination (deleted, not permitted, wrong region) while the
    log group exists: a misconfiguration that every new group would meet. It alarms; the work is
    kept and retried, since fixing the destination fixes it."""


class ConfigurationRefused(Exception):
    """AssociateKmsKey refused the key (InvalidParameterException: "the KMS key does not exist or ... is disabled", the
    model; a key policy that does not admit CloudWatch Logs too), or PutDataProtectionPolicy refused the document (an audit
    findings destination that does not exist): asking again cannot help until the configuration is fixed."""


class ExpiredPageToken(Exception):
    """DescribeLogGroups or FilterLogEvents refused a page token (a resumed run's or replay's token can be days old)."""


@dataclass(frozen=True)
class LogGroupInfo:
    name: str
    #: The ARN without the trailing ``:*`` (the form tagging APIs want).
    arn: str
    log_group_class: str
    retention_days: int | None
    #: When the group was created, epoch milliseconds (None when not known).
    created_ms: int | None = None
    #: The account-level retention policy whose retention ``retention_days`` is (None: the group's own).
    retention_policy_name: str | None = None
    #: ``deletionProtectionEnabled`` (the pinned model; absent: off).
    deletion_protection: bool = False
    #: ``kmsKeyId``: the group's KMS key (None: CloudWatch Logs' own encryption).
    kms_key_id: str | None = None
    #: ``dataProtectionStatus``: ACTIVATED when the group has a data protection policy (the model's enum).
    data_protection_status: str | None = None
    #: ``storedBytes``: the bytes the group stores (absent: 0).
    stored_bytes: int = 0


@dataclass(frozen=True)
class IngestedEvent:
    """An event as FilterLogEvents gives it (the replay selects by ``ingestion_ms``)."""

    event_id: str
    stream: str
    timestamp_ms: int
    ingestion_ms: int
    message: str


@dataclass(frozen=True)
class FilterInPlace:
    """A subscription filter on a group, as DescribeSubscriptionFilters tells it."""

    created_ms: int
    pattern: str
    destination_arn: str = ""


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


@dataclass(frozen=True)
class LogGroupPage:
    groups: tuple[LogGroupInfo, ...]
    next_token: str | None


class Pacer:
    """Spaces the calls of each operation evenly at its rate, and gives way when the account throttles.

    ``quotas_tps`` are the rates to aim for (a share of the account's quotas, so other callers keep
    theirs). A throttle answer halves that operation's rate (down to ``MIN_SHARE`` of the aim);
    once ``RECOVERY_HOLD_S`` have passed without one, the rate climbs back by ``RECOVERY_PER_S`` of
    the aim each second: decrease fast, recover slowly. ``clock`` and ``sleep`` are injectable so
    tests and simulations run on simulated time.
    """

    MIN_SHARE = 0.05
    RECOVERY_HOLD_S = 10.0
    RECOVERY_PER_S = 0.02

    def __init__(
        self,
        quotas_tps: Mapping[str, float] = DEFAULT_API_QUOTAS_TPS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.quotas_tps = dict(quotas_tps)
        self._rate = dict(quotas_tps)
        self._next_slot: dict[str, float] = {}
        self._throttled_at: dict[str, float] = {}
        self._recovered_at: dict[str, float] = {}
        self._clock = clock
        self._sleep = sleep
        #: Throttle answers seen, by operation.
        self.throttles: Counter[str] = Counter()

    def rate(self, operation: str) -> float | None:
        """The operation's current rate (requests per second), None when it is not paced."""
        if operation not in self._rate:
            return None
        self._recover(operation, self._clock())
        return self._rate[operation]

    def wait(self, operation: str) -> None:
        rate = self.rate(operation)
        if rate is None:
            return
        now = self._clock()
        slot = self._next_slot.get(operation, now)
        if slot > now:
            self._sleep(slot - now)
            now = slot
        self._next_slot[operation] = now + 1.0 / rate

    def throttled(self, operation: str) -> None:
        """The account answered a throttle for ``operation``: halve its rate."""
        self.throttles[operation] += 1
        if operation not in self._rate:
            return
        now = self._clock()
        floor = self.quotas_tps[operation] * self.MIN_SHARE
        self._rate[operation] = max(floor, self._rate[operation] / 2)
        self._throttled_at[operation] = self._recovered_at[operation] = now

    def _recover(self, operation: str, now: float) -> None:
        aim, since = self.quotas_tps[operation], self._throttled_at.get(operation)
        if since is None or self._rate[operation] >= aim or now - since < self.RECOVERY_HOLD_S:
            return
        last = max(self._recovered_at[operation], since + self.RECOVERY_HOLD_S)
        self._rate[operation] = min(aim, self._rate[operation] + aim * self.RECOVERY_PER_S * max(0.0, now - last))
        self._recovered_at[operation] = now


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _info(raw: dict[str, Any]) -> LogGroupInfo:
    arn = raw.get("logGroupArn") or raw["arn"].removesuffix(":*")
    return LogGroupInfo(
        name=raw["logGroupName"],
        arn=arn,
        # AWS omits the class on groups created before classes existed: those are STANDARD.
        log_group_class=raw.get("logGroupClass", "STANDARD"),
        retention_days=raw.get("retentionInDays"),
        created_ms=raw.get("creationTime"),
        retention_policy_name=raw.get("retentionPolicyName"),
        deletion_protection=bool(raw.get("deletionProtectionEnabled", False)),
        kms_key_id=raw.get("kmsKeyId") or None,
        data_protection_status=raw.get("dataProtectionStatus"),
        stored_bytes=int(raw.get("storedBytes") or 0),
    )


class LogsGateway:
    """CloudWatch Logs, as the governor uses it: paced (when given a pacer) and counted by operation."""

    def __init__(self, client: Any = None, *, pacer: Pacer | None = None) -> None:
        self.client = client or boto3.client("logs", config=client_config())
        self.pacer = pacer
        #: API calls made, by operation (a botocore retry of a call is not a new call).
        self.calls: Counter[str] = Counter()
        events = getattr(getattr(self.client, "meta", None), "events", None)
        if events is not None:  # a real botocore client (simulations hand in plain objects)
            # First, so it answers before botocore's retry handler does.
            events.register_first(f"needs-retry.{LOGS_EVENT_SERVICE}", self._before_retry)

    def _before_retry(self, response: Any = None, operation: Any = None, **_: Any) -> bool | None:
        """Every attempt's answer passes here. A throttle slows the pacer; a full group is not retried."""
        code = (response[1].get("Error", {}).get("Code", "") if response else "")
        name = getattr(operation, "name", "")
        if code == "LimitExceededException" and name == "PutSubscriptionFilter":
            return False  # the slots are taken: asking again for a minute cannot free one
        if code in THROTTLING_ERROR_CODES and self.pacer:
            self.pacer.throttled(name)
        return None  # botocore's retry handler decides

    def _call(self, operation: str, method: str, **request: Any) -> dict[str, Any]:
        if self.pacer:
            self.pacer.wait(operation)
        self.calls[operation] += 1
        return getattr(self.client, method)(**request)

    def describe_log_group(self, name: str) -> LogGroupInfo | None:
        # Names sort lexicographically and a name sorts before every name it prefixes, so with
        # limit=1 the first group of the prefix is the group itself when it exists.
        groups = self._call("DescribeLogGroups", "describe_log_groups", logGroupNamePrefix=name, limit=1).get("logGroups", [])
        if groups and groups[0]["logGroupName"] == name:
            return _info(groups[0])
        return None

    def page_log_groups(self, next_token: str | None = None, *, prefix: str | None = None) -> LogGroupPage:
        """One page of DescribeLogGroups, in name order."""
        request: dict[str, Any] = {"limit": DESCRIBE_LOG_GROUPS_PAGE_SIZE}
        if next_token:
            request["nextToken"] = next_token
        if prefix:
            request["logGroupNamePrefix"] = prefix
        try:
            response = self._call("DescribeLogGroups", "describe_log_groups", **request)
        except ClientError as error:
            if next_token and _error_code(error) == "InvalidParameterException":
                raise ExpiredPageToken(str(error)) from error
            raise
        return LogGroupPage(tuple(_info(g) for g in response.get("logGroups", [])), response.get("nextToken"))

    def describe_log_groups(self, names: Iterable[str]) -> dict[str, LogGroupInfo]:
        """The groups of ``names`` that exist, looked up 50 at a time (``logGroupIdentifiers``): a name absent
        from the answer names no group. Should AWS refuse a look-up that names a missing group (the model does
        not say), that chunk is looked up one by one: a name is never taken for gone without an answer saying so."""
        wanted, found = sorted(set(names)), {}
        for start in range(0, len(wanted), BULK_IDENTIFIERS):
            chunk = wanted[start:start + BULK_IDENTIFIERS]
            try:
                answer = self._call("DescribeLogGroups", "describe_log_groups", logGroupIdentifiers=chunk)
            except ClientError as error:
                if _error_code(error) != "ResourceNotFoundException":
                    raise
                found.update((name, info) for name in chunk if (info := self.describe_log_group(name)) is not None)
                continue
            found.update((info.name, info) for info in map(_info, answer.get("logGroups", [])) if info.name in chunk)
        return found

    def existing_log_groups(self, names: Iterable[str]) -> frozenset[str]:
        """Which of ``names`` exist (``describe_log_groups``)."""
        return frozenset(self.describe_log_groups(names))

    def subscription_filters(self, name: str) -> tuple[SubscriptionFilter, ...]:
        return tuple(
            SubscriptionFilter(
                name=raw["filterName"],
                destination_arn=raw.get("destinationArn", ""),
                filter_pattern=raw.get("filterPattern", ""),
                role_arn=raw.get("roleArn"),
            )
            for raw in self._describe_filters(name)
        )

    def own_filter(self, log_group: str, filter_name: str) -> FilterInPlace | None:
        """The group's filter of that name: when it was created and what it selects; None when it has none."""
        return next((FilterInPlace(int(raw["creationTime"]), raw.get("filterPattern", ""), raw.get("destinationArn", ""))
                     for raw in self._describe_filters(log_group)
                     if raw["filterName"] == filter_name), None)

    def event_pages(self, log_group: str, filter_pattern: str, *, token: str | None = None, start_ms: int | None = None,
                    end_ms: int | None = None) -> Iterator[tuple[list[IngestedEvent], str | None]]:
        """The group's events matching ``filter_pattern`` page by page (FilterLogEvents, paced) from ``token``, each page
        with the token of the next (None after the last), in FilterLogEvents' order: by timestamp, then ingestion. "A
        returned page might only be partially full, or even empty" with more to come (the model). A group deleted
        meanwhile has no more pages; a token FilterLogEvents no longer takes raises ExpiredPageToken."""
        request: dict[str, Any] = {"logGroupName": log_group, "limit": FILTER_LOG_EVENTS_PAGE_SIZE,
                                   **({"filterPattern": filter_pattern} if filter_pattern else {}), **({"startTime": start_ms} if start_ms is not None else {}),
                                   **({"endTime": end_ms} if end_ms is not None else {}), **({"nextToken": token} if token else {})}
        while True:
            try:
                answer = self._call("FilterLogEvents", "filter_log_events", **request)
            except ClientError as error:
                if _error_code(error) == "ResourceNotFoundException":
                    return  # deleted meanwhile: nothing left to replay
                if request.get("nextToken") and _error_code(error) == "InvalidParameterException":
                    raise ExpiredPageToken(str(error)) from error
                raise
            following = answer.get("nextToken") or None
            if following == request.get("nextToken"):
                following = None
            yield [IngestedEvent(str(raw["eventId"]), raw.get("logStreamName", ""), int(raw["timestamp"]), int(raw["ingestionTime"]),
                                 raw.get("message", "")) for raw in answer.get("events", [])], following
            if following is None:
                return
            request["nextToken"] = following

    def _describe_filters(self, name: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"logGroupName": name}
        while True:
            try:
                response = self._call("DescribeSubscriptionFilters", "describe_subscription_filters", **request)
            except ClientError as error:
                raise _gone_or(error, name) from error
            yield from response.get("subscriptionFilters", [])
            if not response.get("nextToken"):
                return
            request["nextToken"] = response["nextToken"]

    def tags(self, arn: str) -> dict[str, str]:
        try:
            return dict(self._call("ListTagsForResource", "list_tags_for_resource", resourceArn=arn).get("tags", {}))
        except ClientError as error:
            raise _gone_or(error, arn) from error

    def put_subscription_filter(self, log_group: str, subscription_filter: SubscriptionFilter) -> None:
        request: dict[str, Any] = {
            "logGroupName": log_group,
            "filterName": subscription_filter.name,
            "filterPattern": subscription_filter.filter_pattern,
            "destinationArn": subscription_filter.destination_arn,
        }
        if subscription_filter.role_arn:
            request["roleArn"] = subscription_filter.role_arn
        try:
            self._call("PutSubscriptionFilter", "put_subscription_filter", **request)
        except ClientError as error:
            code, message = _error_code(error), error.response.get("Error", {}).get("Message", "")
            if code == "LimitExceededException":
                raise NoFreeFilterSlot(log_group) from error
            if code == "ValidationException" and _ROLE_NOT_ASSUMABLE.search(message):
                raise SenderRoleNotAssumable(f"{subscription_filter.role_arn}: {message}") from error
            if (code == "InvalidParameterException" and _DESTINATION_REFUSED.search(message)) or (
                    code == "AccessDeniedException" and _CROSS_ACCOUNT_LAMBDA.search(message)):
                raise DestinationUnavailable(f"{subscription_filter.destination_arn}: {message}") from error
            if code == "ResourceNotFoundException":
                # The group or the destination: only a second look tells them apart.
                if self.describe_log_group(log_group) is None:
                    raise LogGroupGone(log_group) from error
                raise DestinationUnavailable(f"{subscription_filter.destination_arn}: {message or 'not found'}") from error
            raise

    def delete_subscription_filter(self, log_group: str, filter_name: str) -> None:
        """Remove one filter by name; already gone (or the group gone) is done."""
        try:
            self._call("DeleteSubscriptionFilter", "delete_subscription_filter", logGroupName=log_group, filterName=filter_name)
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise

    # --- account-level policies (PutAccountPolicy and friends, botocore 1.44.8) ------------------------
    def account_policies(self, policy_type: str) -> list[dict[str, Any]]:
        return list(self._call("DescribeAccountPolicies", "describe_account_policies", policyType=policy_type).get("accountPolicies", []))

    def put_account_policy(self, **request: Any) -> dict[str, Any]:
        return self._call("PutAccountPolicy", "put_account_policy", **request)

    def delete_account_policy(self, name: str, policy_type: str) -> None:
        """Delete one account policy by name; already gone is done."""
        try:
            self._call("DeleteAccountPolicy", "delete_account_policy", policyName=name, policyType=policy_type)
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise

    def set_deletion_protection(self, log_group: str, *, enabled: bool) -> None:
        """PutLogGroupDeletionProtection (the pinned model: ``logGroupIdentifier``, ``deletionProtectionEnabled``)."""
        try:
            self._call("PutLogGroupDeletionProtection", "put_log_group_deletion_protection", logGroupIdentifier=log_group,
                       deletionProtectionEnabled=enabled)
        except ClientError as error:
            raise _gone_or(error, log_group) from error

    def associate_kms_key(self, log_group: str, key_arn: str) -> None:
        """A key CloudWatch Logs refuses is ConfigurationRefused: a missing or disabled one (InvalidParameterException, the
        model), or one whose policy does not let it use the key (AccessDeniedException "The specified KMS key does not exist
        or is not allowed to be used with Arn ...", as AWS answered in public threads: localaws/FIDELITY.md G14). Another
        AccessDeniedException (the role may not call AssociateKmsKey) is the deployment's to fix and propagates."""
        try:
            self._call("AssociateKmsKey", "associate_kms_key", logGroupName=log_group, kmsKeyId=key_arn)
        except ClientError as error:
            if _error_code(error) == "InvalidParameterException" or _KEY_REFUSED.search(str(error)):
                raise ConfigurationRefused(str(error)) from error
            raise _gone_or(error, log_group) from error

    def data_protection_policy(self, log_group: str) -> str | None:
        """The group's data protection policy document; None when it has none."""
        try:
            return self._call("GetDataProtectionPolicy", "get_data_protection_policy", logGroupIdentifier=log_group).get("policyDocument") or None
        except ClientError as error:
            raise _gone_or(error, log_group) from error

    def put_data_protection_policy(self, log_group: str, document: str) -> None:
        try:
            self._call("PutDataProtectionPolicy", "put_data_protection_policy", logGroupIdentifier=log_group, policyDocument=document)
        except ClientError as error:
            if _error_code(error) == "InvalidParameterException":
                raise ConfigurationRefused(str(error)) from error  # the configuration's to fix (an audit group that is missing...)
            raise _gone_or(error, log_group) from error

    def put_retention_policy(self, log_group: str, days: int) -> None:
        try:
            self._call("PutRetentionPolicy", "put_retention_policy", logGroupName=log_group, retentionInDays=days)
        except ClientError as error:
            raise _gone_or(error, log_group) from error


#: How AssociateKmsKey words a key whose policy does not let CloudWatch Logs use it (AccessDeniedException; the recorded answer
#: quoted in ministryofjustice/modernisation-platform#7870, hashicorp/terraform-provider-aws#29282, aws/aws-cdk#28304).
_KEY_REFUSED = re.compile(r"KMS key does not exist or is not allowed to be used", re.IGNORECASE)
#: How PutSubscriptionFilter words a role CloudWatch Logs cannot assume (ValidationException; recorded in
#: hashicorp/terraform-provider-aws#48088, whose provider retries it as IAM's eventual consistency).
_ROLE_NOT_ASSUMABLE = re.compile(r"permission to assume the provided role", re.IGNORECASE)
#: How PutSubscriptionFilter refuses a Lambda function of another account as a destination (AccessDeniedException, before it
#: looks at the group: FACTS "Recorded real-AWS answers").
_CROSS_ACCOUNT_LAMBDA = re.compile(r"cross-account lambda invocation", re.IGNORECASE)
#: How PutSubscriptionFilter words a refused destination (Lambda: no permission or no function;
#: Kinesis / Firehose: the test message could not be delivered).
_DESTINATION_REFUSED = re.compile(r"could not (execute|deliver)|destination", re.IGNORECASE)


def _gone_or(error: ClientError, what: str) -> Exception:
    if _error_code(error) == "ResourceNotFoundException":
        return LogGroupGone(what)
    return error


class LambdaGateway:
    """AWS Lambda: where the destination function writes its own logs (the guard), and which functions exist (orphans)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        """Made on first use: a container that never asks (no Lambda destination, no orphan) makes none."""
        if self._client is None:
            self._client = boto3.client("lambda", config=client_config())
        return self._client

    def function_log_group(self, function_arn: str) -> str | None:
        try:
            configuration = self.client.get_function_configuration(FunctionName=function_arn)
        except ClientError as error:
            if _error_code(error) == "ResourceNotFoundException":
                raise DestinationUnavailable(f"{function_arn}: the destination function does not exist in this account (CloudWatch "
                                             "Logs invokes no function of another account: 'Cross-account lambda invocation passing "
                                             "is not allowed')") from error
            raise
        return configuration.get("LoggingConfig", {}).get("LogGroup")

    def function_exists(self, name: str) -> bool:
        try:
            self.client.get_function_configuration(FunctionName=name)
        except ClientError as error:
            if _error_code(error) == "ResourceNotFoundException":
                return False
            raise
        return True

    def function_names(self) -> set[str]:
        """Every function of the account and region: one listing, a page of 50 per call."""
        names, request = set(), {"MaxItems": 50}
        while True:
            answer = self.client.list_functions(**request)
            names.update(f["FunctionName"] for f in answer.get("Functions", []))
            if not answer.get("NextMarker"):
                return names
            request["Marker"] = answer["NextMarker"]


class ReplayWriter:
    """Delivers a replayed subscription document to a same-account destination, as CloudWatch Logs would: a Lambda
    invoked asynchronously, one Kinesis or Firehose record. Clients are made on first use (most events replay nothing)."""

    def __init__(self, clients: Callable[[str], Any] | None = None, *, max_attempts: int = DEFAULT_RETRY_ATTEMPTS) -> None:
        self._make = clients or (lambda service: boto3.client(service, config=client_config(max_attempts)))
        self._clients: dict[str, Any] = {}
        self.calls: Counter[str] = Counter()

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._make(service)
        return self._clients[service]

    def deliver(self, destination: Any, payload: bytes, *, partition_key: str) -> None:
        kind = destination.kind.value
        if kind == "lambda":
            self._client("lambda").invoke(FunctionName=destination.arn, InvocationType="Event", Payload=payload)
        elif kind == "kinesis":
            self._client("kinesis").put_record(StreamName=destination.name, Data=payload, PartitionKey=partition_key or "replay")
        elif kind == "firehose":
            self._client("firehose").put_record(DeliveryStreamName=destination.name, Record={"Data": payload})
        else:
            raise ValueError(f"replay cannot write to a {kind} destination")
        self.calls[kind] += 1


class KmsGateway:
    """KMS, for the one question the governor asks before associating a key: does its policy admit CloudWatch Logs."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def key_policy(self, key_arn: str) -> str | None:
        """The key's ``default`` policy; None when the key does not exist or the governor may not read it (a refusal that
        asking again cannot change, reported as the key being unusable)."""
        if self._client is None:
            self._client = boto3.client("kms", config=client_config())
        try:
            return self._client.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        except ClientError as error:
            if is_retryable(error):
                raise
            return None


class EventQueueSender:
    """An event handler's own queue: a record whose work goes on in a later invocation is sent to it again."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, body: str) -> None:
        if self._client is None:
            self._client = boto3.client("sqs", config=client_config())
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body)


class TaggingGateway:
    """The Resource Groups Tagging API: log groups' tags in bulk instead of one ListTagsForResource per group.
    GetResources lists only resources that are or were tagged (the Tagging API reference): a group absent
    from an answer carries no tags."""

    PAGE = 100
    #: ARNs ``ResourceARNList`` takes at once (the model: 1-100, not together with TagFilters or ResourceTypeFilters).
    ARNS_AT_ONCE = 100

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("resourcegroupstaggingapi", config=client_config())
        self.calls = 0

    def log_groups_tagged(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Log group ARN (without ``:*``) -> all its tags, for the groups carrying any of ``keys``.
        One query per key: GetResources ANDs its tag filters."""
        found: dict[str, dict[str, str]] = {}
        for key in sorted(set(keys)):
            found.update(self._pages({"ResourceTypeFilters": ["logs:log-group"], "TagFilters": [{"Key": key}], "ResourcesPerPage": self.PAGE}))
        return found

    def tags_of(self, arns: Iterable[str]) -> dict[str, dict[str, str]]:
        """Log group ARN (without ``:*``) -> its tags, for each of ``arns`` (100 a call); an untagged group is
        absent from GetResources' answer and answered with no tags."""
        wanted = sorted(set(arns))
        found: dict[str, dict[str, str]] = {arn: {} for arn in wanted}
        for start in range(0, len(wanted), self.ARNS_AT_ONCE):
            answer = self._pages({"ResourceARNList": wanted[start:start + self.ARNS_AT_ONCE]})
            found.update((arn, tags) for arn, tags in answer.items() if arn in found)
        return found

    def _pages(self, request: dict[str, Any]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        while True:
            self.calls += 1
            answer = self.client.get_resources(**request)
            for mapping in answer.get("ResourceTagMappingList", []):
                found[mapping["ResourceARN"].removesuffix(":*")] = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
            if not answer.get("PaginationToken"):
                return found
            request = {**request, "PaginationToken": answer["PaginationToken"]}


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
                              text("destinationArn"), number("groupCreatedMs"), number("untilMs"))

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
        numbers = {"sinceMs": progress.since_ms, "groupCreatedMs": progress.group_created_ms, "untilMs": progress.until_ms}
        return {**_key(f"replay#{log_group}"), "filterCreatedMs": {"N": str(progress.filter_created_ms)},
                "delivered": {"N": str(progress.delivered)}, "done": {"BOOL": progress.done}, "holder": {"S": holder},
                "read": {"N": str(progress.read)}, "readBytes": {"N": str(progress.read_bytes)},
                **({"pageToken": {"S": progress.page_token}} if progress.page_token else {}),
                **{key: {"N": str(value)} for key, value in numbers.items() if value is not None},
                **({"filterPattern": {"S": progress.filter_pattern}} if progress.filter_pattern is not None else {}),
                **({"destinationArn": {"S": progress.destination_arn}} if progress.destination_arn else {}),
                "leaseUntil": {"N": str(lease_until_s)}, "expiresAt": {"N": str(int(time.time()) + self.REPLAY_KEEP_S)}}

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


class FleetBus:
    """The organization's fleet bus in the central account: a finished run's coverage goes there."""

    SOURCE = "log-group-governor"
    DETAIL_TYPE = "log-group-governor coverage"

    def __init__(self, bus_arn: str, client: Any = None) -> None:
        self.bus_arn = bus_arn
        self._client = client

    def put_coverage(self, detail: Mapping[str, Any]) -> None:
        client = self._client = self._client or boto3.client("events", config=client_config())
        answer = client.put_events(Entries=[{"EventBusName": self.bus_arn, "Source": self.SOURCE, "DetailType": self.DETAIL_TYPE,
                                             "Detail": json.dumps(detail)}])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"the fleet bus refused the coverage event: {answer['Entries']}")


class S3RunStore:
    """A backfill run's checkpoint, per-page decisions and summary, as objects under ``runs/<run id>/``."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client or boto3.client("s3", config=client_config())

    def load(self, run_id: str) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=f"runs/{run_id}/checkpoint.json")["Body"].read()
        except ClientError as error:
            if _error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body)

    def save(self, run_id: str, checkpoint: Mapping[str, Any]) -> None:
        self._put(f"runs/{run_id}/checkpoint.json", json.dumps(checkpoint))

    def write_page(self, run_id: str, page_number: int, outcomes: list[Any], position: int) -> int:
        """Decisions of one page, as JSON lines; a redone page overwrites its object. Returns the new position."""
        body = "".join(json.dumps(o.as_dict(), separators=(",", ":")) + "\n" for o in outcomes)
        self._put(f"runs/{run_id}/decisions/page-{page_number:06d}.jsonl", body)
        return position + 1

    def write_summary(self, run_id: str, summary: Mapping[str, Any]) -> str:
        key = f"runs/{run_id}/summary.json"
        self._put(key, json.dumps(summary, indent=2))
        return f"s3://{self.bucket}/{key}"

    def load_json(self, key: str) -> Any:
        """An object under ``runs/`` or ``coverage/`` as JSON; None when there is none."""
        try:
            return json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as error:
            if _error_code(error) in ("NoSuchKey", "404"):
                return None
            raise

    def save_json(self, key: str, value: Any) -> str:
        self._put(key, json.dumps(value, indent=2))
        return f"s3://{self.bucket}/{key}"

    def _put(self, key: str, body: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json")
