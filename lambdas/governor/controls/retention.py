"""Retention: how long a group keeps its events (PutRetentionPolicy)."""

from .. import metric_names as names
from .base import Control, Undo

CONTROL = Control(
    name="retention", aspect="retention", summary="how long a group keeps its events", rule_only=False,
    reads=("logs:DescribeLogGroups",), writes=("logs:PutRetentionPolicy",),
    adapter=(("LogsGateway", "describe_log_group"), ("LogsGateway", "describe_log_groups"), ("LogsGateway", "put_retention_policy")),
    undone_by=(Undo("PutRetentionPolicy", source="CloudTrail record of the API call"),
               Undo("DeleteRetentionPolicy", source="CloudTrail record of the API call")),
    metrics=(names.RETENTION_SET,),
    native="retentionVia account-policy (native retention policies through PutAccountPolicy: docs/account-policies.md)",
)
