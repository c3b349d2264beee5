"""CloudWatch Logs: the groups, their filters, events, tags, account policies and settings (``LogsGateway``), paced and counted
by operation. ``LimitExceededException`` from PutSubscriptionFilter, which botocore counts as throttling, means the group's
filter slots filled up: it is not retried at all but reported as a conflict (``NoFreeFilterSlot``)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from ..decision import SubscriptionFilter
from .common import (THROTTLING_ERROR_CODES, ConfigurationRefused, DestinationUnavailable, ExpiredPageToken, LogGroupGone, NoFreeFilterSlot,
                     SenderRoleNotAssumable, _error_code, client_config)
from .pacer import Pacer

#: Names a DescribeLogGroups look-up by ``logGroupIdentifiers`` takes at once (the model: 1-50).
BULK_IDENTIFIERS = 50
#: The largest page DescribeLogGroups serves.
DESCRIBE_LOG_GROUPS_PAGE_SIZE = 50
#: The most events a FilterLogEvents page holds (the model: 10,000 or 1 MB, whichever comes first).
FILTER_LOG_EVENTS_PAGE_SIZE = 10_000
#: botocore's service id for CloudWatch Logs, as its event names spell it.
LOGS_EVENT_SERVICE = "cloudwatch-logs"


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
    #: ``storedBytes``: the bytes the group stores (absent: 0).
    stored_bytes: int = 0
    #: The entry as DescribeLogGroups gave it, for what a control reads of it (governor.controls: deletion protection).
    described: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


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
class LogGroupPage:
    groups: tuple[LogGroupInfo, ...]
    next_token: str | None


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
        stored_bytes=int(raw.get("storedBytes") or 0),
        described=raw,
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

    def group_call(self, operation: str, method: str, log_group: str, *, refusals: tuple[str | re.Pattern[str], ...] = (),
                   **request: Any) -> dict[str, Any]:
        """One call about one group, paced and counted like every other, for a control's own module (governor.controls):
        the group gone is LogGroupGone; an error code in ``refusals``, or an error whose text a pattern in it finds, is
        ConfigurationRefused (the configuration's to fix: asking again cannot help); anything else as AWS answered it."""
        try:
            return self._call(operation, method, **request)
        except ClientError as error:
            if any(_error_code(error) == r if isinstance(r, str) else r.search(str(error)) for r in refusals):
                raise ConfigurationRefused(str(error)) from error
            raise _gone_or(error, log_group) from error

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

    def put_retention_policy(self, log_group: str, days: int) -> None:
        try:
            self._call("PutRetentionPolicy", "put_retention_policy", logGroupName=log_group, retentionInDays=days)
        except ClientError as error:
            raise _gone_or(error, log_group) from error


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
