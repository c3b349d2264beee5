"""The one layer that talks to boto3. Everything above it sees plain dataclasses and these exceptions.

Clients are injected (``client or boto3.client(...)``) so tests and the CLI can hand in their own
(moto, another profile, an endpoint URL). Throttling and ``OperationAbortedException`` are retried by
botocore's standard retry mode; what is still failing after that propagates, so an event handler
fails and Lambda retries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .policy import SubscriptionFilter

#: Standard mode retries throttles with exponential backoff and jitter; ten attempts span ~20 s,
#: enough to ride out a burst against the 5 TPS write quotas.
DEFAULT_RETRY_ATTEMPTS = 10
#: The largest page DescribeLogGroups serves.
DESCRIBE_LOG_GROUPS_PAGE_SIZE = 50


def client_config(max_attempts: int = DEFAULT_RETRY_ATTEMPTS) -> Config:
    return Config(retries={"mode": "standard", "max_attempts": max_attempts}, user_agent_extra="log-group-governor")


class LogGroupGone(Exception):
    """The log group was deleted before we got to it: nothing to do, nothing to retry."""


class NoFreeFilterSlot(Exception):
    """PutSubscriptionFilter answered LimitExceededException: the group filled up since we looked."""


@dataclass(frozen=True)
class LogGroupInfo:
    name: str
    #: The ARN without the trailing ``:*`` (the form tagging APIs want).
    arn: str
    log_group_class: str
    retention_days: int | None


@dataclass(frozen=True)
class LogGroupPage:
    groups: tuple[LogGroupInfo, ...]
    next_token: str | None


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
    )


class LogsGateway:
    """CloudWatch Logs, as the governor uses it."""

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("logs", config=client_config())

    def describe_log_group(self, name: str) -> LogGroupInfo | None:
        # Names sort lexicographically and a name sorts before every name it prefixes, so with
        # limit=1 the first group of the prefix is the group itself when it exists.
        groups = self.client.describe_log_groups(logGroupNamePrefix=name, limit=1).get("logGroups", [])
        if groups and groups[0]["logGroupName"] == name:
            return _info(groups[0])
        return None

    def page_log_groups(self, next_token: str | None = None, *, prefix: str | None = None) -> LogGroupPage:
        request: dict[str, Any] = {"limit": DESCRIBE_LOG_GROUPS_PAGE_SIZE}
        if next_token:
            request["nextToken"] = next_token
        if prefix:
            request["logGroupNamePrefix"] = prefix
        response = self.client.describe_log_groups(**request)
        return LogGroupPage(tuple(_info(g) for g in response.get("logGroups", [])), response.get("nextToken"))

    def subscription_filters(self, name: str) -> tuple[SubscriptionFilter, ...]:
        found: list[SubscriptionFilter] = []
        for raw in self._describe_filters(name):
            found.append(
                SubscriptionFilter(
                    name=raw["filterName"],
                    destination_arn=raw.get("destinationArn", ""),
                    filter_pattern=raw.get("filterPattern", ""),
                    role_arn=raw.get("roleArn"),
                )
            )
        return tuple(found)

    def _describe_filters(self, name: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"logGroupName": name}
        while True:
            try:
                response = self.client.describe_subscription_filters(**request)
            except ClientError as error:
                raise _gone_or(error, name) from error
            yield from response.get("subscriptionFilters", [])
            if not response.get("nextToken"):
                return
            request["nextToken"] = response["nextToken"]

    def tags(self, arn: str) -> dict[str, str]:
        try:
            return dict(self.client.list_tags_for_resource(resourceArn=arn).get("tags", {}))
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
            self.client.put_subscription_filter(**request)
        except ClientError as error:
            if _error_code(error) == "LimitExceededException":
                raise NoFreeFilterSlot(log_group) from error
            raise _gone_or(error, log_group) from error

    def put_retention_policy(self, log_group: str, days: int) -> None:
        try:
            self.client.put_retention_policy(logGroupName=log_group, retentionInDays=days)
        except ClientError as error:
            raise _gone_or(error, log_group) from error


def _gone_or(error: ClientError, what: str) -> Exception:
    if _error_code(error) == "ResourceNotFoundException":
        return LogGroupGone(what)
    return error


class LambdaGateway:
    """AWS Lambda, for the guard: where does the destination function write its own logs?"""

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("lambda", config=client_config())

    def function_log_group(self, function_arn: str) -> str | None:
        configuration = self.client.get_function_configuration(FunctionName=function_arn)
        return configuration.get("LoggingConfig", {}).get("LogGroup")
