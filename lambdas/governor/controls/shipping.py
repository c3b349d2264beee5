"""Shipping: a group's subscription filter to the destination (PutSubscriptionFilter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import metric_names as names
from ..decision import Action, Decision, Reason, SubscriptionFilter
from .base import Control, ConflictFix, Undo


def judge(filters: Sequence[SubscriptionFilter], desired: SubscriptionFilter, *, max_filters: int) -> Decision:
    """A governed, subscribable group's filters against the one it should have: ours updated in place, another filter to the
    same destination accepted, a free slot taken, never a foreign filter replaced."""
    ours = next((f for f in filters if f.name == desired.name), None)
    if ours is not None:
        if _same_delivery(ours, desired):
            return Decision(Action.LEAVE, Reason.FILTER_COMPLIANT, f"filter {desired.name!r} already ships to the destination")
        return Decision(Action.UPDATE_FILTER, Reason.FILTER_DIFFERS, f"filter {desired.name!r} differs; update it in place", desired)
    shipping = next((f for f in filters if f.destination_arn == desired.destination_arn), None)
    if shipping is not None:
        return Decision(Action.LEAVE, Reason.SHIPPED_BY_OTHER_FILTER, f"filter {shipping.name!r} already ships to the destination")
    if len(filters) >= max_filters:
        names = ", ".join(repr(f.name) for f in filters)
        return Decision(Action.CONFLICT, Reason.NO_FREE_SLOT, f"all {len(filters)} filter slots taken by {names}; foreign filters are never replaced")
    return Decision(Action.SUBSCRIBE, Reason.NOT_SUBSCRIBED, f"subscribe with filter {desired.name!r}", desired)


def _same_delivery(current: SubscriptionFilter, desired: SubscriptionFilter) -> bool:
    return (
        current.destination_arn == desired.destination_arn
        and current.filter_pattern == desired.filter_pattern
        and (desired.role_arn is None or current.role_arn == desired.role_arn)
    )


def apply(logs: Any, name: str, decision: Decision) -> None:
    if decision.subscription_filter is None:  # a writing decision always carries what to write; anything else is a bug
        raise AssertionError(f"decision {decision} has nothing to apply")
    if decision.action is Action.REMOVE_FILTER:
        logs.delete_subscription_filter(name, decision.subscription_filter.name)
    else:
        logs.put_subscription_filter(name, decision.subscription_filter)


CONTROL = Control(
    doc=('`{"enabled": true \\| false, "filterPattern": "...", "destinationArn": "...", "destinationRoleArn": "..."}`',
         "enabled: the governor's filter with that pattern, to the rule's destination or `destinationArn` (an old pattern or destination is updated in place, and a new group's replay reads with the pattern and writes to that destination); disabled: no filter, and the governor's own filter (by name) is removed; other tools' filters stay"),
    name="shipping", aspect="subscription", summary="the group's subscription filter to the destination", rule_only=False,
    reads=("logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters"),
    writes=("logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter"),
    adapter=(("LogsGateway", "describe_log_group"), ("LogsGateway", "subscription_filters"), ("LogsGateway", "own_filter"),
             ("LogsGateway", "put_subscription_filter"), ("LogsGateway", "delete_subscription_filter")),
    undone_by=(Undo("DeleteSubscriptionFilter", source="CloudTrail record of the API call"),
               Undo("PutSubscriptionFilter", source="CloudTrail record of the API call")),
    metrics=(names.SUBSCRIBED, names.FILTERS_UPDATED, names.FILTERS_REMOVED),
    applies=(Action.SUBSCRIBE.value, Action.UPDATE_FILTER.value, Action.REMOVE_FILTER.value), apply=apply,
    conflicts=(
        ConflictFix("no-free-slot", "a group's subscription filter slots are all taken by other tools, so it is not shipped",
                    "free a slot, or raise the quota and `governor:maxFiltersPerLogGroup`"),
        ConflictFix("sender-role-not-assumable",
                    "an organization-wide archive: CloudWatch Logs cannot assume the sender role (`governor:destinationRoleArn`), AWS "
                    "answering \"Make sure you have given CloudWatch Logs permission to assume the provided role.\" on every delivery "
                    "of the event (a role created moments ago is asked again while the queue redelivers)",
                    "create the role in this account with the trust `logs.amazonaws.com` (`governor:senderRole` true does); the next "
                    "event or reconcile subscribes the group"),
    ),
    native="subscriptionMode account-policy (PutAccountPolicy, SUBSCRIPTION_FILTER_POLICY: docs/account-policies.md)",
)
