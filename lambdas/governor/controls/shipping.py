"""Shipping: a group's subscription filter to the destination (PutSubscriptionFilter)."""

from .. import metric_names as names
from .base import Control, ConflictFix, Undo

CONTROL = Control(
    name="shipping", aspect="subscription", summary="the group's subscription filter to the destination", rule_only=False,
    reads=("logs:DescribeLogGroups", "logs:DescribeSubscriptionFilters"),
    writes=("logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter"),
    adapter=(("LogsGateway", "describe_log_group"), ("LogsGateway", "subscription_filters"), ("LogsGateway", "own_filter"),
             ("LogsGateway", "put_subscription_filter"), ("LogsGateway", "delete_subscription_filter")),
    undone_by=(Undo("DeleteSubscriptionFilter", source="CloudTrail record of the API call"),
               Undo("PutSubscriptionFilter", source="CloudTrail record of the API call")),
    metrics=(names.SUBSCRIBED, names.FILTERS_UPDATED, names.FILTERS_REMOVED),
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
